import Kafka
import MarketData
import Foundation

/// One record of the dead-letter queue, with what its headers say about it.
public struct DeadLetter: Sendable {
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64?
    public var reason: String
    public var sourceTopic: String?
    public var sourcePartition: Int32?
    public var sourceOffset: Int64?
    public var group: String?
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    init(_ m: KafkaMessage) {
        func header(_ k: String) -> String? { m.header(k).map { String(decoding: $0, as: UTF8.self) } }
        partition = m.partition; offset = m.offset; timestamp = m.timestamp
        reason = header("dlq.reason") ?? "(no reason header)"
        sourceTopic = header("dlq.source.topic")
        sourcePartition = header("dlq.source.partition").flatMap(Int32.init)
        sourceOffset = header("dlq.source.offset").flatMap(Int64.init)
        group = header("dlq.consumer.group")
        key = m.key; value = m.value; headers = m.headers
    }

    /// `dead-letter-queue[0]@12`: what the redrive ledger and the redriven record's header name.
    public func id(topic: String) -> String { "\(topic)[\(partition)]@\(offset)" }

    /// `raw-market-data[1]@57`, or `?` when the headers do not say.
    public var source: String { "\(sourceTopic ?? "?")[\(sourcePartition.map(String.init) ?? "?")]@\(sourceOffset.map(String.init) ?? "?")" }
}

/// Which dead letters a command is about; every set condition must hold.
public struct DeadLetterFilter: Sendable {
    public var reason: String?
    public var sourceTopic: String?
    /// Kafka timestamps in Unix ms, `since` inclusive, `until` exclusive.
    public var since: Int64?
    public var until: Int64?
    /// Offsets in the dead-letter topic, both inclusive.
    public var fromOffset: Int64?
    public var toOffset: Int64?
    public var partition: Int32?
    public init() {}

    public func matches(_ d: DeadLetter) -> Bool {
        if let reason, !d.reason.localizedCaseInsensitiveContains(reason) { return false }
        if let sourceTopic, d.sourceTopic != sourceTopic { return false }
        if let since, (d.timestamp ?? .min) < since { return false }
        if let until, (d.timestamp ?? .max) >= until { return false }
        if let fromOffset, d.offset < fromOffset { return false }
        if let toOffset, d.offset > toOffset { return false }
        if let partition, d.partition != partition { return false }
        return true
    }
}

/// Listing, counting, showing and redriving dead letters (`pipeline dlq`).
///
/// Redriving sends each selected record back to its source topic (same key, value, timestamp and
/// headers, without the `dlq.*` ones, plus `dlq.redriven-from` naming the dead letter) and records
/// it in the ledger topic (`<dead-letter topic>-redriven`, key = the dead letter's id) **in one Kafka
/// transaction** with a fixed `transactional.id`: a dead letter in the ledger is never redriven
/// again, a crash mid-redrive leaves neither, and a second redrive running at the same time is
/// fenced off by the broker.
public final class DeadLetterTools: @unchecked Sendable {
    public let config: KafkaConfig
    public let topic: String
    public var ledgerTopic: String { topic + "-redriven" }
    private let reader: KafkaPartitionReader
    private let admin: KafkaAdmin

    public init(config: KafkaConfig, topic: String = Topics.deadLetterQueue) throws(KafkaError) {
        self.config = config
        self.topic = topic
        var readConfig = config
        readConfig.properties["isolation.level"] = "read_committed"
        readConfig.properties["auto.offset.reset"] = "earliest"
        reader = try KafkaPartitionReader(config: readConfig)
        admin = try KafkaAdmin(config: config)
    }

    /// Every dead letter matching `filter`, in offset order per partition.
    public func deadLetters(_ filter: DeadLetterFilter = DeadLetterFilter()) throws(KafkaError) -> [DeadLetter] {
        try read(topic).map(DeadLetter.init).filter(filter.matches)
    }

    /// The ids of the dead letters already redriven.
    public func redriven() throws(KafkaError) -> Set<String> {
        Set(try read(ledgerTopic).compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } })
    }

    public struct Redrive: Sendable {
        public var redriven: [DeadLetter]
        /// Selected but redriven before.
        public var skipped: [DeadLetter]
        /// Selected but without a source topic header: nowhere to send them.
        public var unroutable: [DeadLetter]
    }

    /// Redrives the dead letters matching `filter` that were never redriven; `dryRun` only says which.
    public func redrive(_ filter: DeadLetterFilter, dryRun: Bool = false) throws(KafkaError) -> Redrive {
        let selected = try deadLetters(filter)
        let done = try redriven()
        var plan = Redrive(redriven: [], skipped: [], unroutable: [])
        for d in selected {
            if done.contains(d.id(topic: topic)) { plan.skipped.append(d) }
            else if d.sourceTopic == nil { plan.unroutable.append(d) }
            else { plan.redriven.append(d) }
        }
        guard !dryRun, !plan.redriven.isEmpty else { return plan }
        try admin.ensureTopics([TopicSpec(name: ledgerTopic, partitions: 1, config: ["cleanup.policy": "compact"])])
        var producerConfig = config
        producerConfig.properties["transactional.id"] = "marketstream-dlq-redrive-\(topic)"
        let producer = try KafkaProducer(config: producerConfig)
        try producer.initTransactions()
        try producer.beginTransaction()
        do {
            for d in plan.redriven {
                let id = d.id(topic: topic)
                let headers = d.headers.filter { !$0.key.hasPrefix("dlq.") } + [KafkaHeader("dlq.redriven-from", id)]
                try producer.enqueue(topic: d.sourceTopic!, key: d.key, value: d.value, headers: headers, timestamp: d.timestamp)
                try producer.enqueue(topic: ledgerTopic, key: Array(id.utf8), value: Array(id.utf8), timestamp: Int64(Date().timeIntervalSince1970 * 1000))
            }
            try producer.commitTransaction(timeout: .seconds(60))
        } catch {
            try? producer.abortTransaction()
            throw error
        }
        try producer.close()
        return plan
    }

    private func read(_ topic: String) throws(KafkaError) -> [KafkaMessage] {
        let partitions = try admin.topics()[topic] ?? 0
        return try reader.read((0..<Int32(partitions)).map { TopicPartitionOffset(topic: topic, partition: $0, offset: 0) }, timeout: .seconds(60))
    }
}
