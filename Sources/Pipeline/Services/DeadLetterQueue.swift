import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Synchronization

/// Sends messages a consumer cannot use to `dead-letter-queue`, unchanged (same key, value
/// and headers), with headers naming where they came from and why they were rejected:
/// `dlq.source.topic`, `dlq.source.partition`, `dlq.source.offset`, `dlq.consumer.group`,
/// `dlq.reason`.
public final class DeadLetterQueue: Sendable {
    public let producer: KafkaProducer
    public let topic: String
    public let groupID: String
    private let sent = Atomic<Int>(0)

    public init(producer: KafkaProducer, groupID: String, topic: String = Topics.deadLetterQueue) {
        self.producer = producer
        self.groupID = groupID
        self.topic = topic
    }

    public var count: Int { sent.load(ordering: .relaxed) }

    public func send(_ message: KafkaMessage, reason: String) throws(KafkaError) {
        let headers = message.headers + [
            KafkaHeader("dlq.source.topic", message.topic),
            KafkaHeader("dlq.source.partition", String(message.partition)),
            KafkaHeader("dlq.source.offset", String(message.offset)),
            KafkaHeader("dlq.consumer.group", groupID),
            KafkaHeader("dlq.reason", reason),
        ]
        try producer.enqueue(topic: topic, key: message.key, value: message.value, headers: headers, timestamp: message.timestamp)
        sent.add(1, ordering: .relaxed)
    }
}
