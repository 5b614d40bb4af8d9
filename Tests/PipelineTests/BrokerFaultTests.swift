import Pipeline
import Kafka
import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import CRdKafka
import Foundation
import Testing

@Suite("Producer under injected broker faults (librdkafka mock cluster)", .serialized)
struct BrokerFaultTests {
    func consumeAll(_ bootstrap: String, topic: String, count: Int) async throws -> [Int] {
        let consumer = try KafkaConsumer(config: KafkaConfig(bootstrapServers: bootstrap), groupID: TestBroker.unique("g"), topics: [topic])
        defer { consumer.close() }
        return try await collect(consumer, count: count, timeout: .seconds(40)).map { Int(String(decoding: $0.value, as: UTF8.self))! }
    }

    @Test func retriableRequestErrorsAreRetriedWithoutLossOrDuplicates() async throws {
        let mock = MockCluster()
        mock.createTopic("faults", partitions: 3)
        mock.failProduceRequests(Array(repeating: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, count: 5)
            + Array(repeating: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, count: 3))
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: mock.bootstrapServers))
        for i in 0..<1000 { try producer.enqueue(topic: "faults", key: Array("K\(i % 7)".utf8), value: Array("\(i)".utf8)) }
        try producer.close()
        #expect(producer.statistics == ProducerStatistics(enqueued: 1000, delivered: 1000, failed: 0))
        let seen = try await consumeAll(mock.bootstrapServers, topic: "faults", count: 1000)
        #expect(seen.sorted() == Array(0..<1000))
    }

    @Test func messagesSentWhileEveryBrokerIsDownAreDeliveredWhenTheyComeBack() async throws {
        let mock = MockCluster()
        mock.createTopic("down", partitions: 3)
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: mock.bootstrapServers))
        _ = try await producer.send(topic: "down", key: nil, value: Array("warm-up".utf8))
        for id: Int32 in 1...3 { mock.setBrokerDown(id) }
        for i in 0..<300 { try producer.enqueue(topic: "down", key: Array("K\(i % 5)".utf8), value: Array("\(i)".utf8)) }
        try await Task.sleep(for: .seconds(2))
        #expect(producer.statistics.delivered == 1)
        for id: Int32 in 1...3 { mock.setBrokerUp(id) }
        try producer.close()
        #expect(producer.statistics == ProducerStatistics(enqueued: 301, delivered: 301, failed: 0))
    }

    @Test func aNonRetriableErrorSurfacesToTheCaller() async throws {
        let mock = MockCluster()
        mock.createTopic("denied", partitions: 1)
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: mock.bootstrapServers))
        mock.failProduceRequests([RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED])
        let error = await #expect(throws: KafkaError.self) {
            try await producer.send(topic: "denied", key: nil, value: [1])
        }
        #expect(error?.name == "TOPIC_AUTHORIZATION_FAILED")
        #expect(error?.isRetriable == false)
        #expect(producer.statistics.failed == 1)
    }

    @Test func deliveryTimesOutWhenBrokersStayDown() async throws {
        let mock = MockCluster()
        mock.createTopic("gone", partitions: 1)
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: mock.bootstrapServers, properties: ["message.timeout.ms": "1500"]))
        _ = try await producer.send(topic: "gone", key: nil, value: [0])
        for id: Int32 in 1...3 { mock.setBrokerDown(id) }
        let start = ContinuousClock.now
        let error = await #expect(throws: KafkaError.self) { try await producer.send(topic: "gone", key: nil, value: [1]) }
        #expect(error?.name == "_MSG_TIMED_OUT")
        #expect(ContinuousClock.now - start < .seconds(6))
        try producer.enqueue(topic: "gone", key: nil, value: [2])
        let flushError = #expect(throws: KafkaError.self) { try producer.flush(timeout: .seconds(5)) }
        #expect(flushError?.name == "_MSG_TIMED_OUT")
        #expect(producer.statistics.failed == 2)
    }
}
