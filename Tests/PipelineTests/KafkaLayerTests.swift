@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import CRdKafka
import Foundation
import Testing

@Suite("Kafka layer against a real broker", .serialized)
struct KafkaLayerTests {
    let config: KafkaConfig
    init() throws { config = try TestBroker.config() }

    func makeTopic(_ prefix: String, partitions: Int) throws -> String {
        let name = TestBroker.unique(prefix)
        let statuses = try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: name, partitions: partitions)])
        #expect(statuses == [TopicStatus(name: name, outcome: .created)])
        return name
    }

    @Test func ensureTopicsCreatesSeedTopicsAndLeavesExistingOnesAlone() throws {
        let admin = try KafkaAdmin(config: config)
        let suffix = TestBroker.unique("")
        let specs = TopicSpec.pipelineTopics.map { var s = $0; s.name += suffix; return s }
        let first = try admin.ensureTopics(specs)
        #expect(first.allSatisfy { $0.outcome == .created })
        let topics = try admin.topics()
        #expect(specs.map { topics[$0.name] } == [3, 3, 2, 1])
        let second = try admin.ensureTopics(specs)
        #expect(second.map(\.outcome) == [.existed(partitions: 3), .existed(partitions: 3), .existed(partitions: 2), .existed(partitions: 1)])
    }

    @Test func roundTripThroughAConsumerGroup() async throws {
        let topic = try makeTopic("roundtrip", partitions: 3)
        let producer = try KafkaProducer(config: config)
        let symbols = ["AAPL", "GOOGL", "MSFT", "TSLA", "BINANCE:BTCUSDT", "IC MARKETS:1"]
        let base: Int64 = 1_680_286_539_953
        var reports: [Int: DeliveryReport] = [:]
        for i in 0..<600 {
            let symbol = symbols[i % symbols.count]
            let headers = [KafkaHeader("source", "test"), KafkaHeader("seq", "\(i)")]
            if i % 10 == 0 {
                reports[i] = try await producer.send(topic: topic, key: Array(symbol.utf8), value: Array("v\(i)".utf8), headers: headers, timestamp: base + Int64(i))
            } else {
                try producer.enqueue(topic: topic, key: Array(symbol.utf8), value: Array("v\(i)".utf8), headers: headers, timestamp: base + Int64(i))
            }
        }
        try producer.close()
        #expect(producer.statistics == ProducerStatistics(enqueued: 600, delivered: 600, failed: 0))

        let consumer = try KafkaConsumer(config: config, groupID: TestBroker.unique("g"), topics: [topic])
        let messages = try await collect(consumer, count: 600)
        consumer.close()
        #expect(messages.count == 600)
        let bySeq = Dictionary(grouping: messages) { Int(String(decoding: $0.header("seq") ?? [], as: UTF8.self)) ?? -1 }
        #expect(bySeq.keys.sorted() == Array(0..<600))
        #expect(bySeq.values.allSatisfy { $0.count == 1 })
        var partitionOf: [String: Int32] = [:]
        for m in messages {
            let seq = Int(String(decoding: m.header("seq")!, as: UTF8.self))!
            let key = String(decoding: m.key ?? [], as: UTF8.self)
            #expect(key == symbols[seq % symbols.count])
            #expect(m.value == Array("v\(seq)".utf8))
            #expect(m.withUnsafeValue { Array($0) } == m.value)
            #expect(withUnsafePointer(to: m) { p in KafkaMessage.withUnsafeValue(at: p) { Array($0) } } == m.value)
            #expect(m.timestamp == base + Int64(seq))
            #expect(m.header("source") == Array("test".utf8))
            #expect(partitionOf[key, default: m.partition] == m.partition)
            partitionOf[key] = m.partition
            if let r = reports[seq] { #expect(r.partition == m.partition && r.offset == m.offset && r.topic == topic) }
            #expect(m.partition == Murmur2.partition(forKey: Array(key.utf8), partitions: 3))
        }
    }

    @Test func consumptionResumesAfterTheLastCommittedOffset() async throws {
        let topic = try makeTopic("resume", partitions: 1)
        let producer = try KafkaProducer(config: config)
        for i in 0..<100 { try producer.enqueue(topic: topic, key: nil, value: Array("\(i)".utf8)) }
        try producer.flush()
        let group = TestBroker.unique("g")

        let first = try KafkaConsumer(config: config, groupID: group, topics: [topic])
        let firstBatch = try await collect(first, count: 40)
        first.close()
        #expect(firstBatch.map(\.offset) == Array(0..<40))

        for i in 100..<120 { try producer.enqueue(topic: topic, key: nil, value: Array("\(i)".utf8)) }
        try producer.close()
        let second = try KafkaConsumer(config: config, groupID: group, topics: [topic])
        #expect(try second.committed([TopicPartition(topic: topic, partition: 0)]).first?.offset == 40)
        let rest = try await collect(second, count: 80)
        second.close()
        #expect(rest.map(\.offset) == Array(40..<120))
        #expect(rest.map { String(decoding: $0.value, as: UTF8.self) } == (40..<120).map(String.init))
    }

    @Test func twoMembersSplitThePartitionsAndOneTakesOverWhenTheOtherLeaves() async throws {
        let topic = try makeTopic("split", partitions: 4)
        let group = TestBroker.unique("g")
        let all = Set((0..<4).map { TopicPartition(topic: topic, partition: Int32($0)) })
        let a = try KafkaConsumer(config: config, groupID: group, topics: [topic])
        let drainA = Task { for try await _ in a.messages {} }
        #expect(try await eventually { a.assignment == all })
        let b = try KafkaConsumer(config: config, groupID: group, topics: [topic])
        let drainB = Task { for try await _ in b.messages {} }
        #expect(try await eventually {
            !a.assignment.isEmpty && !b.assignment.isEmpty && a.assignment.isDisjoint(with: b.assignment) && a.assignment.union(b.assignment) == all
        })
        b.close()
        #expect(try await eventually { a.assignment == all })
        a.close()
        _ = try await drainA.value
        _ = try await drainB.value
    }

    @Test func anUnreachableBrokerGivesAClearErrorWithinTheTimeout() async throws {
        let port = try LocalBroker.freePort()
        let dead = KafkaConfig(bootstrapServers: "127.0.0.1:\(port)", properties: ["message.timeout.ms": "1500"])
        let start = ContinuousClock.now
        let error = await #expect(throws: KafkaError.self) {
            try await KafkaProducer(config: dead).send(topic: "t", key: nil, value: [1])
        }
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(error?.name == "_MSG_TIMED_OUT")
        #expect(error?.isRetriable == true)

        let adminStart = ContinuousClock.now
        let adminError = #expect(throws: KafkaError.self) { try KafkaAdmin(config: dead).topics(timeout: .seconds(1)) }
        #expect(ContinuousClock.now - adminStart < .seconds(3))
        #expect(adminError?.description.contains("127.0.0.1:\(port)") == true)
    }

    @Test func invalidPropertiesAreRejectedWithTheirName() throws {
        var bad = config
        try bad.set("linger.ms=forever")
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(config: bad) }
        #expect(error?.message.contains("linger.ms") == true)
        #expect(throws: KafkaError.self) { try bad.set("no-equals-sign") }
    }

    @Test func producingManyMessagesDoesNotGrowTheProcess() throws {
        let topic = try makeTopic("leak", partitions: 3)
        let producer = try KafkaProducer(config: config)
        let value = [UInt8](repeating: 65, count: 150)
        func round() throws {
            for i in 0..<100_000 {
                try producer.enqueue(topic: topic, key: Array("SYM\(i % 50)".utf8), value: value, headers: [KafkaHeader("h", "v")], timestamp: Int64(i))
            }
            try producer.flush()
        }
        try round()
        let afterFirst = residentMemory()
        try round()
        try round()
        let afterThird = residentMemory()
        try producer.close()
        #expect(producer.statistics.delivered == 300_000)
        #expect(afterThird - afterFirst < 24 << 20, "grew \((afterThird - afterFirst) >> 20) MB over 200k more messages")
    }

    @Test func kcatReadsWhatTheProjectProduced() async throws {
        guard let kcat = Kcat.locate() else {
            Issue.record("kcat not found; scripts/setup.sh installs it")
            return
        }
        let topic = try makeTopic("kcat", partitions: 3)
        let producer = try KafkaProducer(config: config)
        let report = try await producer.send(topic: topic, key: Array("BINANCE:BTCUSDT".utf8), value: Array(#"{"symbol":"BINANCE:BTCUSDT","price":9653.07}"#.utf8))
        try producer.close()
        let out = try kcat.run(["-b", try TestBroker.bootstrapServers(), "-C", "-t", topic, "-p", "\(report.partition)", "-o", "\(report.offset)", "-c", "1", "-e", "-q", "-f", "%k|%p|%o|%s\\n"])
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == #"BINANCE:BTCUSDT|\#(report.partition)|\#(report.offset)|{"symbol":"BINANCE:BTCUSDT","price":9653.07}"#)

        _ = try kcat.run(["-b", try TestBroker.bootstrapServers(), "-P", "-t", topic, "-k", "BINANCE:BTCUSDT", "-X", "partitioner=murmur2_random"], input: "from-kcat\n")
        let consumer = try KafkaConsumer(config: config, groupID: TestBroker.unique("g"), topics: [topic])
        let both = try await collect(consumer, count: 2)
        consumer.close()
        #expect(both.count == 2)
        #expect(Set(both.map(\.partition)) == [report.partition])
    }
}

/// Java's murmur2 partitioner, written independently of librdkafka for the tests.
enum Murmur2 {
    static func hash(_ data: [UInt8]) -> UInt32 {
        let m: UInt32 = 0x5bd1e995
        var h: UInt32 = 0x9747b28c ^ UInt32(data.count)
        var i = 0
        while i + 4 <= data.count {
            var k = UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
            k = k &* m; k ^= k >> 24; k = k &* m
            h = h &* m; h ^= k
            i += 4
        }
        let rest = data.count - i
        if rest >= 3 { h ^= UInt32(data[i + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(data[i + 1]) << 8 }
        if rest >= 1 { h ^= UInt32(data[i]); h = h &* m }
        h ^= h >> 13; h = h &* m; h ^= h >> 15
        return h
    }

    static func partition(forKey key: [UInt8], partitions: Int32) -> Int32 {
        Int32(bitPattern: hash(key) & 0x7fffffff) % partitions
    }
}
