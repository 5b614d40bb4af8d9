@testable import Bench
import CKafkaFloor
import Pipeline
import Kafka
import MarketData
import MarketStreamTesting
import Foundation
import Testing

/// The `bench` executable built next to the tests.
func benchBinary() -> String? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    return [".build/debug/bench", ".build/release/bench"].map { root + "/" + $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

@Suite("bench --quick report", .serialized)
struct BenchReportTests {
    static let expected = [
        "finnhub frame decode (trades)", "finnhub frame encode (trades)", "kafka value encode", "kafka value decode+validate", "kafka value decode+validate, no memo",
        "produce (C floor)", "produce (Swift layer)", "consume (C floor)", "consume (Swift layer)",
        "consume trades (C floor)", "consume trades (Swift layer)", "aggregator from Kafka", "aggregator from Kafka, dashboard attached", "window update in-process",
        "storage sink: files", "storage sink: PostgreSQL",
        "sim-exchange → WebSocket client", "synthetic feed (in process)",
        "replay --dry-run --speed max", "replay --dry-run --speed max, steerable", "produce for replay (C floor)", "replay --speed max → Kafka", "replay --speed max → Kafka, from its tape", "replay --speed max → Kafka --headers", "replay pacing 10×", "replay pacing 100×",
        "backtest, JSONL recording", "backtest, binary tape",
        "end-to-end @ 1k/s (C floor)", "end-to-end @ 1k/s (trade → aggregator)", "publish delay @ 1k/s (trade → TradePublisher)", "tick-to-alert @ 1k/s (trade → price-alerts)",
        "end-to-end @ 20k/s (C floor)", "end-to-end @ 20k/s (trade → aggregator)", "publish delay @ 20k/s (trade → TradePublisher)", "tick-to-alert @ 20k/s (trade → price-alerts)",
        "seek, plain recording", "seek, gzip recording",
    ] + [10, 1_000, 10_000].flatMap { n in
        ["consume trades (C floor) · \(n) symbols", "aggregator from Kafka · \(n) symbols", "window update in-process · \(n) symbols"]
    } + [3, 12, 48].flatMap { n in
        ["produce (C floor)", "produce (Swift layer)", "consume (C floor)", "consume (Swift layer)"].map { "\($0) · \(n) partitions" }
    }

    /// Runs the real executable the way a user does and checks every row of its JSON and HTML.
    @Test func benchQuickReportsEveryScenarioWithSaneNumbersAsTableJSONAndHTML() async throws {
        guard let binary = benchBinary() else {
            Issue.record("the bench executable is not built; run swift build --build-tests")
            return
        }
        let config = try TestBroker.config()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("bench")).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["--quick", "--bootstrap-servers", config.bootstrapServers, "--messages", "5000", "--trades", "20000",
                       "--duration", "0.5", "--json", dir + "/r.json", "--html", dir + "/r.html"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let table = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(table)")

        let report = try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/r.json")))
        #expect(report.results.map(\.scenario) == Self.expected)
        #expect(report.librdkafka == KafkaAdmin.librdkafkaVersion && report.cores > 0 && report.memoryGB > 0)
        #expect(table.contains("librdkafka \(KafkaAdmin.librdkafkaVersion)"))
        for r in report.results {
            #expect(table.contains(r.scenario))
            #expect(r.messages > 0 && r.messageBytes > 0, "\(r.scenario)")
            #expect(r.seconds > 0 && r.seconds.isFinite, "\(r.scenario)")
            #expect(r.messagesPerSecond > 0 && r.megabytesPerSecond > 0 && r.messagesPerSecond.isFinite, "\(r.scenario)")
            #expect(r.cpuSeconds >= 0 && r.cpuSeconds.isFinite, "\(r.scenario)")
        }
        for r in report.results where r.scenario.contains("Swift layer") && !r.scenario.hasPrefix("consume trades") || r.scenario.hasPrefix("replay --speed max") {
            #expect((r.ratioToFloor ?? 0) > 0, "\(r.scenario) has no ratio to the C floor")
        }
        #expect(report.results.first { $0.scenario == "consume (Swift layer)" }?.messages == 5_000)
        #expect(report.results.first { $0.scenario == "replay --speed max → Kafka" }?.messages == 5_000)
        #expect(report.results.first { $0.scenario == "replay --speed max → Kafka, from its tape" }?.messages == 5_000)

        let e2e = report.results.filter { $0.scenario.hasPrefix("end-to-end") }
        #expect(e2e.count == 4)
        for r in e2e {
            #expect(r.messages == Int(r.offeredRate! * 0.5), "\(r.scenario): every paced message arrives")
            let l = try #require(r.latencyMs, "\(r.scenario)")
            let ordered = ["p50", "p90", "p99", "p99.9", "max"].map { l[$0] ?? -1 }
            #expect(ordered.allSatisfy { $0 > 0 && $0.isFinite } && ordered == ordered.sorted(), "\(r.scenario): \(ordered)")
            let curve = try #require(r.latencyCurve)
            #expect(curve.map(\.percentile) == curve.map(\.percentile).sorted() && curve.map(\.ms) == curve.map(\.ms).sorted())
            #expect(curve.last?.ms == l["max"])
        }
        for r in e2e where !r.scenario.contains("C floor") { #expect((r.p99RatioToFloor ?? 0) > 0, "\(r.scenario)") }
        for r in report.results where r.scenario.hasPrefix("publish delay") {
            #expect(r.messages == Int(r.offeredRate! * 0.5), "\(r.scenario): one delay per paced message")
            let l = try #require(r.latencyMs, "\(r.scenario)")
            let ordered = ["p50", "p90", "p99", "p99.9", "max"].map { l[$0] ?? -1 }
            #expect(ordered.allSatisfy { $0 >= 0 && $0.isFinite } && ordered == ordered.sorted(), "\(r.scenario): \(ordered)")
        }
        for r in report.results where r.scenario.hasPrefix("aggregator from Kafka ·") || r.scenario.contains("(Swift layer) ·") {
            #expect((r.ratioToFloor ?? 0) > 0, "\(r.scenario) has no ratio to the C floor")
        }
        for factor in ["10×", "100×"] {
            let r = try #require(report.results.first { $0.scenario == "replay pacing \(factor)" })
            #expect(r.driftMs?.isFinite == true && (r.latencyMs?["max"] ?? -1) >= 0)
        }

        let html = try String(contentsOfFile: dir + "/r.html", encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("</html>"))
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"), "self-contained")
        #expect(html.components(separatedBy: "<svg").count - 1 == 2)
        let curves = report.results.filter { r in ["end-to-end", "publish delay", "tick-to-alert"].contains { r.scenario.hasPrefix($0) } }
        #expect(html.components(separatedBy: "<polyline").count - 1 == curves.count, "one latency curve per end-to-end, publish-delay and tick-to-alert row")
        for r in report.results { #expect(html.contains(r.scenario.replacingOccurrences(of: ">", with: "&gt;"))) }
    }

    @Test func badScenarioAndRateArgumentsAreRejectedWithTheValidChoices() throws {
        #expect(try BenchOptions.parseScenarios("kafka, e2e") == ["kafka", "e2e"])
        #expect(try BenchOptions.parseRates("1000,10k,2.5k") == [1_000, 10_000, 2_500])
        let unknown = #expect(throws: BenchOptions.Invalid.self) { try BenchOptions.parseScenarios("kafka,warp") }
        #expect(unknown?.description == "unknown scenario(s) warp; choose from codec, kafka, aggregator, storage, e2e, websocket, replay, backtest, seek, scaling, memory")
        #expect(try BenchOptions.parseScenarios("memory") == ["memory"] && !BenchOptions().scenarios.contains("memory"), "memory runs only when named")
        #expect(throws: BenchOptions.Invalid.self) { try BenchOptions.parseScenarios("") }
        for bad in ["fast", "0", "-5k", "nan"] {
            let e = #expect(throws: BenchOptions.Invalid.self) { try BenchOptions.parseRates(bad) }
            #expect(e?.description == "invalid rate \"\(bad)\": use messages per second like 1000 or 20k")
        }
    }

    @Test func baselineComparisonFlagsSlowerThroughputHigherP99AndWorseDrift() throws {
        var fast = BenchResult(scenario: "produce (Swift layer)", messages: 1000, messageBytes: 100, seconds: 1, cpuSeconds: 1)
        var latency = BenchResult(scenario: "end-to-end @ 20k/s (trade → aggregator)", messages: 1000, messageBytes: 90, seconds: 1, cpuSeconds: 1,
                                  latencyMs: ["p99": 10])
        latency.offeredRate = 20_000
        var pacing = BenchResult(scenario: "replay pacing 10×", messages: 100, messageBytes: 90, seconds: 1, cpuSeconds: 0)
        pacing.driftMs = 0.05
        let old = BenchReport(date: "old", cores: 2, memoryGB: 24, librdkafka: "2.16.0", broker: "Tansu", build: "release", results: [fast, latency, pacing])
        #expect(old.compare(to: old).regressions.isEmpty)
        fast.seconds = 2
        latency.latencyMs = ["p99": 12]
        pacing.driftMs = 2.5
        let new = BenchReport(date: "new", cores: 2, memoryGB: 24, librdkafka: "2.16.0", broker: "Tansu", build: "release", results: [fast, latency, pacing])
        let comparison = new.compare(to: old)
        #expect(comparison.regressions == [fast.scenario, latency.scenario, pacing.scenario])
        #expect(comparison.text.contains("0.50×") && comparison.text.contains("p99 1.20×"))
        let decoded = try JSONDecoder().decode(BenchReport.self, from: JSONEncoder().encode(new))
        #expect(decoded.results == new.results)
    }
}

@Suite("bench C floor settings")
struct CFloorSettingsTests {
    /// `-X` and `KAFKA_*` settings reach the C floor's clients too, so a settings comparison changes both sides.
    @Test func theCFloorRunsWithTheSwiftLayersSettingsAndOverrides() throws {
        var config = KafkaConfig(bootstrapServers: "127.0.0.1:1")
        try config.set("fetch.wait.max.ms=25")
        config.environmentProperties["socket.receive.buffer.bytes"] = "65536"
        let consumer = Dictionary(config.consumerProperties, uniquingKeysWith: { $1 })
        #expect(consumer["bootstrap.servers"] == "127.0.0.1:1")
        #expect(consumer["fetch.wait.max.ms"] == "25")
        #expect(consumer["socket.receive.buffer.bytes"] == "65536")
        #expect(consumer["fetch.queue.backoff.ms"] == KafkaConsumer.defaults["fetch.queue.backoff.ms"])
        #expect(consumer["enable.auto.commit"] == "true" && consumer["enable.auto.offset.store"] == "false")
        let producer = Dictionary(config.producerProperties, uniquingKeysWith: { $1 })
        #expect(producer["compression.codec"] == KafkaProducer.defaults["compression.codec"] && producer["fetch.wait.max.ms"] == "25")

        // A value librdkafka refuses reaches the C side, which fails with librdkafka's own message.
        try config.set("fetch.wait.max.ms=soon")
        let failure = #expect(throws: KafkaScenarios.Failure.self) {
            try CFloor.run("C consume", config: config) { _, consumer, err, errlen in
                var seconds = 0.0
                return cfloor_consume(consumer, "bench-never", "bench-never", 1, &seconds, err, errlen)
            }
        }
        #expect(failure?.description.hasPrefix("C consume: ") == true)
        #expect(failure?.description.contains("fetch.wait.max.ms") == true, "\(failure?.description ?? "")")
    }
}

@Suite("bench memory scenario")
struct BenchMemoryTests {
    /// The memory row replays every trade of the recording it writes and reports RSS samples.
    @Test func memoryRowReplaysEveryTradeAndReportsRSS() async throws {
        let rows = try await MemoryScenario(trades: 200_000).run(log: { _ in })
        let row = try #require(rows.first)
        #expect(rows.count == 1)
        #expect(row.messages == 200_000, "every trade of the recording is replayed")
        #expect(row.note?.hasPrefix("RSS ") == true, "\(row.note ?? "")")
        let megabytes = (row.note ?? "").split(separator: " ").compactMap { Double($0) }
        #expect(megabytes.count >= 3 && megabytes.prefix(3).allSatisfy { $0 > 1 }, "RSS figures in MB: \(row.note ?? "")")
    }
}

@Suite("bench scaling scenario")
struct BenchScalingTests {
    /// The symbol-count rows compare the same work per trade: each symbol trades once per interval of
    /// event time at any count, so the windows closed per trade stay the same while the symbols grow.
    @Test func symbolCountRowsCloseTheSameWindowsPerTrade() throws {
        let interval = ScalingScenario(config: KafkaConfig(bootstrapServers: "127.0.0.1:1"), trades: 0).symbolIntervalMs
        var perTrade: [Int: Double] = [:]
        for symbols in [10, 1_000] {
            var scenario = AggregatorScenario(config: KafkaConfig(bootstrapServers: "127.0.0.1:1"), trades: 300_000)
            scenario.symbols = symbols
            scenario.symbolIntervalMs = interval
            let tape = scenario.makeTape()
            var last: [String: Int64] = [:]
            for t in tape {
                if let previous = last[t.symbol] { #expect(t.timestamp - previous == interval, "\(symbols) symbols, \(t.symbol)") }
                last[t.symbol] = t.timestamp
            }
            #expect(last.count == symbols)
            let (_, windows) = try scenario.windowUpdate(tape, bytes: 1)
            perTrade[symbols] = Double(windows) / Double(tape.count)
        }
        let few = try #require(perTrade[10]), many = try #require(perTrade[1_000])
        #expect(few > 0.05 && abs(few - many) / few < 0.1, "windows per trade: \(perTrade)")
    }
}
