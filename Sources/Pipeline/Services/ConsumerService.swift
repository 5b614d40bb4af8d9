import Feed
import Foundation
import Logging
import Metrics
import Synchronization

/// What every consumer service shares: a group member on `raw-market-data`, a producer for
/// its outputs and the dead-letter queue, and at-least-once checkpoints.
///
/// Contract: a record's offset is committed only after everything it produced (outputs, a
/// dead letter, a stored file) was acknowledged by Kafka or made durable. ``run(_:)`` processes
/// batches until ``KafkaConsumer/finish()`` (graceful shutdown), then finishes the in-flight
/// batch, flushes, commits and leaves the group. Periodic commits do not wait for the broker
/// (processing goes on; a failed one is logged and covered by the next); the final one does.
public final class ConsumerService: Sendable {
    public struct Options: Sendable {
        public var groupID: String
        public var topic: String = Topics.rawMarketData
        /// Longest time between checkpoints (flush outputs, commit offsets).
        public var checkpointInterval: Duration = .seconds(1)
        public init(groupID: String) { self.groupID = groupID }
    }

    public let consumer: KafkaConsumer
    public let producer: KafkaProducer
    public let deadLetters: DeadLetterQueue
    public let options: Options
    let logger: Logger
    let messagesIn: Counter
    let deadLettered: Counter
    let lag: Gauge
    private let processedCount = Atomic<Int>(0)

    /// Records handled so far (valid and dead-lettered).
    public var processed: Int { processedCount.load(ordering: .relaxed) }

    public init(config: KafkaConfig, options: Options, logger: Logger) throws(KafkaError) {
        self.options = options
        self.logger = logger
        let log = logger
        consumer = try KafkaConsumer(config: config, groupID: options.groupID, topics: [options.topic], commitPolicy: .manual) { event in
            switch event {
            case .assigned(let p): log.info("assigned \(p.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))")
            case .revoked(let p): log.info("revoked \(p.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))")
            }
        }
        producer = try KafkaProducer(config: config)
        deadLetters = DeadLetterQueue(producer: producer, groupID: options.groupID)
        let dims = [("group", options.groupID)]
        messagesIn = Counter(label: "pipeline_messages_in_total", dimensions: dims)
        deadLettered = Counter(label: "pipeline_dead_letters_total", dimensions: dims)
        lag = Gauge(label: "pipeline_consumer_lag", dimensions: dims)
    }

    /// The per-batch work of a service: it gets the batch's valid trades (poison records are
    /// already dead-lettered) and returns once the batch's outputs are enqueued.
    public typealias BatchHandler = @Sendable ([(trade: Trade, message: KafkaMessage)]) async throws -> Void

    /// Processes until graceful shutdown. `onIdle` runs when no record arrived for a
    /// checkpoint interval. `beforeCheckpoint` (`final` on shutdown) runs before every commit: when it returns offsets,
    /// exactly those are committed (a service that keeps records, like storage, returns what it
    /// made durable); when it returns `nil`, everything processed so far is.
    public func run(
        _ handle: BatchHandler,
        onIdle: @Sendable () async throws -> Void = {},
        beforeCheckpoint: @Sendable (_ final: Bool) async throws -> [TopicPartitionOffset]? = { _ in nil }
    ) async throws {
        var pending: [TopicPartition: Int64] = [:]
        var lastCheckpoint = ContinuousClock.now
        func checkpoint(final: Bool = false) async throws {
            let explicit = try await beforeCheckpoint(final)
            try producer.flush(timeout: .seconds(60))
            let offsets = explicit ?? pending.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
            if !offsets.isEmpty { try consumer.commit(offsets, wait: final) }
            pending.removeAll()
            lag.record(consumer.lag())
            lastCheckpoint = .now
        }
        while let batch = try await consumer.nextBatch(timeout: options.checkpointInterval) {
            if batch.isEmpty {
                try await onIdle()
            } else {
                var trades: [(trade: Trade, message: KafkaMessage)] = []
                trades.reserveCapacity(batch.count)
                var run: (partition: TopicPartition, next: Int64)?
                for message in batch {
                    if let trade = try deadLetters.trade(from: message) {
                        trades.append((trade, message))
                    } else {
                        deadLettered.increment()
                        logger.warning("dead-lettered \(message.topic)[\(message.partition)]@\(message.offset)")
                    }
                    if let r = run, r.partition.partition == message.partition, r.partition.topic == message.topic {
                        run!.next = message.offset + 1
                    } else {
                        if let r = run { pending[r.partition] = r.next }
                        run = (TopicPartition(topic: message.topic, partition: message.partition), message.offset + 1)
                    }
                }
                if let r = run { pending[r.partition] = r.next }
                messagesIn.increment(by: batch.count)
                try await handle(trades)
                processedCount.add(batch.count, ordering: .relaxed)
            }
            if ContinuousClock.now - lastCheckpoint >= options.checkpointInterval { try await checkpoint() }
        }
        try await checkpoint(final: true)
        try producer.close()
        consumer.close()
    }
}
