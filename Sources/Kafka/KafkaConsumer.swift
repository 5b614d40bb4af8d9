import MarketData
import CRdKafka
import Foundation
import Synchronization

/// One consumed record. `timestamp` is the record's Kafka timestamp in Unix ms.
///
/// The key and value of every record of a fetched batch sit in one buffer that the batch's
/// records share: reading them through ``withUnsafeValue(_:)`` copies nothing, while ``key`` and
/// ``value`` return copies. A record kept alive keeps its batch's buffer alive.
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var headers: [KafkaHeader]
    public var timestamp: Int64?
    /// The member's rebalance count when the record was fetched (``KafkaConsumer/generation``):
    /// a record fetched before its partition was last assigned has a smaller one and is stale.
    public var generation: UInt64 = 0
    /// The key at `bytes[keyStart..<valueStart]` (none when `keyStart < 0`), then the value up to `valueEnd`.
    @usableFromInline let bytes: [UInt8]
    @usableFromInline let keyStart: Int, valueStart: Int, valueEnd: Int

    init(topic: String, partition: Int32, offset: Int64, bytes: [UInt8], keyStart: Int, valueStart: Int, valueEnd: Int,
         headers: [KafkaHeader], timestamp: Int64?, generation: UInt64) {
        self.topic = topic; self.partition = partition; self.offset = offset
        self.bytes = bytes; self.keyStart = keyStart; self.valueStart = valueStart; self.valueEnd = valueEnd
        self.headers = headers; self.timestamp = timestamp; self.generation = generation
    }

    /// A copy of the key; `nil` for a record without one.
    public var key: [UInt8]? { keyStart < 0 ? nil : Array(bytes[keyStart..<valueStart]) }
    /// A copy of the value.
    public var value: [UInt8] { Array(bytes[valueStart..<valueEnd]) }

    /// Calls `body` with the value's bytes in place; they are valid only inside `body`.
    @inlinable public func withUnsafeValue<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { all in try body(UnsafeRawBufferPointer(rebasing: all[valueStart..<valueEnd])) }
    }

    public func header(_ key: String) -> [UInt8]? { headers.first { $0.key == key }?.value }

    /// Calls `body` with the value's bytes of the record at `message` in place; they are valid only
    /// inside `body`. For a loop over records held in memory that calls out for each one: reading a
    /// record through its pointer does not copy it (and retain its topic, buffer and headers) as
    /// passing it by value from memory does.
    @inlinable public static func withUnsafeValue<R>(at message: UnsafePointer<KafkaMessage>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try message.pointee.bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[message.pointee.valueStart..<message.pointee.valueEnd]))
        }
    }
}

/// A topic partition and an offset: for commits, the offset of the next record to read.
public struct TopicPartitionOffset: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public init(topic: String, partition: Int32, offset: Int64) { self.topic = topic; self.partition = partition; self.offset = offset }
}

public struct TopicPartition: Sendable, Hashable, Comparable {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) { self.topic = topic; self.partition = partition }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}

/// A change of the partitions assigned to this member of the group.
public enum RebalanceEvent: Sendable, Equatable {
    case assigned([TopicPartition])
    case revoked([TopicPartition])
}

/// What a member does when partitions move to or away from it. Both closures run on the
/// consumer's fetch thread inside the rebalance, so the group waits for them: keep them to the
/// work that must happen before the partitions move.
public struct RebalanceHandler: Sendable {
    /// Runs before any record of the newly assigned partitions is fetched and returns where
    /// to start reading some of them; the others start at the group's committed offset.
    public var assigned: @Sendable ([TopicPartition]) -> [TopicPartitionOffset]
    /// Runs before the partitions are given up. When it returns, the member must have stopped
    /// producing anything for them and must have checkpointed whatever it wants to keep; records of
    /// them that were already fetched may still be delivered afterwards and must be ignored.
    public var revoked: @Sendable ([TopicPartition]) -> Void

    public init(assigned: @escaping @Sendable ([TopicPartition]) -> [TopicPartitionOffset] = { _ in [] },
                revoked: @escaping @Sendable ([TopicPartition]) -> Void = { _ in }) {
        self.assigned = assigned
        self.revoked = revoked
    }
}

