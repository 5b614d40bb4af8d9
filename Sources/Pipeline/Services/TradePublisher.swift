import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation

/// Publishes trades to `raw-market-data`: one message per trade, keyed by symbol, the value
/// the ``TradeMessage`` JSON, the Kafka timestamp the trade time. Live ingest and replay both
/// publish through this type, so downstream consumers see the same messages from both.
///
/// With `headers: true` each message also carries `source` and `ingest_time` (Unix ms when the
/// trade was handed to Kafka). They are off by default: librdkafka allocates every header per
/// message on both sides, which doubles the producer's CPU per trade (`bench` measures it).
public final class TradePublisher: Sendable {
    public let producer: KafkaProducer
    public let topic: String
    public let source: String
    public let headers: Bool
    private let sourceHeader: KafkaHeader

    public init(producer: KafkaProducer, topic: String = Topics.rawMarketData, source: String, headers: Bool = false) {
        self.producer = producer
        self.topic = topic
        self.source = source
        self.headers = headers
        sourceHeader = KafkaHeader("source", source)
    }

    /// Appends `trades` to `batch` as this publisher's messages (key, value and timestamp), to be
    /// published later with ``publish(_:)-(KafkaRecordBatch)``, possibly on another thread.
    public static func encode(_ trades: [Trade], into batch: inout KafkaRecordBatch) {
        for trade in trades {
            var symbol = trade.symbol
            symbol.withUTF8 { key in
                batch.append(key: UnsafeRawBufferPointer(key), timestamp: trade.timestamp) { TradeMessage.encode(trade, into: &$0) }
            }
        }
    }

    /// Hands `trades` to the producer; blocks while the in-flight limit is reached.
    public func publish(_ trades: [Trade]) throws(KafkaError) {
        guard !trades.isEmpty else { return }
        var batch = KafkaRecordBatch(capacity: trades.count)
        Self.encode(trades, into: &batch)
        try publish(batch)
    }

    /// Hands trades encoded by ``encode(_:into:)`` to the producer, in order, with the headers
    /// (`ingest_time` is now); blocks while the in-flight limit is reached.
    public func publish(_ batch: KafkaRecordBatch) throws(KafkaError) {
        guard !batch.isEmpty else { return }
        let headers = self.headers ? [sourceHeader, KafkaHeader("ingest_time", String(Int64(Date().timeIntervalSince1970 * 1000)))] : []
        try producer.enqueue(topic: topic, batch: batch, headers: headers)
    }

    /// Waits for every published trade to be acknowledged; throws the first failure.
    public func flush(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try producer.flush(timeout: timeout)
    }
}
