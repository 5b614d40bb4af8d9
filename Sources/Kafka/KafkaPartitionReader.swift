import MarketData
import CRdKafka
import Foundation
import Synchronization

/// Reads chosen partitions from chosen offsets up to their end, outside any consumer group
/// (nothing is committed and no group is joined).
///
/// "The end" is the partition's high watermark as the broker reports it in fetch responses
/// when the reader gets there (librdkafka's partition EOF), so records appended while the
/// read runs may or may not be included. One read at a time; calls from several threads queue.
public final class KafkaPartitionReader: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = Mutex(())

    /// The start of every reader's group id: the group is never joined and never commits, but
    /// clusters may list it; tools that list groups can leave these out.
    public static let groupPrefix = "marketstream-reader-"

    public init(config: KafkaConfig) throws(KafkaError) {
        let conf = try RdKafka.makeConf(config, defaults: [
            "group.id": "\(Self.groupPrefix)\(UInt64.random(in: 0...UInt64.max))",
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": "10",
            "fetch.queue.backoff.ms": "10",
        ])
        handle = try RdKafka.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(handle)
    }

    deinit {
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }

    /// The records of each partition from its start offset to its end, in order per partition.
    /// A start offset past the end reads nothing.
    /// - Throws: a timeout naming the partitions not read to their end, or a consume error.
    public func read(_ starts: [TopicPartitionOffset], timeout: Duration = .seconds(30)) throws(KafkaError) -> [KafkaMessage] {
        try read(starts, limit: .max, timeout: timeout).messages
    }

    /// What one ``read(_:limit:timeout:)`` found.
    public struct Batch: Sendable {
        /// In order per partition.
        public var messages: [KafkaMessage]
        /// Each partition's end offset (high watermark) as the broker reported it during the read;
        /// absent for partitions that do not exist.
        public var ends: [TopicPartition: Int64]
    }

    /// At most `limit` records of each partition from its start offset towards its end, and the
    /// partitions' end offsets. A partition stops at its end or after `limit` records, whichever
    /// comes first.
    /// - Throws: a timeout naming the partitions not read to their end, or a consume error.
    public func read(_ starts: [TopicPartitionOffset], limit: Int, timeout: Duration = .seconds(30)) throws(KafkaError) -> Batch {
        guard !starts.isEmpty else { return Batch(messages: [], ends: [:]) }
        return try lock.withLock { _ throws(KafkaError) -> Batch in
            let list = KafkaConsumer.list(starts)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            var err = rd_kafka_assign(handle, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "assign partitions to read") }
            defer { rd_kafka_assign(handle, nil) }
            var open = Set(starts.map { TopicPartition(topic: $0.topic, partition: $0.partition) })
            var counts: [TopicPartition: Int] = [:]
            var result = Batch(messages: [], ends: [:])
            func close(_ tp: TopicPartition, eof: Int64?) {
                guard open.remove(tp) != nil else { return }
                var low: Int64 = -1, high: Int64 = -1
                if rd_kafka_get_watermark_offsets(handle, tp.topic, tp.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 {
                    result.ends[tp] = Swift.max(high, eof ?? 0)
                } else if let eof {
                    result.ends[tp] = eof
                }
            }
            let deadline = ContinuousClock.now + timeout
            while !open.isEmpty {
                guard ContinuousClock.now < deadline else {
                    throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "read partitions to their end",
                                     message: "not at the end after \(timeout): \(open.sorted().map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))")
                }
                guard let m = rd_kafka_consumer_poll(handle, 100) else { continue }
                defer { rd_kafka_message_destroy(m) }
                let msg = m.pointee
                let topic = msg.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                let tp = TopicPartition(topic: topic, partition: msg.partition)
                switch msg.err {
                case RD_KAFKA_RESP_ERR_NO_ERROR:
                    guard open.contains(tp) else { continue }
                    result.messages.append(KafkaConsumer.message(copying: m, topic: topic))
                    counts[tp, default: 0] += 1
                    if counts[tp]! >= limit { close(tp, eof: nil) }
                case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                    close(tp, eof: msg.offset)
                case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
                    close(tp, eof: nil)
                case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
                    open.remove(tp)
                default:
                    err = msg.err
                    let text = msg.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: msg.len), as: UTF8.self) }
                    if err == RD_KAFKA_RESP_ERR__FATAL { throw KafkaError(err, operation: "read \(topic)[\(msg.partition)]", message: text) }
                    RdKafka.logger.warning("\(KafkaError(err, operation: "read \(topic)[\(msg.partition)]", message: text))")
                }
            }
            return result
        }
    }
}
