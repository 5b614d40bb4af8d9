import Pipeline
import Dashboard
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import CKafkaFloor
import Foundation
import Logging

/// The aggregator consuming trades from Kafka, next to the C floor's and the Swift layer's raw
/// consume of the same topic in the same run; the aggregator again with a dashboard watching (against the mean
/// of a run before and one after without it); and the in-process window update rate on one core.
public struct AggregatorScenario: Sendable {
    public var config: KafkaConfig
    public var trades: Int

    /// Distinct symbols in the tape (trades go round-robin over them).
    public var symbols = 50

    public init(config: KafkaConfig, trades: Int) { self.config = config; self.trades = trades }

    /// Event time between two trades of one symbol, in milliseconds; nil: the tape advances 1 ms every 10 trades
    /// whatever the number of symbols. When set, the tape advances `symbolIntervalMs / symbols` per trade,
    /// so every symbol sees the same trades per window at any symbol count, and so does the output per trade.
    public var symbolIntervalMs: Int64?

    /// `trades` trades round-robin over `symbols` symbols, 10 per millisecond of event time (or
    /// one per symbol every ``symbolIntervalMs``).
    func makeTape() -> [Trade] {
        let names = (0..<symbols).map { "SYM\($0)" }
        var tape: [Trade] = []
        tape.reserveCapacity(trades)
        for i in 0..<trades {
            let price: Double = 100 + Double(i % 997) / 100
            let time: Int64 = 1_700_000_000_000 + (symbolIntervalMs.map { Int64(i) * $0 / Int64(symbols) } ?? Int64(i / 10))
            tape.append(Trade(symbol: names[i % symbols], price: price, timestamp: time, volume: Double(1 + i % 300), conditions: ["1"]))
        }
        return tape
    }

