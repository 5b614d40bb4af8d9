import MarketData
import CRdKafka
import Foundation

/// A topic the pipeline needs.
public struct TopicSpec: Sendable, Hashable {
    public var name: String
    public var partitions: Int
    /// `-1` asks for the broker's default replication factor.
    public var replicationFactor: Int
    public var config: [String: String]

    public init(name: String, partitions: Int, replicationFactor: Int = -1, config: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.config = config
    }

    public static let sevenDays = "604800000"

    /// The seed's topics: all with 7-day retention.
    public static let pipelineTopics: [TopicSpec] = [
        TopicSpec(name: Topics.rawMarketData, partitions: 3, config: ["retention.ms": sevenDays]),
        TopicSpec(name: Topics.aggregatedMetrics, partitions: 3, config: ["retention.ms": sevenDays]),
        TopicSpec(name: Topics.priceAlerts, partitions: 2, config: ["retention.ms": sevenDays]),
        TopicSpec(name: Topics.deadLetterQueue, partitions: 1, config: ["retention.ms": sevenDays]),
    ]
}

/// The topic names of the seed.
public enum Topics {
    public static let rawMarketData = "raw-market-data"
    public static let aggregatedMetrics = "aggregated-metrics"
    public static let priceAlerts = "price-alerts"
    public static let deadLetterQueue = "dead-letter-queue"
}

/// What ``KafkaAdmin/ensureTopics(_:timeout:)`` found or did for one topic.
public struct TopicStatus: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable { case created, existed(partitions: Int) }
    public var name: String
    public var outcome: Outcome
}

/// A consumer group as the cluster lists it.
public struct ConsumerGroupListing: Sendable, Hashable {
    public var id: String
    public var state: String
    public init(id: String, state: String) { self.id = id; self.state = state }
}

/// Cluster administration: reachability, metadata, topic creation, consumer groups and their
/// committed offsets.
public final class KafkaAdmin: @unchecked Sendable {
    private let handle: OpaquePointer
    public let bootstrapServers: String

    public init(config: KafkaConfig) throws(KafkaError) {
        bootstrapServers = config.bootstrapServers
        handle = try RdKafka.makeHandle(type: RD_KAFKA_PRODUCER, conf: RdKafka.makeConf(config, defaults: [:]))
    }

    deinit { rd_kafka_destroy(handle) }

