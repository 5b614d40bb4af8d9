import MarketData
import CRdKafka
import Foundation
import Synchronization

/// Where a message landed.
public struct DeliveryReport: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// A Kafka message header.
public struct KafkaHeader: Sendable, Hashable {
    public let key: String
    public let value: [UInt8]
    /// `key` NUL-terminated, made once so producing does not copy it per message.
    let cKey: [CChar]
    public init(_ key: String, _ value: [UInt8]) { self.key = key; self.value = value; cKey = Array(key.utf8CString) }
    /// A header read from a message: `cKey` is made only if it is produced again.
    init(received key: String, _ value: [UInt8]) { self.key = key; self.value = value; cKey = [] }
    public init(_ key: String, _ value: String) { self.init(key, Array(value.utf8)) }
    public static func == (a: Self, b: Self) -> Bool { a.key == b.key && a.value == b.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(key); hasher.combine(value) }
}

/// Counters of a producer since it was created.
public struct ProducerStatistics: Sendable, Equatable {
    public var enqueued: Int
    public var delivered: Int
    public var failed: Int
    public init(enqueued: Int, delivered: Int, failed: Int) { self.enqueued = enqueued; self.delivered = delivered; self.failed = failed }
    public var inFlight: Int { enqueued - delivered - failed }
}

/// A Kafka producer over librdkafka.
///
/// Defaults: `partitioner=murmur2_random` (a key lands on the partition a Java client would
/// pick), snappy compression, idempotence, `linger.ms=5`, 1 MB batches, a delivery timeout of
/// `message.timeout.ms=30000`, and records up to 64 MB (`message.max.bytes`; the broker's per-topic
/// `max.message.bytes` still applies, so only topics created for big records, like the aggregator's
/// state topic, take them). Any property can be overridden through ``KafkaConfig``.
///
/// Two paths: ``send(topic:key:value:headers:timestamp:)`` awaits the broker's acknowledgement;
/// ``enqueue(topic:key:value:headers:timestamp:)`` (and ``enqueue(topic:batch:headers:)``) returns as
/// soon as librdkafka has the message and blocks while `queue.buffering.max.messages` messages are in
/// flight (backpressure, never an unbounded queue). Enqueuing threads serve delivery reports
/// themselves, as a C client polling after each produce does, so librdkafka frees each message on
/// the thread that allocated it; a poll thread serves them when no one enqueues (within 5 ms). Failed deliveries of enqueued messages are counted in ``statistics``, handed
/// to `onDeliveryFailure`, and make ``flush(timeout:)`` throw. ``close(timeout:)`` flushes,
/// then releases the handle; it is also done, without waiting, on deinit.
public final class KafkaProducer: @unchecked Sendable {
    public static let defaults: [String: String] = [
        "partitioner": "murmur2_random",
        "compression.codec": "snappy",
        "enable.idempotence": "true",
        "linger.ms": "5",
        "batch.size": "1000000",
        "message.timeout.ms": "30000",
        "queue.buffering.max.messages": "100000",
        "message.max.bytes": "67108864",
    ]

    let handle: OpaquePointer
    private let state: State
    private let poller: Thread
    private let topics = Mutex<[String: UnsafeSendable<OpaquePointer>]>([:])
    private let closed = Atomic<Bool>(false)

    final class State: @unchecked Sendable {
        let enqueued = Atomic<Int>(0)
        let delivered = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        /// Counts ``KafkaProducer/enqueue`` calls, which serve delivery reports on their own thread.
        let selfServed = Atomic<Int>(0)
        let pollerDone = DispatchSemaphore(value: 0)
        let firstFailure = Mutex<KafkaError?>(nil)
        let onFailure: (@Sendable (KafkaError) -> Void)?
        /// Highest acknowledged offset per (topic handle, partition), while `tracking`.
        let acknowledged = Mutex<[AckKey: Int64]>([:])
        let tracking = Atomic<Bool>(false)
        init(onFailure: (@Sendable (KafkaError) -> Void)?) { self.onFailure = onFailure }

        func acknowledge(_ m: rd_kafka_message_t) {
            guard tracking.load(ordering: .relaxed), m.err == RD_KAFKA_RESP_ERR_NO_ERROR, m.offset >= 0, let rkt = m.rkt else { return }
            let key = AckKey(topic: UInt(bitPattern: rkt), partition: m.partition)
            acknowledged.withLock { $0[key] = Swift.max($0[key] ?? -1, m.offset) }
        }