/// A member of a consumer group over librdkafka.
///
/// Records arrive through ``messages`` (an `AsyncSequence`), fetched ahead by a background
/// thread, at most a few batches ahead (backpressure). A batch is the first record plus whatever
/// was already fetched behind it (up to `batchSize`): a record is never held back to fill a batch. Offsets are never committed behind the
/// caller's back: with ``CommitPolicy/storedOffsets`` (the default) a record counts as done once
/// ``store(_:)`` is called for it, and stored offsets are committed every
/// `auto.commit.interval.ms`, on revocation and on close; with ``CommitPolicy/manual`` only
/// ``commit(_:)`` and ``commitStored()`` commit. ``close()`` commits what was stored and leaves
/// the group, so the partitions move to the other members at once.
///
/// Defaults join a group in about 3 s on Tansu and stay valid on real Kafka:
/// `session.timeout.ms=6000`, `heartbeat.interval.ms=1000`, `auto.offset.reset=earliest`,
/// `fetch.wait.max.ms=10`, and `max.poll.interval.ms=30000`, which is also the rebalance timeout a
/// member sends: how long a rebalance may wait for members to rejoin. A broker that waits that long for
/// a member killed in the middle of a rebalance (instead of dropping it when its session ends) holds the
/// whole group for 30 s, not librdkafka's default 5 minutes; the fetch thread polls at least every second.
/// `fetch.queue.backoff.ms=10`: once librdkafka's prefetch queue is over its thresholds it waits this long
/// (default 1,000 ms) before fetching that partition again, and a consumer that keeps up still hits the
/// threshold now and then, so the default left the queue empty for a second at a time (measured: 190–230k
/// records/s with it, 1.1–1.5M/s with 10 ms on the same topic). The thresholds still bound memory.
public final class KafkaConsumer: @unchecked Sendable {
    public enum CommitPolicy: Sendable { case storedOffsets, manual }

    public static let defaults: [String: String] = [
        "session.timeout.ms": "6000",
        "heartbeat.interval.ms": "1000",
        "auto.offset.reset": "earliest",
        "enable.auto.offset.store": "false",
        "fetch.wait.max.ms": "10",
        "enable.partition.eof": "false",
        "max.poll.interval.ms": "30000",
        "fetch.queue.backoff.ms": "10",
    ]

    /// ``defaults`` with `enable.auto.commit` set for `commitPolicy`.
    static func defaults(for commitPolicy: CommitPolicy) -> [String: String] {
        var defaults = Self.defaults
        defaults["enable.auto.commit"] = commitPolicy == .storedOffsets ? "true" : "false"
        return defaults
    }

    public let groupID: String
    let handle: OpaquePointer
    private let queue: OpaquePointer
    private let state: State
    private let closed = Atomic<Bool>(false)

    final class State: @unchecked Sendable {
        let stop = Atomic<Bool>(false)
        let pollerDone = DispatchSemaphore(value: 0)
        let mailbox = Mailbox()
        let assignment = Mutex<Set<TopicPartition>>([])
        let handler = Mutex<RebalanceHandler?>(nil)
        let generation = Atomic<UInt64>(0)
        /// Rebalance callbacks served so far (``generation`` also counts seeks).
        let rebalances = Atomic<UInt64>(0)
    }

