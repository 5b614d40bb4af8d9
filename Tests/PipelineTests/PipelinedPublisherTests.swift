@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

@Suite("Record batches and the pipelined publisher", .serialized)
struct PipelinedPublisherTests {
    func trades(_ range: Range<Int>) -> [Trade] {
        range.map { i in
            Trade(symbol: ["AAPL", "MSFT", "BINANCE:BTCUSDT"][i % 3], price: 100 + Double(i) / 100, timestamp: 1_700_000_000_000 + Int64(i),
                  volume: Double(i + 1), conditions: i % 2 == 0 ? ["1"] : nil)
        }
    }

    @Test func aBatchHoldsEachMessageAsAppended() {
        var batch = KafkaRecordBatch(capacity: 2)
        let key = Array("AAPL".utf8)
        key.withUnsafeBytes { k in batch.append(key: k, timestamp: 42) { $0 += Array("first".utf8) } }
        batch.append(key: nil, timestamp: nil) { $0 += Array("second".utf8) }
        #expect(batch.count == 2)
        #expect(batch.message(0).key == key && batch.message(0).value == Array("first".utf8) && batch.message(0).timestamp == 42)
        #expect(batch.message(1).key == nil && batch.message(1).value == Array("second".utf8) && batch.message(1).timestamp == nil)
        batch.removeAll()
        #expect(batch.isEmpty)
    }

    @Test func tradesArriveCompleteAndInCallOrderWhateverTheHandOffSize() async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("pipelined")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 1)])
        let all = trades(0..<1_000)
        let pipeline = PipelinedPublisher(TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "test", headers: true), coalesce: 7, depth: 2)
        var i = 0, size = 1
        while i < all.count {
            let end = min(all.count, i + size)
            try pipeline.publish(Array(all[i..<end]))
            i = end
            size = size % 13 + 1
        }
        try pipeline.flush()
        pipeline.close()
        #expect(pipeline.publisher.producer.statistics == ProducerStatistics(enqueued: 1_000, delivered: 1_000, failed: 0))

        let consumer = try KafkaConsumer(config: config, groupID: TestBroker.unique("g"), topics: [topic])
        defer { consumer.close() }
        let messages = try await collect(consumer, count: all.count, timeout: .seconds(60)).sorted { $0.offset < $1.offset }
        #expect(messages.map(\.value) == all.map { TradeMessage.encode($0) })
        #expect(messages.map { $0.key.map { String(decoding: $0, as: UTF8.self) } } == all.map(\.symbol))
        #expect(messages.map(\.timestamp) == all.map(\.timestamp))
        #expect(messages.allSatisfy { $0.header("source") == Array("test".utf8) && $0.header("ingest_time") != nil })
    }

    @Test func aProduceFailureSurfacesOnTheNextCallAndLaterTradesAreDropped() throws {
        let config = try TestBroker.config()
        let producer = try KafkaProducer(config: config)
        try producer.close()
        let pipeline = PipelinedPublisher(TradePublisher(producer: producer, topic: TestBroker.unique("closed"), source: "test"))
        try pipeline.publish(trades(0..<5))
        #expect(throws: KafkaError.self) { try pipeline.flush(timeout: .seconds(5)) }
        #expect(throws: KafkaError.self) { try pipeline.publish(trades(5..<6)) }
        pipeline.close()
        #expect(producer.statistics.enqueued == 0)
    }
}
