import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import CKafkaFloor
import Foundation

/// Produce and consume through the Swift Kafka layer and through the plain C API, with the
/// same client settings, message size, keys and broker, so the ratio isolates the wrapper.
public struct KafkaScenarios: Sendable {
    public var config: KafkaConfig
    public var messages: Int
    public var valueBytes: Int = 150
    public var keys: Int = 50
    public var partitions: Int = 6
    /// Appended to every row's name, e.g. " · 48 partitions".
    public var label = ""

    public init(config: KafkaConfig, messages: Int) { self.config = config; self.messages = messages }

    private func freshTopic(_ name: String) throws -> String {
        let topic = "bench-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: partitions)])
        return topic
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Returns (C floor, Swift layer) for produce, then the same for consume of what was produced.
    public func run() async throws -> [BenchResult] {
        let cTopic = try freshTopic("c")
        var cSeconds = 0.0
        let cProduce = try measure {
            try CFloor.run("C produce", config: config) { producer, _, err, errlen in
                cfloor_produce(producer, cTopic, Int64(messages), Int32(valueBytes), Int32(keys), &cSeconds, err, errlen)
            }
        }
        var results = [BenchResult(scenario: "produce (C floor)" + label, messages: messages, messageBytes: valueBytes, seconds: cSeconds, cpuSeconds: cProduce.cpu)]

        let swiftTopic = try freshTopic("swift")
        let producer = try KafkaProducer(config: config)
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueBytes)
        let keyBytes = (0..<keys).map { Array("SYM\($0)".utf8) }
        let swiftProduce = try measure {
            for i in 0..<messages { try producer.enqueue(topic: swiftTopic, key: keyBytes[i % keys], value: value) }
            try producer.flush(timeout: .seconds(60))
        }
        try producer.close()
        var produce = BenchResult(scenario: "produce (Swift layer)" + label, messages: messages, messageBytes: valueBytes, seconds: swiftProduce.seconds, cpuSeconds: swiftProduce.cpu)
        produce.ratioToFloor = produce.messagesPerSecond / results[0].messagesPerSecond
        results.append(produce)

        let group = "bench-c-\(UInt32.random(in: 0...UInt32.max))"
        let cConsume = try measure {
            try CFloor.run("C consume", config: config) { _, consumer, err, errlen in
                cfloor_consume(consumer, cTopic, group, Int64(messages), &cSeconds, err, errlen)
            }
        }
        let cConsumeResult = BenchResult(scenario: "consume (C floor)" + label, messages: messages, messageBytes: valueBytes, seconds: cSeconds, cpuSeconds: cConsume.cpu)
        results.append(cConsumeResult)

        let consumer = try KafkaConsumer(config: config, groupID: "bench-swift-\(UInt32.random(in: 0...UInt32.max))", topics: [swiftTopic])
        let cpu0 = processCPUSeconds()
        var first: ContinuousClock.Instant?
        var count = 0
        for try await message in consumer.messages {
            if first == nil { first = .now }
            count += 1
            if count % 1000 == 0 || count == messages { try consumer.store(message) }
            if count == messages { break }
        }
        let elapsed = ContinuousClock.now - (first ?? .now)
        let cpu = processCPUSeconds() - cpu0
        consumer.close()
        var consume = BenchResult(scenario: "consume (Swift layer)" + label, messages: count, messageBytes: valueBytes,
                                  seconds: elapsed.inSeconds, cpuSeconds: cpu)
        consume.ratioToFloor = consume.messagesPerSecond / cConsumeResult.messagesPerSecond
        results.append(consume)
        return results
    }
}
