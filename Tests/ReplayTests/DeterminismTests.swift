@testable import Feeds
@testable import Recording
import MarketData
import Pipeline
import Aggregation
import Kafka
import SimExchange
import MarketStreamTesting
import Foundation
import Logging
import Testing

@Suite("Aggregated metrics do not depend on replay speed", .serialized)
struct DeterminismTests {
    @Test func oneTimesAndMaxSpeedGiveIdenticalAggregatedMetrics() async throws {
        let kafka = try TestBroker.config()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let path = root + "/recordings/btc.jsonl"
        let header = try RecordingReader(path: path).header

        func run(_ speed: Speed) async throws -> [String] {
            let raw = TestBroker.unique("det-raw"), metrics = TestBroker.unique("det-metrics")
            try KafkaAdmin(config: kafka).ensureTopics([TopicSpec(name: raw, partitions: 3), TopicSpec(name: metrics, partitions: 3), TopicSpec(name: Topics.priceAlerts, partitions: 2)])
            var options = ReplayOptions(speed: speed)
            options.toNs = header.startNs + 4_000_000_000
            let session = RecordingFeed(path: path, options: options)
            let publisher = ReplayKafka.pipeline(try ReplayKafka.connect(config: kafka, fileName: session.fileName, topic: raw, ensureTopics: false), speed: speed)
            try await IngestService(feed: session, sink: publisher).run()
            let summary = try #require(session.summary)
            publisher.close()
            #expect(summary.trades > 50)

            var service = ConsumerService.Options(groupID: TestBroker.unique("agg"))
            service.topic = raw
            service.checkpointInterval = .milliseconds(200)
            var aggregation = AggregatorService.Options()
            aggregation.window = WindowConfig(windowMs: 1000, hopMs: 500, allowedLatenessMs: 0)
            aggregation.metricsTopic = metrics
            aggregation.alertRules = [AlertRule(symbol: "*", condition: .changeBeyond(0.001))]
            let aggregator = try AggregatorService(service: try ConsumerService(config: kafka, options: service, logger: Logger(label: "det")), options: aggregation)
            let running = Task { try await aggregator.run() }
            let reader = try KafkaConsumer(config: kafka, groupID: TestBroker.unique("r"), topics: [metrics])
            let out = try await collect(reader, count: .max, timeout: .seconds(10))
            reader.close()
            aggregator.service.consumer.finish()
            try await running.value
            return out.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
                .map { "\($0.partition) \(String(decoding: $0.key ?? [], as: UTF8.self)) \($0.timestamp ?? -1) \(String(decoding: $0.value, as: UTF8.self))" }
        }

        let start = ContinuousClock.now
        let atOne = try await run(.factor(1))
        #expect(ContinuousClock.now - start >= .seconds(3.9))
        let atMax = try await run(.max)
        #expect(atOne.count > 5)
        #expect(atOne == atMax)
    }
}
