import Pipeline
import Kafka
import Aggregation
import MarketData
import MarketStreamTesting
import Foundation
import Logging
import Testing

/// A partition with thousands of symbols has a checkpoint record above Kafka's 1 MB default
/// message size: the aggregator still checkpoints it, and a new member restores it and continues.
@Suite("aggregator state above 1 MB")
struct LargeStateTests {
    static func publish(_ config: KafkaConfig, topic: String, symbols: Int, from: Int64, seconds: Int64) throws -> Int {
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "test")
        var count = 0
        for second in stride(from: 0, to: seconds, by: 10) {
            let trades = (0..<symbols).map { s in
                Trade(symbol: "SYM\(s)", price: 100 + Double(s % 97) / 10, timestamp: from + second * 1000 + Int64(s % 1000), volume: 1, conditions: nil)
            }
            try publisher.publish(trades)
            count += trades.count
        }
        try publisher.producer.close(timeout: .seconds(60))
        return count
    }

    func member(_ config: KafkaConfig, topic: String, group: String, metrics: String, alerts: String) throws -> AggregatorService {
        var options = ConsumerService.Options(groupID: group)
        options.topic = topic
        var aggregator = AggregatorService.Options()
        aggregator.metricsTopic = metrics
        aggregator.alertsTopic = alerts
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return try AggregatorService(service: try ConsumerService(config: config, options: options, logger: logger), options: aggregator)
    }

    /// Runs `member` until it has handled `count` records, then stops it gracefully (final checkpoint).
    func run(_ member: AggregatorService, until count: Int) async throws {
        let running = Task { try await member.run() }
        let done = try await eventually(timeout: .seconds(90)) { member.service.processed >= count }
        member.service.consumer.finish()
        try await running.value
        #expect(done, "processed \(member.service.processed) of \(count)")
    }

    @Test(.timeLimit(.minutes(3)))
    func stateAboveOneMegabyteIsCheckpointedAndRestored() async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("big-state"), group = TestBroker.unique("big-state-g")
        let metrics = group + "-metrics", alerts = group + "-alerts"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 1), TopicSpec(name: metrics, partitions: 1), TopicSpec(name: alerts, partitions: 1)])
        // 3,000 symbols with a trade every 10 s for 70 s: each keeps its 60 s of 10 s panes.
        let first = try Self.publish(config, topic: topic, symbols: 3_000, from: 1_700_000_000_000, seconds: 70)
        try await run(try member(config, topic: topic, group: group, metrics: metrics, alerts: alerts), until: first)

        let state = try readTopic(group + "-state", config: config)
        let biggest = state.map(\.value.count).max() ?? 0
        #expect(biggest > 1_000_000, "the checkpoint of 3,000 symbols is \(biggest) bytes")

        // A new member restores that state and continues after it: it handles only the new records.
        let second = try Self.publish(config, topic: topic, symbols: 3_000, from: 1_700_000_070_000, seconds: 20)
        let next = try member(config, topic: topic, group: group, metrics: metrics, alerts: alerts)
        try await run(next, until: second)
        #expect(next.service.processed == second, "the restored member handled \(next.service.processed) records, not only the \(second) new ones")
        let windows = try readTopic(metrics, config: config).compactMap { WindowMetrics(json: $0.value) }
        let keys = windows.map { "\($0.symbol)@\($0.windowStart)" }
        #expect(!windows.isEmpty && Set(keys).count == keys.count, "\(keys.count - Set(keys).count) windows written twice across the restart")
    }
}