        func record(_ err: rd_kafka_resp_err_t, topic: @autoclosure () -> String) {
            guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { delivered.add(1, ordering: .relaxed); return }
            let error = KafkaError(err, operation: "deliver to \(topic())")
            failed.add(1, ordering: .relaxed)
            firstFailure.withLock { if $0 == nil { $0 = error } }
            onFailure?(error)
        }
    }

    struct AckKey: Hashable { var topic: UInt; var partition: Int32 }

    final class DeliveryBox {
        let continuation: CheckedContinuation<Result<DeliveryReport, KafkaError>, Never>
        init(_ c: CheckedContinuation<Result<DeliveryReport, KafkaError>, Never>) { continuation = c }
    }

    /// - Parameter onDeliveryFailure: called on librdkafka's poll thread for each enqueued
    ///   message that could not be delivered; keep it short.
    public init(config: KafkaConfig, onDeliveryFailure: (@Sendable (KafkaError) -> Void)? = nil) throws(KafkaError) {
        let conf = try RdKafka.makeConf(config, defaults: Self.defaults)
        let state = State(onFailure: onDeliveryFailure)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            let state = Unmanaged<State>.fromOpaque(opaque).takeUnretainedValue()
            let m = message.pointee
            var topic: String { m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?" }
            state.acknowledge(m)
            if let priv = m._private {
                let box = Unmanaged<DeliveryBox>.fromOpaque(priv).takeRetainedValue()
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    state.delivered.add(1, ordering: .relaxed)
                    box.continuation.resume(returning: .success(DeliveryReport(topic: topic, partition: m.partition, offset: m.offset)))
                } else {
                    state.failed.add(1, ordering: .relaxed)
                    box.continuation.resume(returning: .failure(KafkaError(m.err, operation: "deliver to \(topic)")))
                }
            } else {
                state.record(m.err, topic: topic)
            }
        }
        handle = try RdKafka.makeHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        self.state = state
        let rk = UnsafeSendable(handle)
        poller = Thread {
            var seen = 0
            while !state.stop.load(ordering: .relaxed) {
                let served = state.selfServed.load(ordering: .relaxed)
                if served != seen {
                    seen = served
                    usleep(5_000)
                } else {
                    rd_kafka_poll(rk.value, 50)
                }
            }
            state.pollerDone.signal()
        }
        poller.name = "kafka-producer-poll"
        poller.start()
    }

    deinit { shutdown() }


    public var statistics: ProducerStatistics {
        ProducerStatistics(
            enqueued: state.enqueued.load(ordering: .relaxed),
            delivered: state.delivered.load(ordering: .relaxed),
            failed: state.failed.load(ordering: .relaxed))
    }

    /// Sends one message and waits for the broker's acknowledgement.
    /// - Parameter timestamp: CreateTime in Unix milliseconds; `nil` lets librdkafka use now.
    public func send(
        topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], timestamp: Int64? = nil
    ) async throws(KafkaError) -> DeliveryReport {
        let result: Result<DeliveryReport, KafkaError> = await withCheckedContinuation { continuation in
            let box = Unmanaged.passRetained(DeliveryBox(continuation)).toOpaque()
            do throws(KafkaError) {
                try produce(topic: topic, key: key, value: value, headers: headers, timestamp: timestamp, opaque: box, blockWhenFull: true)
            } catch {
                Unmanaged<DeliveryBox>.fromOpaque(box).release()
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }

    /// Hands one message to librdkafka without waiting for delivery; blocks while the
    /// in-flight limit is reached, and throws if it stays reached for `message.timeout.ms`.
    /// - Parameter partition: the partition to write; `nil` lets the partitioner choose by key.
    public func enqueue(
        topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], timestamp: Int64? = nil, partition: Int32? = nil
    ) throws(KafkaError) {
        try produce(topic: topic, key: key, value: value, headers: headers, timestamp: timestamp, partition: partition, opaque: nil, blockWhenFull: true)
    }

    /// Makes this producer transactional (its config must set `transactional.id`): fences any older
    /// producer with the same id and finishes or aborts what that one left open. Call once, first.
    public func initTransactions(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try Self.check(rd_kafka_init_transactions(handle, KafkaAdmin.ms(timeout)), "start transactions")
    }

    public func beginTransaction() throws(KafkaError) {
        try Self.check(rd_kafka_begin_transaction(handle), "begin a transaction")
    }

    /// Flushes and commits: every message enqueued since ``beginTransaction()`` becomes visible to
    /// `read_committed` readers at once, or none does.
    public func commitTransaction(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try Self.check(rd_kafka_commit_transaction(handle, KafkaAdmin.ms(timeout)), "commit a transaction")
    }

    public func abortTransaction(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try Self.check(rd_kafka_abort_transaction(handle, KafkaAdmin.ms(timeout)), "abort a transaction")
    }

    private static func check(_ error: OpaquePointer?, _ operation: String) throws(KafkaError) {
        guard let error else { return }
        defer { rd_kafka_error_destroy(error) }
        throw KafkaError(rd_kafka_error_code(error), operation: operation, message: String(cString: rd_kafka_error_string(error)))
    }

    /// From now on, remember the highest acknowledged offset of every partition written
    /// (``acknowledgedOffsets()``), at the cost of a lock per delivered message.
    public func trackAcknowledgedOffsets() {
        state.tracking.store(true, ordering: .relaxed)
    }

    /// The highest acknowledged offset of every partition written since
    /// ``trackAcknowledgedOffsets()``.
    public func acknowledgedOffsets() -> [TopicPartition: Int64] {
        state.acknowledged.withLock { map in
            var result: [TopicPartition: Int64] = [:]
            for (key, offset) in map {
                let name = String(cString: rd_kafka_topic_name(OpaquePointer(bitPattern: key.topic)!))
                result[TopicPartition(topic: name, partition: key.partition)] = offset
            }
            return result
        }
    }

    /// Like ``enqueue(topic:key:value:headers:timestamp:)`` over raw memory the caller keeps
    /// valid for the duration of the call (librdkafka copies it).
    public func enqueue(
        topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
        headers: [KafkaHeader] = [], timestamp: Int64? = nil
    ) throws(KafkaError) {
        try produceRaw(topic: topic, key: key, value: value, headers: headers, timestamp: timestamp, opaque: nil, blockWhenFull: true)
    }

    private func produce(
        topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader], timestamp: Int64?, partition: Int32? = nil,
        opaque: UnsafeMutableRawPointer?, blockWhenFull: Bool
    ) throws(KafkaError) {
        let result: Result<Void, KafkaError> = value.withUnsafeBytes { v in
            if let key {
                return key.withUnsafeBytes { k in
                    Result { () throws(KafkaError) in try produceRaw(topic: topic, key: k, value: v, headers: headers, timestamp: timestamp, partition: partition, opaque: opaque, blockWhenFull: blockWhenFull) }
                }
            }
            return Result { () throws(KafkaError) in try produceRaw(topic: topic, key: nil, value: v, headers: headers, timestamp: timestamp, partition: partition, opaque: opaque, blockWhenFull: blockWhenFull) }
        }
        try result.get()
    }

    private func topicHandle(_ name: String) throws(KafkaError) -> OpaquePointer {
        let rk = handle
        let found: UnsafeSendable<OpaquePointer>? = topics.withLock { cache in
            if let t = cache[name] { return t }
            guard let t = rd_kafka_topic_new(rk, name, nil) else { return nil }
            cache[name] = UnsafeSendable(t)
            return UnsafeSendable(t)
        }
        guard let found = found?.value else { throw KafkaError(rd_kafka_last_error(), operation: "open topic \(name)") }
        return found
    }

    private func produceRaw(
        topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, headers: [KafkaHeader],
        timestamp: Int64?, partition: Int32? = nil, opaque: UnsafeMutableRawPointer?, blockWhenFull: Bool
    ) throws(KafkaError) {
        guard !closed.load(ordering: .relaxed) else { throw KafkaError(RD_KAFKA_RESP_ERR__DESTROY, operation: "produce to \(topic)", message: "the producer is closed") }
        let rkt = try topicHandle(topic)
        let madeKeys: [[CChar]]? = headers.contains { $0.cKey.isEmpty } ? headers.map { $0.cKey.isEmpty ? Array($0.key.utf8CString) : $0.cKey } : nil
        var deadline: UInt64?
        while true {
            let error: OpaquePointer? = withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 7 + headers.count) { vus in
                    var n = 0
                    func put(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
                        var vu = rd_kafka_vu_t()
                        vu.vtype = type
                        fill(&vu)
                        (vus.baseAddress! + n).initialize(to: vu)
                        n += 1
                    }
                    put(RD_KAFKA_VTYPE_RKT) { $0.u.rkt = rkt }
                    put(RD_KAFKA_VTYPE_VALUE) { $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress); $0.u.mem.size = value.count }
                    put(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY }
                    put(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = opaque }
                    if let key {
                        put(RD_KAFKA_VTYPE_KEY) { $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress); $0.u.mem.size = key.count }
                    }
                    if let timestamp { put(RD_KAFKA_VTYPE_TIMESTAMP) { $0.u.i64 = timestamp } }
                    if let partition { put(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = partition } }
                    for (i, header) in headers.enumerated() {
                        put(RD_KAFKA_VTYPE_HEADER) { vu in
                            (madeKeys?[i] ?? header.cKey).withUnsafeBufferPointer { vu.u.header.name = $0.baseAddress }
                            header.value.withUnsafeBytes { vu.u.header.val = $0.baseAddress }
                            vu.u.header.size = header.value.count
                        }
                    }
                    return withExtendedLifetime((headers, madeKeys)) { rd_kafka_produceva(handle, vus.baseAddress, n) }
                }
            guard let error else {
                state.enqueued.add(1, ordering: .relaxed)
                if opaque == nil {
                    rd_kafka_poll(handle, 0)
                    state.selfServed.add(1, ordering: .relaxed)
                }
                return
            }
            if blockWhenFull, waitForRoom(after: error, deadline: &deadline) { continue }
            throw KafkaError(consuming: error, operation: "produce to \(topic)")
        }
    }

    /// After a failed produce: when librdkafka's queue is full, destroys `error`, serves delivery
    /// reports for up to 1 ms and returns true (retry), until the queue has stayed full for 30 s from
    /// the first call with this `deadline`. Otherwise returns false and leaves `error` to the caller.
    private func waitForRoom(after error: OpaquePointer, deadline: inout UInt64?) -> Bool {
        guard rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL else { return false }
        let now = DispatchTime.now().uptimeNanoseconds
        let limit = deadline ?? now + 30_000_000_000
        deadline = limit
        guard now < limit else { return false }
        rd_kafka_error_destroy(error)
        rd_kafka_poll(handle, 1)
        state.selfServed.add(1, ordering: .relaxed)
        return true
    }

    /// Enqueues every record of `batch` in order, each with `headers`, as
    /// ``enqueue(topic:key:value:headers:timestamp:)`` does for one message.
    /// - Throws: the first failure; the records before it are enqueued, the rest are not.
    public func enqueue(topic: String, batch: KafkaRecordBatch, headers: [KafkaHeader] = []) throws(KafkaError) {
        guard !batch.records.isEmpty else { return }
        guard !closed.load(ordering: .relaxed) else { throw KafkaError(RD_KAFKA_RESP_ERR__DESTROY, operation: "produce to \(topic)", message: "the producer is closed") }
        let rkt = try topicHandle(topic)
        let names = headers.map { Array($0.key.utf8CString) }
        let headerBytes = headers.reduce(0) { $0 + $1.value.count } + names.reduce(0) { $0 + $1.count }
        let headerStore = UnsafeMutableRawPointer.allocate(byteCount: max(1, headerBytes), alignment: 1)
        let vus = UnsafeMutablePointer<rd_kafka_vu_t>.allocate(capacity: 5 + headers.count)
        defer { headerStore.deallocate(); vus.deallocate() }
        var n = 0
        func put(_ type: rd_kafka_vtype_t) -> UnsafeMutablePointer<rd_kafka_vu_t> {
            var vu = rd_kafka_vu_t()
            vu.vtype = type
            (vus + n).initialize(to: vu)
            n += 1
            return vus + n - 1
        }
        put(RD_KAFKA_VTYPE_RKT).pointee.u.rkt = rkt
        put(RD_KAFKA_VTYPE_MSGFLAGS).pointee.u.i = RD_KAFKA_MSG_F_COPY
        var at = headerStore
        for (header, name) in zip(headers, names) {
            let vu = put(RD_KAFKA_VTYPE_HEADER)
            name.withUnsafeBytes { at.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            vu.pointee.u.header.name = UnsafePointer(at.assumingMemoryBound(to: CChar.self))
            at += name.count
            header.value.withUnsafeBytes { if $0.count > 0 { at.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            vu.pointee.u.header.val = UnsafeRawPointer(at)
            vu.pointee.u.header.size = header.value.count
            at += header.value.count
        }
        let value = put(RD_KAFKA_VTYPE_VALUE), key = put(RD_KAFKA_VTYPE_KEY), timestamp = put(RD_KAFKA_VTYPE_TIMESTAMP)
        let failure: KafkaError? = batch.bytes.withUnsafeBytes { bytes in
            let base = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
            var deadline: UInt64?
            var done = 0
            defer {
                state.enqueued.add(done, ordering: .relaxed)
                state.selfServed.add(done, ordering: .relaxed)
            }
            for r in batch.records {
                value.pointee.u.mem.ptr = base.map { $0 + Int(r.valueStart) }
                value.pointee.u.mem.size = Int(r.valueCount)
                key.pointee.u.mem.ptr = r.keyCount < 0 ? nil : base.map { $0 + Int(r.keyStart) }
                key.pointee.u.mem.size = max(0, Int(r.keyCount))
                timestamp.pointee.u.i64 = r.timestamp
                // A zero timestamp lets librdkafka stamp the message with the current time.
                while let error = rd_kafka_produceva(handle, vus, n) {
                    if waitForRoom(after: error, deadline: &deadline) { continue }
                    return KafkaError(consuming: error, operation: "produce to \(topic)")
                }
                deadline = nil
                done += 1
                if done & 31 == 0 { rd_kafka_poll(handle, 0) }
            }
            rd_kafka_poll(handle, 0)
            return nil
        }
        if let failure { throw failure }
    }

    /// Waits until every enqueued message is delivered or failed.
    /// - Throws: the first delivery failure seen since the producer was created, or a
    ///   timeout naming how many messages are still in flight.
    public func flush(timeout: Duration = .seconds(30)) throws(KafkaError) {
        let err = rd_kafka_flush(handle, KafkaAdmin.ms(timeout))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, operation: "flush", message: "\(rd_kafka_outq_len(handle)) messages still in flight after \(timeout)")
        }
        if let failure = state.firstFailure.withLock({ $0 }) { throw failure }
    }

    /// Flushes (up to `timeout`), then releases librdkafka's resources. Later sends fail.
    public func close(timeout: Duration = .seconds(30)) throws(KafkaError) {
        defer { shutdown() }
        try flush(timeout: timeout)
    }

    private func shutdown() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        state.stop.store(true, ordering: .relaxed)
        state.pollerDone.wait()
        rd_kafka_flush(handle, 0)
        rd_kafka_poll(handle, 0)
        topics.withLock { cache in
            for t in cache.values { rd_kafka_topic_destroy(t.value) }
            cache.removeAll()
        }
        rd_kafka_destroy(handle)
    }
}

