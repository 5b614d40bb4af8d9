import Feed
import Foundation
import Logging
import Metrics
import Synchronization

/// What every consumer service shares: a group member on `raw-market-data`, a producer for
/// its outputs and the dead-letter queue, and at-least-once checkpoints.
///
/// Contract: a record's offset is committed only after everything it produced (outputs, a
/// dead letter, a stored file) was acknowledged by Kafka or made durable; offsets of partitions
/// revoked meanwhile are not committed by this member. ``run(_:)`` processes
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
    public let config: KafkaConfig
    let logger: Logger
    let messagesIn: Counter
    let deadLettered: Counter
    let lag: Gauge
    private let processedCount = Atomic<Int>(0)
    /// Next offset to commit per partition, for services that let everything processed be committed.
    private let pending = Mutex<[TopicPartition: Int64]>([:])

    /// Records handled so far (valid and dead-lettered).
    public var processed: Int { processedCount.load(ordering: .relaxed) }

    public init(config: KafkaConfig, options: Options, logger: Logger) throws(KafkaError) {
        self.options = options
        self.config = config
        self.logger = logger
        consumer = try KafkaConsumer(config: config, groupID: options.groupID, topics: [], commitPolicy: .manual)
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

    /// Subscribes and processes until graceful shutdown. `onIdle` runs when no record arrived for a
    /// checkpoint interval. `beforeCheckpoint` (`final` on shutdown) runs before every commit: when it returns offsets,
    /// exactly those are committed (a service that keeps records or state, like storage and the
    /// aggregator, returns what it made durable); when it returns `nil`, everything processed so far is.
    /// `rebalance` decides where assigned partitions start and checkpoints revoked ones (see
    /// ``RebalanceHandler``); either way assignments are logged.
    public func run(
        _ handle: BatchHandler,
        onIdle: @Sendable () async throws -> Void = {},
        beforeCheckpoint: @Sendable (_ final: Bool) async throws -> [TopicPartitionOffset]? = { _ in nil },
        rebalance: RebalanceHandler = RebalanceHandler()
    ) async throws {
        let log = logger
        try consumer.subscribe([options.topic], rebalance: RebalanceHandler(assigned: { partitions in
            log.info("assigned \(partitions.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))")
            return rebalance.assigned(partitions)
        }, revoked: { [self] partitions in
            rebalance.revoked(partitions)
            pending.withLock { for p in partitions { $0[p] = nil } }
            log.info("revoked \(partitions.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))")
        }))
        var lastCheckpoint = ContinuousClock.now
        func checkpoint(final: Bool = false) async throws {
            let explicit = try await beforeCheckpoint(final)
            try producer.flush(timeout: .seconds(60))
            let processed = pending.withLock { p in defer { p.removeAll() }; return p }
            let offsets = explicit ?? processed.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
            if !offsets.isEmpty { try consumer.commit(offsets, wait: final) }
            lag.record(consumer.lag())
            lastCheckpoint = .now
        }
        while let batch = try await consumer.nextBatch(timeout: options.checkpointInterval) {
            if batch.isEmpty {
                try await onIdle()
            } else {
                var trades: [(trade: Trade, message: KafkaMessage)] = []
                trades.reserveCapacity(batch.count)
                var ends: [(TopicPartition, Int64)] = []
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
                        if let r = run { ends.append(r) }
                        run = (TopicPartition(topic: message.topic, partition: message.partition), message.offset + 1)
                    }
                }
                if let r = run { ends.append(r) }
                messagesIn.increment(by: batch.count)
                try await handle(trades)
                let assigned = consumer.assignment
                pending.withLock { p in for (tp, next) in ends where assigned.contains(tp) { p[tp] = next } }
                processedCount.add(batch.count, ordering: .relaxed)
            }
            if ContinuousClock.now - lastCheckpoint >= options.checkpointInterval { try await checkpoint() }
        }
        try await checkpoint(final: true)
        try producer.close()
        consumer.close()
    }
}
