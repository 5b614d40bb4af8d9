import Feed
import Foundation

/// Publishes trades to `raw-market-data`: one message per trade, keyed by symbol, the value
/// the ``TradeMessage`` JSON, the Kafka timestamp the trade time, and headers `source` and
/// `ingest_time` (Unix ms when the trade was handed to Kafka). Live ingest and replay both
/// publish through this type, so downstream consumers cannot tell them apart.
///
/// The two headers cost CPU on both sides (librdkafka allocates each one per message; `bench`
/// measures it): with `headers: false` messages carry none, for load tests that need the last
/// bit of throughput.
public final class TradePublisher: Sendable {
    public let producer: KafkaProducer
    public let topic: String
    public let source: String
    public let headers: Bool
    private let sourceHeader: KafkaHeader

    public init(producer: KafkaProducer, topic: String = Topics.rawMarketData, source: String, headers: Bool = true) {
        self.producer = producer
        self.topic = topic
        self.source = source
        self.headers = headers
        sourceHeader = KafkaHeader("source", source)
    }

    /// Hands `trades` to the producer; blocks while the in-flight limit is reached.
    public func publish(_ trades: [Trade]) throws(KafkaError) {
        guard !trades.isEmpty else { return }
        let headers = self.headers ? [sourceHeader, KafkaHeader("ingest_time", String(Int64(Date().timeIntervalSince1970 * 1000)))] : []
        var value: [UInt8] = []
        value.reserveCapacity(160)
        for trade in trades {
            value.removeAll(keepingCapacity: true)
            TradeMessage.encode(trade, into: &value)
            var symbol = trade.symbol
            let result: Result<Void, KafkaError> = symbol.withUTF8 { key in
                value.withUnsafeBytes { bytes in
                    Result { () throws(KafkaError) in
                        try producer.enqueue(topic: topic, key: UnsafeRawBufferPointer(key), value: bytes, headers: headers, timestamp: trade.timestamp)
                    }
                }
            }
            try result.get()
        }
    }

    /// Waits for every published trade to be acknowledged; throws the first failure.
    public func flush(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try producer.flush(timeout: timeout)
    }
}
