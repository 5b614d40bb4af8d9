import Feed
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
    public var note: String?

    enum CodingKeys: String, CodingKey { case scenario, messages, messageBytes, seconds, cpuSeconds, messagesPerSecond, megabytesPerSecond, latencyMs, ratioToFloor, note }

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
        try c.encodeIfPresent(note, forKey: .note)
    }
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
        for r in results {
            func ms(_ k: String) -> String { r.latencyMs?[k].map { String(format: "%.2f", $0) } ?? "" }
            rows.append([
                r.scenario, "\(r.messages)", "\(r.messageBytes)", String(format: "%.3f", r.seconds),
                String(format: "%.0f", r.messagesPerSecond), String(format: "%.1f", r.megabytesPerSecond),
                String(format: "%.2f", r.cpuSeconds), r.ratioToFloor.map { String(format: "%.2f×", $0) } ?? "",
                ms("p50"), ms("p99"), ms("p99.9"), ms("max"),
            ])
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { i, cell in i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - cell.count) + cell }.joined(separator: "  "))
        }
        for r in results where r.note != nil { lines.append("  \(r.scenario): \(r.note!)") }
        return lines.joined(separator: "\n")
    }

    /// Ratios of this run's rates to `baseline`'s; a scenario more than `tolerance` slower is flagged.
    public func compare(to baseline: BenchReport, tolerance: Double = 0.10) -> (text: String, regressions: [String]) {
        var lines: [String] = ["against baseline \(baseline.date):"]
        var regressions: [String] = []
        for r in results {
            guard let old = baseline.results.first(where: { $0.scenario == r.scenario }), old.messagesPerSecond > 0 else { continue }
            let ratio = r.messagesPerSecond / old.messagesPerSecond
            let flag = ratio < 1 - tolerance ? "  REGRESSION" : ""
            if !flag.isEmpty { regressions.append(r.scenario) }
            lines.append("  \(r.scenario): \(String(format: "%.2f", ratio))× (\(String(format: "%.0f", old.messagesPerSecond)) → \(String(format: "%.0f", r.messagesPerSecond)) msgs/s)\(flag)")
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
