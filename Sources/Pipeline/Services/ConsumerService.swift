import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
import Logging
import Metrics
import ServiceLifecycle
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
        /// Most records handed to the service at once (fewer when less is fetched: a record is never held back to fill a batch).
        public var batchSize: Int = 1000
        public init(groupID: String) { self.groupID = groupID }
    }

    public let consumer: KafkaConsumer
    public let producer: KafkaProducer
    public let deadLetters: DeadLetterQueue
    public let options: Options
    public let config: KafkaConfig
    public let logger: Logger
    let messagesIn: Counter
    let deadLettered: Counter
    let lag: Gauge
    private let processedCount = Atomic<Int>(0)
    /// Next offset to commit per partition, for services that let everything processed be committed.
    private let pending = Mutex<[TopicPartition: Int64]>([:])

    /// Where each assigned partition stands: the consumer generation its records must have, the last
    /// offset handed on, and a gap that was read again once.
    struct Position {
        var generation: UInt64
        var last: Int64?
        var gap: (from: Int64, to: Int64)?
    }
    private let positions = Mutex<[TopicPartition: Position]>([:])

    /// Records handled so far (valid and dead-lettered).
    public var processed: Int { processedCount.load(ordering: .relaxed) }

    public init(config: KafkaConfig, options: Options, logger: Logger) throws(KafkaError) {
        self.options = options
        self.config = config
        self.logger = logger
        consumer = try KafkaConsumer(config: config, groupID: options.groupID, topics: [], commitPolicy: .manual, batchSize: options.batchSize)
        producer = try KafkaProducer(config: config)
        deadLetters = DeadLetterQueue(producer: producer, groupID: options.groupID)
        let dims = [("group", options.groupID)]
        messagesIn = Counter(label: "pipeline_messages_in_total", dimensions: dims)
        deadLettered = Counter(label: "pipeline_dead_letters_total", dimensions: dims)
        lag = Gauge(label: "pipeline_consumer_lag", dimensions: dims)
    }

    /// The per-batch work of a service: it gets the batch's valid trades (poison records are
    /// already dead-lettered) and returns once the batch's outputs are enqueued.
    public typealias BatchHandler = @Sendable (TradeBatch) async throws -> Void

    /// Subscribes and processes until graceful shutdown. `onIdle` runs when no record arrived for a
    /// checkpoint interval. `beforeCheckpoint` (`final` on shutdown) runs before every commit: when it returns offsets,
    /// exactly those are committed (a service that keeps records or state, like storage and the
    /// aggregator, returns what it made durable); when it returns `nil`, everything processed so far is.
    /// `rebalance` decides where assigned partitions start and checkpoints revoked ones (see
    /// ``RebalanceHandler``); either way assignments are logged. `deadLettered` gets each batch's
    /// dead-lettered records after `handle` returned, so a service that commits its own offsets can
    /// count them as processed.
    public func run(
        _ handle: BatchHandler,
        onIdle: @Sendable () async throws -> Void = {},
        beforeCheckpoint: @Sendable (_ final: Bool) async throws -> [TopicPartitionOffset]? = { _ in nil },
        rebalance: RebalanceHandler = RebalanceHandler(),
        deadLettered: @Sendable ([KafkaMessage]) throws -> Void = { _ in }
    ) async throws {
        try await loop(decode: { message, memo in
            KafkaMessage.withUnsafeValue(at: message) { bytes in
                Result { () throws(TradeMessageError) in try TradeMessage.decode(bytes, memo: &memo) }.mapError { DecodeFailure(reason: $0.reason) }
            }
        }, records: { trades, messages in try await handle(TradeBatch(trades: trades, messages: messages)) },
        onIdle: onIdle, beforeCheckpoint: beforeCheckpoint, rebalance: rebalance, deadLettered: deadLettered)
    }

    /// Why a record cannot be used; it goes to the dead-letter queue with this reason.
    public struct DecodeFailure: Error, Sendable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }

    /// ``run(_:onIdle:beforeCheckpoint:rebalance:deadLettered:)`` for records of any kind: `decode`
    /// turns each record into a value or a reason to dead-letter it.
    public func run<Record: Sendable>(
        decode: @Sendable (KafkaMessage) -> Result<Record, DecodeFailure>,
        records handle: @Sendable ([(record: Record, message: KafkaMessage)]) async throws -> Void,
        onIdle: @Sendable () async throws -> Void = {},
        beforeCheckpoint: @Sendable (_ final: Bool) async throws -> [TopicPartitionOffset]? = { _ in nil },
        rebalance: RebalanceHandler = RebalanceHandler(),
        deadLettered: @Sendable ([KafkaMessage]) throws -> Void = { _ in }
    ) async throws {
        try await loop(decode: { message, _ in decode(message.pointee) }, records: { records, messages in
            try await handle(zip(records, messages).map { (record: $0, message: $1) })
        }, onIdle: onIdle, beforeCheckpoint: beforeCheckpoint, rebalance: rebalance, deadLettered: deadLettered)
    }

    /// The consume loop of both `run`s. `handle` gets the decoded records and, at the same index, the
    /// record each came from: the fetched batch itself unless one was dead-lettered, so no record is
    /// copied on the way. `decode` gets the record in place (valid during the call) and a trade memo that
    /// lives for one batch.
    private func loop<Record: Sendable>(
        decode: @Sendable (UnsafePointer<KafkaMessage>, inout TradeMessage.Memo) -> Result<Record, DecodeFailure>,
        records handle: @Sendable ([Record], [KafkaMessage]) async throws -> Void,
        onIdle: @Sendable () async throws -> Void,
        beforeCheckpoint: @Sendable (_ final: Bool) async throws -> [TopicPartitionOffset]?,
        rebalance: RebalanceHandler,
        deadLettered: @Sendable ([KafkaMessage]) throws -> Void
    ) async throws {
        let log = logger
        try consumer.subscribe([options.topic], rebalance: RebalanceHandler(assigned: { [self] partitions in
            log.info("assigned \(partitions.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))")
            let starts = rebalance.assigned(partitions)
            let generation = consumer.generation
            positions.withLock { positions in
                for tp in partitions {
                    let start = starts.first { $0.topic == tp.topic && $0.partition == tp.partition }
                    positions[tp] = Position(generation: generation, last: start.map { $0.offset - 1 })
                }
            }
            return starts
        }, revoked: { [self] partitions in
            rebalance.revoked(partitions)
            pending.withLock { for p in partitions { $0[p] = nil } }
            positions.withLock { for p in partitions { $0[p] = nil } }
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
        let member = consumer
        try await withGracefulShutdownHandler {
        while let fetched = try await consumer.nextBatch(timeout: options.checkpointInterval) {
            let batch = inOrder(fetched)
            if fetched.isEmpty {
                try await onIdle()
            } else if !batch.isEmpty {
                var records: [Record] = []
                records.reserveCapacity(batch.count)
                // The records kept, once one was not (nil while all are).
                var kept: [KafkaMessage]?
                var rejected: [KafkaMessage] = []
                var ends: [(TopicPartition, Int64)] = []
                var run: (partition: TopicPartition, next: Int64)?
                var memo = TradeMessage.Memo()
                // In place: a record passed by value from the batch is copied (its topic, buffer and
                // headers retained and released); `decode` reads it through its pointer.
                try batch.withUnsafeBufferPointer { batch in
                    for k in batch.indices {
                        switch decode(batch.baseAddress! + k, &memo) {
                        case .success(let record):
                            records.append(record)
                            kept?.append(batch[k])
                        case .failure(let failure):
                            if kept == nil { kept = Array(batch[..<k]) }
                            try deadLetters.send(batch[k], reason: failure.reason)
                            self.deadLettered.increment()
                            rejected.append(batch[k])
                            logger.warning("dead-lettered \(batch[k].topic)[\(batch[k].partition)]@\(batch[k].offset)")
                        }
                        let partition = batch[k].partition, next = batch[k].offset + 1
                        if let r = run, r.partition.partition == partition, r.partition.topic == batch[k].topic {
                            run!.next = next
                        } else {
                            if let r = run { ends.append(r) }
                            run = (TopicPartition(topic: batch[k].topic, partition: partition), next)
                        }
                    }
                }
                if let r = run { ends.append(r) }
                messagesIn.increment(by: batch.count)
                try await handle(records, kept ?? batch)
                if !rejected.isEmpty { try deadLettered(rejected) }
                let assigned = consumer.assignment
                pending.withLock { p in for (tp, next) in ends where assigned.contains(tp) { p[tp] = next } }
                processedCount.add(batch.count, ordering: .relaxed)
            }
            if ContinuousClock.now - lastCheckpoint >= options.checkpointInterval { try await checkpoint() }
        }
        } onGracefulShutdown: {
            member.finish()
        }
        try await checkpoint(final: true)
        try producer.close()
        consumer.close()
    }

    /// The records each partition's service must see, in order and each once: stale ones (fetched before
    /// the partition was last assigned or read again) and repeats are left out. When a partition's offsets
    /// jump, its records were not delivered (or were dropped as stale): it is read again from the offset
    /// expected, and a gap still there then (compaction, transaction markers) is passed over.
    private func inOrder(_ batch: [KafkaMessage]) -> [KafkaMessage] {
        guard !batch.isEmpty else { return batch }
        // Copies records only once one is left out (most batches keep every record).
        var out: [KafkaMessage]?
        func keep(_ index: Int) { out?.append(batch[index]) }
        func leaveOut(_ index: Int) { if out == nil { out = Array(batch[..<index]); out!.reserveCapacity(batch.count) } }
        positions.withLock { positions in
            var i = 0
            while i < batch.count {
                let tp = TopicPartition(topic: batch[i].topic, partition: batch[i].partition)
                var end = i + 1
                while end < batch.count && batch[end].partition == tp.partition && batch[end].topic == tp.topic { end += 1 }
                defer { i = end }
                guard var position = positions[tp] else {
                    for k in i..<end { leaveOut(k) }
                    continue
                }
                defer { positions[tp] = position }
                var k = i
                while k < end {
                    let m = batch[k]
                    defer { k += 1 }
                    if m.generation < position.generation { leaveOut(k); continue }
                    if let last = position.last {
                        if m.offset <= last { leaveOut(k); continue }
                        if m.offset > last + 1 {
                            if let gap = position.gap, gap.from == last + 1, gap.to == m.offset {
                                logger.notice("\(tp.topic)[\(tp.partition)] has no records \(last + 1)–\(m.offset - 1); going on")
                                position.gap = nil
                            } else {
                                logger.notice("\(tp.topic)[\(tp.partition)]: offset \(m.offset) arrived while \(last + 1) was expected; reading from \(last + 1) again")
                                position.gap = (last + 1, m.offset)
                                consumer.seek(tp, to: last + 1)
                                position.generation = consumer.generation
                                for rest in k..<end { leaveOut(rest) }
                                break
                            }
                        }
                    }
                    position.last = m.offset
                    keep(k)
                }
            }
        }
        return out ?? batch
    }
}

/// One batch for a trade handler, in offset order per partition: the valid trades and, at the same
/// index, the record each was decoded from.
public struct TradeBatch: Sendable, RandomAccessCollection {
    public let trades: [Trade]
    public let messages: [KafkaMessage]

    /// `trades[i]` was decoded from `messages[i]`; the counts must match.
    public init(trades: [Trade], messages: [KafkaMessage]) {
        precondition(trades.count == messages.count, "one record per trade")
        self.trades = trades
        self.messages = messages
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { trades.count }
    public subscript(i: Int) -> (trade: Trade, message: KafkaMessage) { (trades[i], messages[i]) }
}
