import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import Foundation

/// One measured scenario. Rates are per wall-clock second; `cpuSeconds` is this process's
/// user + system time during the run (librdkafka's threads included, the broker's not).
public struct BenchResult: Codable, Sendable, Equatable {
    public var scenario: String
    public var messages: Int
    public var messageBytes: Int
    public var seconds: Double
    public var cpuSeconds: Double
    public var messagesPerSecond: Double { seconds > 0 ? Double(messages) / seconds : 0 }
    public var megabytesPerSecond: Double { messagesPerSecond * Double(messageBytes) / 1_000_000 }
    /// Latency percentiles in milliseconds (p50, p90, p99, p99.9, max), when measured.
    public var latencyMs: [String: Double]?
    /// For a wrapper scenario: its rate divided by the C floor's in the same run.
    public var ratioToFloor: Double?
    /// For a latency scenario: the offered rate (messages/s) it was paced at.
    public var offeredRate: Double?
    /// For a latency scenario: (percentile, ms) points of the HDR histogram, for the percentile curve.
    public var latencyCurve: [LatencyPoint]?
    /// For an end-to-end scenario: its p99 divided by the C floor's p99 at the same rate in the same run.
    public var p99RatioToFloor: Double?
    /// For a pacing scenario: release time of the last frame minus its due time, in ms.
    public var driftMs: Double?
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case scenario, messages, messageBytes, seconds, cpuSeconds, messagesPerSecond, megabytesPerSecond, latencyMs, ratioToFloor
        case offeredRate, latencyCurve, p99RatioToFloor, driftMs, note
    }

    public init(scenario: String, messages: Int, messageBytes: Int, seconds: Double, cpuSeconds: Double, latencyMs: [String: Double]? = nil, note: String? = nil) {
        self.scenario = scenario; self.messages = messages; self.messageBytes = messageBytes
        self.seconds = seconds; self.cpuSeconds = cpuSeconds; self.latencyMs = latencyMs; self.note = note
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scenario = try c.decode(String.self, forKey: .scenario)
        messages = try c.decode(Int.self, forKey: .messages)
        messageBytes = try c.decode(Int.self, forKey: .messageBytes)
        seconds = try c.decode(Double.self, forKey: .seconds)
        cpuSeconds = try c.decode(Double.self, forKey: .cpuSeconds)
        latencyMs = try c.decodeIfPresent([String: Double].self, forKey: .latencyMs)
        ratioToFloor = try c.decodeIfPresent(Double.self, forKey: .ratioToFloor)
        offeredRate = try c.decodeIfPresent(Double.self, forKey: .offeredRate)
        latencyCurve = try c.decodeIfPresent([LatencyPoint].self, forKey: .latencyCurve)
        p99RatioToFloor = try c.decodeIfPresent(Double.self, forKey: .p99RatioToFloor)
        driftMs = try c.decodeIfPresent(Double.self, forKey: .driftMs)
        note = try c.decodeIfPresent(String.self, forKey: .note)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scenario, forKey: .scenario)
        try c.encode(messages, forKey: .messages)
        try c.encode(messageBytes, forKey: .messageBytes)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(cpuSeconds, forKey: .cpuSeconds)
        try c.encode(messagesPerSecond, forKey: .messagesPerSecond)
        try c.encode(megabytesPerSecond, forKey: .megabytesPerSecond)
        try c.encodeIfPresent(latencyMs, forKey: .latencyMs)
        try c.encodeIfPresent(ratioToFloor, forKey: .ratioToFloor)
        try c.encodeIfPresent(offeredRate, forKey: .offeredRate)
        try c.encodeIfPresent(latencyCurve, forKey: .latencyCurve)
        try c.encodeIfPresent(p99RatioToFloor, forKey: .p99RatioToFloor)
        try c.encodeIfPresent(driftMs, forKey: .driftMs)
        try c.encodeIfPresent(note, forKey: .note)
    }
}