    /// Partition counts of every topic in the cluster.
    /// - Throws: a retriable error naming the bootstrap servers when no broker answers in `timeout`.
    public func topics(timeout: Duration = .seconds(10)) throws(KafkaError) -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 1, nil, &metadata, Self.ms(timeout))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(err, operation: "connect to Kafka at \(bootstrapServers)",
                             message: "no broker answered within \(timeout) (\(String(cString: rd_kafka_err2str(err))))")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var result: [String: Int] = [:]
        for i in 0..<Int(metadata.pointee.topic_cnt) {
            let t = metadata.pointee.topics[i]
            if t.err == RD_KAFKA_RESP_ERR_NO_ERROR { result[String(cString: t.topic)] = Int(t.partition_cnt) }
        }
        return result
    }

    /// Creates the topics that do not exist yet and leaves existing ones alone, whatever
    /// their settings.
    @discardableResult
    public func ensureTopics(_ specs: [TopicSpec] = TopicSpec.pipelineTopics, timeout: Duration = .seconds(15)) throws(KafkaError) -> [TopicStatus] {
        let existing = try topics(timeout: timeout)
        let missing = specs.filter { existing[$0.name] == nil }
        var statuses = specs.compactMap { spec in existing[spec.name].map { TopicStatus(name: spec.name, outcome: .existed(partitions: $0)) } }
        guard !missing.isEmpty else { return statuses }

        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        for spec in missing {
            guard let t = rd_kafka_NewTopic_new(spec.name, Int32(spec.partitions), Int32(spec.replicationFactor), &errstr, errstr.count) else {
                throw .configuration("topic \(spec.name): \(cString(errstr))")
            }
            newTopics.append(t)
            for (k, v) in spec.config.sorted(by: { $0.key < $1.key }) { rd_kafka_NewTopic_set_config(t, k, v) }
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_operation_timeout(options, Self.ms(timeout), &errstr, errstr.count)
        rd_kafka_AdminOptions_set_request_timeout(options, Self.ms(timeout), &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { rd_kafka_CreateTopics(handle, $0.baseAddress, $0.count, options, queue) }

        guard let event = rd_kafka_queue_poll(queue, Self.ms(timeout) + 1000) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "create topics")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, operation: "create topics", message: rd_kafka_event_error_string(event).map { String(cString: $0) })
        }
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event), let results = rd_kafka_CreateTopics_result_topics(result, &count) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__BAD_MSG, operation: "create topics", message: "no result from the broker")
        }
        for i in 0..<count {
            let r = results[i]
            let name = String(cString: rd_kafka_topic_result_name(r))
            let code = rd_kafka_topic_result_error(r)
            switch code {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                statuses.append(TopicStatus(name: name, outcome: .created))
            case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
                statuses.append(TopicStatus(name: name, outcome: .existed(partitions: missing.first { $0.name == name }?.partitions ?? 0)))
            default:
                throw KafkaError(code, operation: "create topic \(name)", message: rd_kafka_topic_result_error_string(r).map { String(cString: $0) })
            }
        }
        return statuses
    }

    /// Every consumer group the cluster knows, with its state as the broker names it
    /// ("Stable", "Empty", "PreparingRebalance", …), sorted by group id.
    /// - Throws: a retriable error when no broker answers in `timeout`.
    public func consumerGroups(timeout: Duration = .seconds(10)) throws(KafkaError) -> [ConsumerGroupListing] {
        let event = try adminRequest(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, operation: "list consumer groups", timeout: timeout) { options, queue in
            rd_kafka_ListConsumerGroups(handle, options, queue)
        }
        defer { rd_kafka_event_destroy(event) }
        var count = 0
        guard let result = rd_kafka_event_ListConsumerGroups_result(event),
              let listings = rd_kafka_ListConsumerGroups_result_valid(result, &count) else { return [] }
        return (0..<count).compactMap { i in
            guard let listing = listings[i] else { return nil }
            return ConsumerGroupListing(id: String(cString: rd_kafka_ConsumerGroupListing_group_id(listing)),
                                        state: String(cString: rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(listing))))
        }.sorted { $0.id < $1.id }
    }

    /// The offsets `group` has committed, for every partition it committed (the group need
    /// not have members). Nothing is joined or changed.
    public func committedOffsets(group: String, timeout: Duration = .seconds(10)) throws(KafkaError) -> [TopicPartitionOffset] {
        guard let request = rd_kafka_ListConsumerGroupOffsets_new(group, nil) else { throw .configuration("group \(group): cannot build the request") }
        defer { rd_kafka_ListConsumerGroupOffsets_destroy(request) }
        let event = try adminRequest(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, operation: "list offsets of group \(group)", timeout: timeout) { options, queue in
            var requests: [OpaquePointer?] = [request]
            requests.withUnsafeMutableBufferPointer { rd_kafka_ListConsumerGroupOffsets(handle, $0.baseAddress, 1, options, queue) }
        }
        defer { rd_kafka_event_destroy(event) }
        var count = 0
        guard let result = rd_kafka_event_ListConsumerGroupOffsets_result(event),
              let groups = rd_kafka_ListConsumerGroupOffsets_result_groups(result, &count), count > 0, let g = groups[0] else { return [] }
        if let error = rd_kafka_group_result_error(g) {
            throw KafkaError(rd_kafka_error_code(error), operation: "list offsets of group \(group)", message: String(cString: rd_kafka_error_string(error)))
        }
        guard let partitions = rd_kafka_group_result_partitions(g) else { return [] }
        return (0..<Int(partitions.pointee.cnt)).compactMap { i in
            let e = partitions.pointee.elems[i]
            guard e.err == RD_KAFKA_RESP_ERR_NO_ERROR, e.offset >= 0 else { return nil }
            return TopicPartitionOffset(topic: String(cString: e.topic), partition: e.partition, offset: e.offset)
        }.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    /// Runs one admin request on a private queue and returns its result event (caller destroys it).
    private func adminRequest(_ op: rd_kafka_admin_op_t, operation: String, timeout: Duration,
                              _ start: (OpaquePointer?, OpaquePointer?) -> Void) throws(KafkaError) -> OpaquePointer {
        var errstr = [CChar](repeating: 0, count: 512)
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, op)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_request_timeout(options, Self.ms(timeout), &errstr, errstr.count)
        start(options, queue)
        guard let event = rd_kafka_queue_poll(queue, Self.ms(timeout) + 1000) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, operation: operation, message: "no answer from \(bootstrapServers) within \(timeout)")
        }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let message = rd_kafka_event_error_string(event).map { String(cString: $0) }
            rd_kafka_event_destroy(event)
            throw KafkaError(err, operation: operation, message: message)
        }
        return event
    }

    static func ms(_ d: Duration) -> Int32 {
        Int32(clamping: d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
}

extension KafkaAdmin {
    /// The librdkafka version this process runs against.
    public static var librdkafkaVersion: String { RdKafka.version }
}