    /// A new 6-partition topic holding `tape`.
    func publish(_ tape: [Trade]) throws -> String {
        let topic = "bench-trades-\(UInt32.random(in: 0...UInt32.max))"
        try KafkaAdmin(config: config).ensureTopics([
            TopicSpec(name: topic, partitions: 6), TopicSpec(name: Topics.aggregatedMetrics, partitions: 3), TopicSpec(name: Topics.priceAlerts, partitions: 2),
        ])
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "bench")
        var i = 0
        while i < tape.count { try publisher.publish(Array(tape[i..<min(i + 1000, tape.count)])); i += 1000 }
        try publisher.producer.close(timeout: .seconds(120))
        return topic
    }

    /// The librdkafka C API consuming all of `topic` in a new group.
    func cFloor(topic: String, bytes: Int, name: String = "consume trades (C floor)") throws -> BenchResult {
        var cSeconds = 0.0
        let group = "bench-c-agg-\(UInt32.random(in: 0...UInt32.max))"
        let cConsume = try measure {
            try CFloor.run("C consume", config: config) { _, consumer, err, errlen in
                cfloor_consume(consumer, topic, group, Int64(trades), &cSeconds, err, errlen)
            }
        }
        return BenchResult(scenario: name, messages: trades, messageBytes: bytes, seconds: cSeconds, cpuSeconds: cConsume.cpu)
    }

    /// One `WindowAggregator` over `tape` on one core; `windows`: how many windows it closed.
    func windowUpdate(_ tape: [Trade], bytes: Int, name: String = "window update in-process") throws -> (result: BenchResult, windows: Int) {
        var window = try WindowAggregator()
        var out: [WindowMetrics] = []
        out.reserveCapacity(1 << 16)
        var windows = 0
        let update = measure {
            // Trades are read in place: iterating the array would copy each one (and retain its strings).
            tape.withUnsafeBufferPointer { trades in
                for i in trades.indices {
                    window.add(trades[i], into: &out)
                    if out.count > 60_000 { windows += out.count; out.removeAll(keepingCapacity: true) }
                }
            }
        }
        windows += out.count
        return (BenchResult(scenario: name, messages: tape.count, messageBytes: bytes, seconds: update.seconds, cpuSeconds: update.cpu), windows)
    }

    /// Rows for `symbols` symbols: the window update in-process, and the aggregator from Kafka against the C floor on the same topic.
    public func scaling() async throws -> [BenchResult] {
        let tape = makeTape()
        let topic = try publish(tape)
        let bytes = TradeMessage.encode(tape[0]).count
        let label = " · \(symbols) symbols"
        let floor = try cFloor(topic: topic, bytes: bytes, name: "consume trades (C floor)" + label)
        var agg = try await aggregate(topic: topic, bytes: bytes, dashboard: false)
        agg.scenario += label
        agg.ratioToFloor = agg.messagesPerSecond / floor.messagesPerSecond
        agg.note = String(format: "%.0f ns of wall per trade; ratio against the C floor on the same topic", 1e9 / agg.messagesPerSecond)
        // One pass over a million trades takes a tenth of a second, shorter than the VM's slow spells: the row is the median of 5.
        let passes = try (0..<5).map { _ in try windowUpdate(tape, bytes: bytes, name: "window update in-process" + label) }
        var (update, windows) = passes.sorted { $0.result.seconds < $1.result.seconds }[2]
        update.note = String(format: "%.0f ns per trade (median of 5 passes; %@); %.4f windows closed per trade", 1e9 / update.messagesPerSecond,
                             passes.map { String(format: "%.0f", 1e9 * $0.result.seconds / Double(tape.count)) }.joined(separator: " · "),
                             Double(windows) / Double(tape.count))
        return [floor, agg, update]
    }

    public func run() async throws -> [BenchResult] {
        let tape = makeTape()
        let topic = try publish(tape)
        let bytes = TradeMessage.encode(tape[0]).count

        let consumer = try KafkaConsumer(config: config, groupID: "bench-raw-\(UInt32.random(in: 0...UInt32.max))", topics: [topic])
        var first: ContinuousClock.Instant?
        var n = 0
        let cpu0 = processCPUSeconds()
        while n < trades, let batch = try await consumer.nextBatch(timeout: .seconds(30)) {
            if batch.isEmpty { break }
            if first == nil { first = .now }
            n += batch.count
        }
        let rawSeconds = (ContinuousClock.now - (first ?? .now)).inSeconds
        let rawCPU = processCPUSeconds() - cpu0
        consumer.close()
        let floor = try cFloor(topic: topic, bytes: bytes)
        var raw = BenchResult(scenario: "consume trades (Swift layer)", messages: n, messageBytes: bytes, seconds: rawSeconds, cpuSeconds: rawCPU)
        raw.ratioToFloor = raw.messagesPerSecond / floor.messagesPerSecond

        var agg = try await aggregate(topic: topic, bytes: bytes, dashboard: false)
        agg.ratioToFloor = agg.messagesPerSecond / floor.messagesPerSecond
        agg.note = String(format: "ratio against the C floor consuming the same topic in this run (%.2f× the Swift layer's raw consume)",
                          agg.messagesPerSecond / raw.messagesPerSecond)
        var watched = try await aggregate(topic: topic, bytes: bytes, dashboard: true)
        let again = try await aggregate(topic: topic, bytes: bytes, dashboard: false)
        let without = (agg.messagesPerSecond + again.messagesPerSecond) / 2
        watched.ratioToFloor = watched.messagesPerSecond / without
        watched.note = String(format: "a dashboard polling every second and rendering its page; ratio against the runs without it before and after (%.0f and %.0f msgs/s)",
                              agg.messagesPerSecond, again.messagesPerSecond)

        let inProcess = try windowUpdate(tape, bytes: bytes).result
        return [floor, raw, agg, watched, inProcess]
    }

    /// The aggregator, in a new group, over the whole topic; with a dashboard watching the cluster when `dashboard`.
    func aggregate(topic: String, bytes: Int, dashboard: Bool) async throws -> BenchResult {
        let aggregator = try benchAggregator(config: config, topic: topic, group: "bench-agg-\(UInt32.random(in: 0...UInt32.max))")
        var watching: Task<Void, any Error>?
        if dashboard {
            var dashboardOptions = DashboardMonitor.Options(kafka: config)
            dashboardOptions.tradesTopic = topic
            let monitor = try DashboardMonitor(options: dashboardOptions)
            watching = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await monitor.run() }
                    group.addTask {
                        // One open page: the state JSON after every pass.
                        var seen = -1
                        while !Task.isCancelled {
                            if monitor.version != seen { seen = monitor.version; _ = monitor.json(chartSymbol: nil) }
                            try await Task.sleep(for: .milliseconds(200))
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
        let running = Task { try await aggregator.run() }
        let cpu0 = processCPUSeconds()
        while aggregator.service.processed == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let start = ContinuousClock.now
        let deadline = start + .seconds(300)
        while aggregator.service.processed < trades, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        let result = BenchResult(scenario: dashboard ? "aggregator from Kafka, dashboard attached" : "aggregator from Kafka",
                                 messages: aggregator.service.processed, messageBytes: bytes,
                                 seconds: (ContinuousClock.now - start).inSeconds, cpuSeconds: processCPUSeconds() - cpu0)
        aggregator.service.consumer.finish()
        try await running.value
        watching?.cancel()
        _ = try? await watching?.value
        return result
    }
}