    /// - Parameters:
    ///   - topics: the topics to subscribe to; empty for a member that subscribes later with
    ///     ``subscribe(_:rebalance:)`` or only reads committed offsets.
    public init(
        config: KafkaConfig, groupID: String, topics: [String], commitPolicy: CommitPolicy = .storedOffsets,
        batchSize: Int = 1000
    ) throws(KafkaError) {
        self.groupID = groupID
        var defaults = Self.defaults(for: commitPolicy)
        defaults["group.id"] = groupID
        let conf = try RdKafka.makeConf(config, defaults: defaults)
        let state = State()
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
            guard let rk, let opaque else { return }
            let state = Unmanaged<State>.fromOpaque(opaque).takeUnretainedValue()
            state.rebalances.add(1, ordering: .sequentiallyConsistent)
            state.generation.add(1, ordering: .sequentiallyConsistent)
            let list = partitions.map(KafkaConsumer.partitions(of:)) ?? []
            let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
            let handler = state.handler.withLock { $0 }
            if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
                if let partitions, let starts = handler?.assigned(list.sorted()) {
                    for start in starts {
                        rd_kafka_topic_partition_list_find(partitions, start.topic, start.partition)?.pointee.offset = start.offset
                    }
                }
                if cooperative { rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, partitions)) } else { rd_kafka_assign(rk, partitions) }
                state.assignment.withLock { $0.formUnion(list) }
            } else {
                handler?.revoked(list.sorted())
                rd_kafka_commit(rk, nil, 0)
                if cooperative { rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, partitions)) } else { rd_kafka_assign(rk, nil) }
                state.assignment.withLock { $0.subtract(list) }
            }
        }
        rd_kafka_conf_set_offset_commit_cb(conf) { _, err, _, _ in
            guard err != RD_KAFKA_RESP_ERR_NO_ERROR, err != RD_KAFKA_RESP_ERR__NO_OFFSET else { return }
            RdKafka.logger.warning("\(KafkaError(err, operation: "commit offsets"))")
        }
        handle = try RdKafka.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(handle)
        queue = rd_kafka_queue_get_consumer(handle)
        self.state = state

        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = topics.isEmpty ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_subscribe(handle, list)
        rd_kafka_topic_partition_list_destroy(list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_queue_destroy(queue)
            rd_kafka_consumer_close(handle)
            rd_kafka_destroy(handle)
            throw KafkaError(err, operation: "subscribe to \(topics.joined(separator: ","))")
        }
        let q = UnsafeSendable(queue), h = UnsafeSendable(handle)
        let thread = Thread { KafkaConsumer.fetchLoop(handle: h.value, queue: q.value, state: state, batchSize: batchSize) }
        thread.name = "kafka-consumer-fetch"
        thread.start()
    }

    deinit { shutdown(commit: false) }

    /// Subscribes to `topics`, with `rebalance` deciding where assigned partitions start and
    /// checkpointing revoked ones. Call once, on a member created with no topics.
    public func subscribe(_ topics: [String], rebalance: RebalanceHandler? = nil) throws(KafkaError) {
        state.handler.withLock { $0 = rebalance }
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "subscribe to \(topics.joined(separator: ","))") }
    }

    /// How many rebalance events this member has seen. Read inside a ``RebalanceHandler`` closure
    /// it is the generation of the records fetched under the new assignment: records with a smaller
    /// ``KafkaMessage/generation`` were fetched before and must be ignored for those partitions.
    public var generation: UInt64 { state.generation.load(ordering: .sequentiallyConsistent) }

    /// Reads `partition` again from `offset`. Records fetched before have a smaller ``KafkaMessage/generation``
    /// than ``generation`` read after this call, and are stale for that partition.
    public func seek(_ partition: TopicPartition, to offset: Int64) {
        state.generation.add(1, ordering: .sequentiallyConsistent)
        let list = Self.list([TopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: offset)])
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_error_destroy(rd_kafka_seek_partitions(handle, list, 0))
    }

    /// The partitions currently assigned to this member.
    public var assignment: Set<TopicPartition> { state.assignment.withLock { $0 } }

    /// The records of the subscribed topics, in order per partition. Ends after ``close()``;
    /// throws when librdkafka reports a fatal error.
    public var messages: Messages { Messages(mailbox: state.mailbox) }

    public struct Messages: AsyncSequence, Sendable {
        let mailbox: Mailbox
        public func makeAsyncIterator() -> Iterator { Iterator(mailbox: mailbox) }

        public struct Iterator: AsyncIteratorProtocol {
            let mailbox: Mailbox
            var batch: [KafkaMessage] = []
            var index = 0
            public mutating func next() async throws(KafkaError) -> KafkaMessage? {
                if index == batch.count {
                    guard let next = try await mailbox.take() else { return nil }
                    batch = next
                    index = 0
                }
                defer { index += 1 }
                return batch[index]
            }
        }
    }

    /// The next batch of records, in order per partition: `[]` when none arrived within
    /// `timeout`, `nil` once ``finish()`` or ``close()`` ended the stream.
    public func nextBatch(timeout: Duration) async throws(KafkaError) -> [KafkaMessage]? {
        try await state.mailbox.take(timeout: timeout)
    }

    /// Ends ``messages`` and ``nextBatch(timeout:)`` (records already fetched are still
    /// delivered) while keeping the group membership, so a service can finish its in-flight
    /// work and commit before ``close()``.
    public func finish() {
        state.mailbox.finish(error: nil)
    }

    /// Marks `message` as processed: its offset + 1 is committed by the next commit.
    public func store(_ message: KafkaMessage) throws(KafkaError) {
        try store([TopicPartitionOffset(topic: message.topic, partition: message.partition, offset: message.offset + 1)])
    }

    public func store(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        let list = Self.list(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_offsets_store(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "store offsets") }
    }

    /// Commits exactly `offsets` (each the next offset to read). With `wait` (the default) it waits for
    /// the broker and throws its error; without, it returns at once and a failure is logged (a later
    /// commit of higher offsets covers it).
    public func commit(_ offsets: [TopicPartitionOffset], wait: Bool = true) throws(KafkaError) {
        let list = Self.list(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_commit(handle, list, wait ? 0 : 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "commit offsets") }
    }

    /// Commits every stored offset and waits for the broker; nothing stored is not an error.
    public func commitStored() throws(KafkaError) {
        let err = rd_kafka_commit(handle, nil, 0)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError(err, operation: "commit stored offsets")
        }
    }

    /// The group's committed offsets for `partitions` (`-1001` where none is committed).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError) -> [TopicPartitionOffset] {
        let list = Self.list(partitions.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: -1001) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(handle, list, KafkaAdmin.ms(timeout))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "fetch committed offsets") }
        return Self.offsets(of: list)
    }

    /// Records behind the end of the assigned partitions, from the watermarks librdkafka last
    /// saw (no broker round trip); partitions without a position yet count as 0.
    public func lag() -> Int64 {
        let assigned = assignment
        guard !assigned.isEmpty else { return 0 }
        let list = Self.list(assigned.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: -1001) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_position(handle, list)
        var total: Int64 = 0
        for p in Self.offsets(of: list) where p.offset >= 0 {
            var low: Int64 = 0, high: Int64 = 0
            if rd_kafka_get_watermark_offsets(handle, p.topic, p.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR, high >= p.offset {
                total += high - p.offset
            }
        }
        return total
    }

    /// Commits stored offsets, leaves the group, and ends ``messages``. Idempotent.
    public func close() {
        shutdown(commit: true)
    }

    private func shutdown(commit: Bool) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        state.stop.store(true, ordering: .relaxed)
        state.mailbox.finish(error: nil)
        state.pollerDone.wait()
        if commit { try? commitStored() }
        rd_kafka_queue_destroy(queue)
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }

    private static func fetchLoop(handle: OpaquePointer, queue: OpaquePointer, state: State, batchSize: Int) {
        defer { state.pollerDone.signal() }
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: batchSize)
        defer { buffer.deallocate() }
        var topicNames: [OpaquePointer: String] = [:]
        // Records come in runs of one topic: the last one's name is kept at hand.
        var lastTopic: (rkt: OpaquePointer, name: String)?
        while !state.stop.load(ordering: .relaxed) {
            guard let first = rd_kafka_consume_queue(queue, 100) else { continue }
            buffer[0] = first
            let generation = state.generation.load(ordering: .sequentiallyConsistent)
            let rebalances = state.rebalances.load(ordering: .sequentiallyConsistent)
            var n = 1 + max(0, rd_kafka_consume_batch_queue(queue, 0, buffer + 1, batchSize - 1))
            if n > 1, state.rebalances.load(ordering: .sequentiallyConsistent) != rebalances {
                // A rebalance was served inside the batch call: which of its records came before it is
                // unknown, so they are dropped and their partitions read again from the first of them.
                var firstOffsets: [TopicPartition: Int64] = [:]
                for i in 1..<n {
                    guard let m = buffer[i] else { continue }
                    if m.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR, let rkt = m.pointee.rkt {
                        let tp = TopicPartition(topic: String(cString: rd_kafka_topic_name(rkt)), partition: m.pointee.partition)
                        firstOffsets[tp] = min(firstOffsets[tp] ?? .max, m.pointee.offset)
                    }
                    rd_kafka_message_destroy(m)
                }
                n = 1
                let assigned = state.assignment.withLock { $0 }
                let seek = firstOffsets.filter { assigned.contains($0.key) }
                if !seek.isEmpty {
                    let list = Self.list(seek.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) })
                    rd_kafka_error_destroy(rd_kafka_seek_partitions(handle, list, 0))
                    rd_kafka_topic_partition_list_destroy(list)
                }
            }
            var fatal: KafkaError?
            var size = 0
            for i in 0..<n {
                guard let m = buffer[i], m.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                size += m.pointee.key_len + m.pointee.len
            }
            var topics: [String] = []
            topics.reserveCapacity(n)
            for i in 0..<n {
                guard let m = buffer[i] else { continue }
                let msg = m.pointee
                if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    let text = msg.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: msg.len), as: UTF8.self) }
                    let error = KafkaError(msg.err, operation: "consume", message: text)
                    if msg.err == RD_KAFKA_RESP_ERR__FATAL { fatal = error } else { RdKafka.logger.warning("\(error)") }
                    rd_kafka_message_destroy(m)
                    buffer[i] = nil
                    continue
                }
                let rkt = msg.rkt!
                if rkt == lastTopic?.rkt { topics.append(lastTopic!.name) } else {
                    let topic: String
                    if let known = topicNames[rkt] { topic = known } else { topic = String(cString: rd_kafka_topic_name(rkt)); topicNames[rkt] = topic }
                    lastTopic = (rkt, topic)
                    topics.append(topic)
                }
            }
            let batch = messages(of: UnsafeBufferPointer(start: buffer, count: n), topics: topics, bytes: size, generation: generation)
            for i in 0..<n { if let m = buffer[i] { rd_kafka_message_destroy(m) } }
            if !batch.isEmpty { state.mailbox.put(batch, stop: state.stop) }
            if let fatal { state.mailbox.finish(error: fatal); return }
        }
    }

    /// Copies of librdkafka's records (the non-nil entries of `records`, none of them an error, the
    /// `k`th of topic `topics[k]`), whose keys and values share one buffer of `bytes` bytes. The
    /// records stay the caller's to destroy.
    static func messages(of records: UnsafeBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>, topics: [String],
                         bytes: Int, generation: UInt64 = 0) -> [KafkaMessage] {
        var ranges: [(key: Int, value: Int, end: Int)] = []
        ranges.reserveCapacity(topics.count)
        let buffer = [UInt8](unsafeUninitializedCapacity: bytes) { out, count in
            var at = 0
            for case let m? in records {
                let msg = m.pointee
                var key = -1
                if let k = msg.key {
                    key = at
                    if msg.key_len > 0 { (out.baseAddress! + at).initialize(from: k.assumingMemoryBound(to: UInt8.self), count: msg.key_len) }
                    at += msg.key_len
                }
                let value = at
                if let p = msg.payload, msg.len > 0 { (out.baseAddress! + at).initialize(from: p.assumingMemoryBound(to: UInt8.self), count: msg.len) }
                at += msg.payload == nil ? 0 : msg.len
                ranges.append((key, value, at))
            }
            count = at
        }
        var result: [KafkaMessage] = []
        result.reserveCapacity(ranges.count)
        var k = 0
        for case let m? in records {
            var tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let ts = rd_kafka_message_timestamp(m, &tstype)
            let r = ranges[k]
            result.append(KafkaMessage(
                topic: topics[k], partition: m.pointee.partition, offset: m.pointee.offset,
                bytes: buffer, keyStart: r.key, valueStart: r.value, valueEnd: r.end, headers: headers(of: m),
                timestamp: tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts, generation: generation))
            k += 1
        }
        return result
    }

    /// A copy of librdkafka's record `m` (of `topic`), which stays the caller's to destroy.
    static func message(copying m: UnsafeMutablePointer<rd_kafka_message_t>, topic: String, generation: UInt64 = 0) -> KafkaMessage {
        var record: UnsafeMutablePointer<rd_kafka_message_t>? = m
        return withUnsafePointer(to: &record) { p in
            messages(of: UnsafeBufferPointer(start: p, count: 1), topics: [topic], bytes: m.pointee.key_len + m.pointee.len, generation: generation)[0]
        }
    }

    private static func headers(of m: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var result: [KafkaHeader] = []
        result.reserveCapacity(rd_kafka_header_cnt(hdrs))
        var idx = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            result.append(KafkaHeader(received: name.map { String(cString: $0) } ?? "", value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []))
            idx += 1
        }
        return result
    }

    static func partitions(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        offsets(of: list).map { TopicPartition(topic: $0.topic, partition: $0.partition) }
    }

    static func offsets(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartitionOffset] {
        (0..<Int(list.pointee.cnt)).map { i in
            let e = list.pointee.elems[i]
            return TopicPartitionOffset(topic: String(cString: e.topic), partition: e.partition, offset: e.offset)
        }
    }

    static func list(_ offsets: [TopicPartitionOffset]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        for o in offsets { rd_kafka_topic_partition_list_add(list, o.topic, o.partition).pointee.offset = o.offset }
        return list
    }
}