/// Messages laid out in one buffer, for ``KafkaProducer/enqueue(topic:batch:headers:)``: appending
/// costs no allocation once the buffers have grown, and the producer walks them without copying.
public struct KafkaRecordBatch: Sendable {
    /// Where one message's key and value lie in ``bytes``.
    public struct Record: Sendable, Equatable {
        public var keyStart: Int32, keyCount: Int32
        public var valueStart: Int32, valueCount: Int32
        /// CreateTime in Unix ms; 0 means "now, when produced".
        public var timestamp: Int64
    }
    public private(set) var bytes: [UInt8] = []
    public private(set) var records: [Record] = []

    public init(capacity: Int = 0, bytesPerRecord: Int = 128) {
        bytes.reserveCapacity(capacity * bytesPerRecord)
        records.reserveCapacity(capacity)
    }

    public var count: Int { records.count }
    public var isEmpty: Bool { records.isEmpty }

    /// Appends one message: `key` (nil for none), then the value `writeValue` appends to the buffer.
    public mutating func append(key: UnsafeRawBufferPointer?, timestamp: Int64?, writeValue: (inout [UInt8]) -> Void) {
        let keyStart = bytes.count
        if let key { bytes.append(contentsOf: key) }
        let valueStart = bytes.count
        writeValue(&bytes)
        records.append(Record(keyStart: Int32(keyStart), keyCount: key == nil ? -1 : Int32(valueStart - keyStart),
                              valueStart: Int32(valueStart), valueCount: Int32(bytes.count - valueStart), timestamp: timestamp ?? 0))
    }

    /// Key and value of record `i`, copied.
    public func message(_ i: Int) -> (key: [UInt8]?, value: [UInt8], timestamp: Int64?) {
        let r = records[i]
        let key = r.keyCount < 0 ? nil : Array(bytes[Int(r.keyStart)..<Int(r.keyStart + r.keyCount)])
        return (key, Array(bytes[Int(r.valueStart)..<Int(r.valueStart + r.valueCount)]), r.timestamp == 0 ? nil : r.timestamp)
    }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        records.removeAll(keepingCapacity: true)
    }
}

/// Carries a C pointer into a `@Sendable` closure; the owner guarantees thread safety
/// (librdkafka handles are thread-safe).
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