extension BenchResult {
    /// The text of one report column (`scenario`, `msgs`, `bytes`, `seconds`, `msgs/s`, `MB/s`, `cpu s`, `vs C`,
    /// `p50 ms` … `max ms`), the same in the terminal table and the HTML page; empty when not measured.
    func cell(_ column: String) -> String {
        switch column {
        case "scenario": return scenario
        case "msgs": return "\(messages)"
        case "bytes": return "\(messageBytes)"
        case "seconds": return String(format: "%.3f", seconds)
        case "msgs/s": return String(format: "%.0f", messagesPerSecond)
        case "MB/s": return String(format: "%.1f", megabytesPerSecond)
        case "cpu s": return String(format: "%.2f", cpuSeconds)
        case "vs C": return (ratioToFloor ?? p99RatioToFloor).map { String(format: "%.2f×", $0) } ?? ""
        default:
            let key = column.hasSuffix(" ms") ? String(column.dropLast(3)) : column
            return latencyMs?[key].map { String(format: "%.2f", $0) } ?? ""
        }
    }
}

/// One point of a latency percentile curve.
public struct LatencyPoint: Codable, Sendable, Equatable {
    public var percentile: Double
    public var ms: Double
    public init(percentile: Double, ms: Double) { self.percentile = percentile; self.ms = ms }
}

/// A whole `bench` run: machine facts and results.
public struct BenchReport: Codable, Sendable {
    public var date: String
    public var cores: Int
    public var memoryGB: Double
    public var librdkafka: String
    public var broker: String
    public var build: String
    public var results: [BenchResult]

    public init(date: String, cores: Int, memoryGB: Double, librdkafka: String, broker: String, build: String, results: [BenchResult]) {
        self.date = date; self.cores = cores; self.memoryGB = memoryGB; self.librdkafka = librdkafka
        self.broker = broker; self.build = build; self.results = results
    }

    public func table() -> String {
        var lines = ["bench \(date) · \(cores) cores, \(String(format: "%.0f", memoryGB)) GB · librdkafka \(librdkafka) · broker \(broker) · \(build) build", ""]
        let header = ["scenario", "msgs", "bytes", "seconds", "msgs/s", "MB/s", "cpu s", "vs C", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]
        var rows = [header]
        for r in results { rows.append(header.map(r.cell)) }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { i, cell in i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - cell.count) + cell }.joined(separator: "  "))
        }
        for r in results where r.note != nil { lines.append("  \(r.scenario): \(r.note!)") }
        return lines.joined(separator: "\n")
    }

    /// Ratios against `baseline`, scenario by scenario: throughput rows compare msgs/s (flagged when more
    /// than `tolerance` slower), latency rows at an offered rate compare p99 (flagged when more than
    /// `tolerance` higher), pacing rows compare end drift (flagged when it grew by more than 1 ms).
    public func compare(to baseline: BenchReport, tolerance: Double = 0.10) -> (text: String, regressions: [String]) {
        var lines: [String] = ["against baseline \(baseline.date):"]
        var regressions: [String] = []
        for r in results {
            guard let old = baseline.results.first(where: { $0.scenario == r.scenario }) else { continue }
            var flag = false
            if let drift = r.driftMs, let oldDrift = old.driftMs {
                flag = abs(drift) > abs(oldDrift) + 1
                lines.append("  \(r.scenario): drift \(String(format: "%+.3f", oldDrift)) → \(String(format: "%+.3f", drift)) ms\(flag ? "  REGRESSION" : "")")
            } else if r.offeredRate != nil, let p99 = r.latencyMs?["p99"], let oldP99 = old.latencyMs?["p99"], oldP99 > 0 {
                let ratio = p99 / oldP99
                flag = ratio > 1 + tolerance
                lines.append("  \(r.scenario): p99 \(String(format: "%.2f", ratio))× (\(String(format: "%.2f", oldP99)) → \(String(format: "%.2f", p99)) ms)\(flag ? "  REGRESSION" : "")")
            } else if old.messagesPerSecond > 0 {
                let ratio = r.messagesPerSecond / old.messagesPerSecond
                flag = ratio < 1 - tolerance
                lines.append("  \(r.scenario): \(String(format: "%.2f", ratio))× (\(String(format: "%.0f", old.messagesPerSecond)) → \(String(format: "%.0f", r.messagesPerSecond)) msgs/s)\(flag ? "  REGRESSION" : "")")
            }
            if flag { regressions.append(r.scenario) }
        }
        return (lines.joined(separator: "\n"), regressions)
    }
}

/// Process CPU time (user + system) in seconds.
public func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Runs `body` and returns wall seconds and CPU seconds.
public func measure(_ body: () throws -> Void) rethrows -> (seconds: Double, cpu: Double) {
    let cpu0 = processCPUSeconds()
    let start = ContinuousClock.now
    try body()
    let d = ContinuousClock.now - start
    return (d.inSeconds, processCPUSeconds() - cpu0)
}