/// A bounded hand-off from the fetch thread to the async iterator: up to ``depth`` batches wait,
/// then the thread blocks until one is taken (so the fetch thread and the consumer rarely wait
/// for each other, and at most `depth + 1` batches are ever buffered).
final class Mailbox: @unchecked Sendable {
    static let depth = 4
    private struct Slot {
        var batches: [[KafkaMessage]] = []
        var waiter: CheckedContinuation<Result<[KafkaMessage]?, KafkaError>, Never>?
        var finished = false
        var error: KafkaError?
        var ticket: UInt64 = 0
    }
    private let slot = Mutex(Slot())
    private let space = DispatchSemaphore(value: 0)

    func put(_ batch: [KafkaMessage], stop: borrowing Atomic<Bool>) {
        while true {
            let delivered: Bool = slot.withLock { s in
                if s.finished { return true }
                if let waiter = s.waiter {
                    s.waiter = nil
                    waiter.resume(returning: .success(batch))
                    return true
                }
                if s.batches.count < Mailbox.depth { s.batches.append(batch); return true }
                return false
            }
            if delivered { return }
            _ = space.wait(timeout: .now() + .milliseconds(100))
            if stop.load(ordering: .relaxed) { return }
        }
    }

    func take(timeout: Duration? = nil) async throws(KafkaError) -> [KafkaMessage]? {
        let ticket = UInt64.random(in: 1...UInt64.max)
        let result: Result<[KafkaMessage]?, KafkaError> = await withCheckedContinuation { continuation in
            let ready: Result<[KafkaMessage]?, KafkaError>? = slot.withLock { s in
                if !s.batches.isEmpty { return .success(s.batches.removeFirst()) }
                if s.finished { return s.error.map { .failure($0) } ?? .success(nil) }
                s.waiter = continuation
                s.ticket = ticket
                return nil
            }
            if let ready {
                space.signal()
                continuation.resume(returning: ready)
            } else if let timeout {
                Task {
                    try? await Task.sleep(for: timeout)
                    let expired = self.slot.withLock { s -> CheckedContinuation<Result<[KafkaMessage]?, KafkaError>, Never>? in
                        guard s.ticket == ticket, let waiter = s.waiter else { return nil }
                        s.waiter = nil
                        return waiter
                    }
                    expired?.resume(returning: .success([]))
                }
            }
        }
        return try result.get()
    }

    func finish(error: KafkaError?) {
        let waiter = slot.withLock { s -> CheckedContinuation<Result<[KafkaMessage]?, KafkaError>, Never>? in
            s.finished = true
            if s.error == nil { s.error = error }
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: error.map { .failure($0) } ?? .success(nil))
        space.signal()
    }
}
