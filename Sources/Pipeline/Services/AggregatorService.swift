import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
import ServiceLifecycle
import Logging
import Metrics
import Synchronization

/// Sliding event-time windows per symbol → `aggregated-metrics` (keyed by symbol, Kafka
/// timestamp = window end), and alerts → `price-alerts`.
///
/// Output depends only on the trades and their order per partition, never on wall-clock
/// speed, so a replay at 1×, 10× or max speed gives byte-identical messages.
///
/// Crash, restart and rebalance safety: whatever stops, crashes or moves partitions, the output
/// topics end up with the messages of one uninterrupted run, each once.
/// - State is kept per input partition (windows, watermarks, alert sides, position). Every
///   checkpoint flushes the outputs, then writes each changed partition's complete state to the
///   state topic (``stateTopic``, one partition per input partition), then commits, in the group,
///   the state record's offset and the input offset it continues from.
/// - Every output carries the header `origin` = `<group>|<partition>|<offset>|<n>`: the input
///   record that produced it and its index among that record's outputs.
/// - A member that gets a partition restores its last committed state, reads the output topics
///   from the ends they had at that checkpoint, and skips what was already written: windows of a
///   symbol up to the last window start found, alerts up to the last origin found. Then it reads the
///   input from the state's offset, so outputs after the checkpoint are produced exactly once.
/// - A revoked partition is checkpointed before it moves; one that crashed resumes from its last
///   checkpoint (at most ``ConsumerService/Options/checkpointInterval`` behind).
/// A state written with other window or alert settings is refused (use another group).
///
/// Idle rule: when the newest trade seen is within `liveThreshold` of the wall clock (a live feed), symbols with
/// no trades get their windows closed by the wall clock (``WindowAggregator/closeIdle(nowMs:)``)
/// when the member has caught up (no record for a checkpoint interval); replays of older
/// sessions never trigger it, and a window it closed is never emitted again after a restart.
public final class AggregatorService: Service, Sendable {
    public struct Options: Sendable {
        public var window = WindowConfig()
        public var alertRules: [AlertRule] = []
        public var metricsTopic = Topics.aggregatedMetrics
        public var alertsTopic = Topics.priceAlerts
        /// The topic holding checkpointed state; `nil`: `<group>-state`.
        public var stateTopic: String?
        public var liveThreshold: Int64 = 60_000
        /// Called with each batch once its windows and alerts are handed to the producer
        /// (`bench` times end-to-end latency here). Runs on the consuming task; keep it short.
        public var onProcessed: (@Sendable (TradeBatch) -> Void)?
        public init() {}
    }

    public let service: ConsumerService
    public let options: Options
    /// Where this group's checkpointed state lives.
    public let stateTopic: String
    private let reader: KafkaPartitionReader
    private let outputPartitions: [TopicPartition]
    private let fingerprint: String
    private let logger: Logger
    private let shared = Mutex(Shared())
    private let windowsOut: Counter
    private let alertsOut: Counter
    private let lateTrades: Gauge

    /// A position in a partition's output sequence: the input offset that produced an output and
    /// the output's index among those of that offset.
    struct Position: Comparable, Sendable {
        var offset: Int64, index: Int64
        static func < (a: Self, b: Self) -> Bool { (a.offset, a.index) < (b.offset, b.index) }
    }

    /// What was already written for a partition after its restored checkpoint.
    struct Written {
        var lastWindowStart: [String: Int64] = [:]
        var lastAlert: [String: Position] = [:]
        var isEmpty: Bool { lastWindowStart.isEmpty && lastAlert.isEmpty }
    }

    struct PartitionState {
        var aggregator: WindowAggregator
        var alerts: AlertEngine
        var newest: Int64 = 0
        /// Next input offset to process.
        var nextOffset: Int64 = 0
        var position = Position(offset: -1, index: 0)
        /// Per output partition, an offset at or before every output of this partition made after the checkpoint.
        var outputEnds: [TopicPartition: Int64] = [:]
        var changed = false
        var written = Written()
        /// Records fetched before this member (re)took the partition are stale.
        var generation: UInt64 = 0
    }

    struct Shared {
        var partitions: [Int32: PartitionState] = [:]
        var failure: (any Error)?
    }

    public init(service: ConsumerService, options: Options) throws {
        self.service = service
        self.options = options
        logger = service.logger
        stateTopic = options.stateTopic ?? "\(service.options.groupID)-state"
        _ = try WindowAggregator(config: options.window)
        fingerprint = Self.fingerprint(options)
        let admin = try KafkaAdmin(config: service.config)
        try admin.ensureTopics([
            TopicSpec(name: options.metricsTopic, partitions: 3, config: ["retention.ms": TopicSpec.sevenDays]),
            TopicSpec(name: options.alertsTopic, partitions: 2, config: ["retention.ms": TopicSpec.sevenDays]),
        ])
        let topics = try admin.topics()
        guard let inputPartitions = topics[service.options.topic] else {
            throw AggregatorStateError.missingTopic(service.options.topic)
        }
        // One record holds a partition's whole state (about 0.8 kB per symbol with the default
        // windows), so a partition with thousands of symbols needs records above Kafka's 1 MB default.
        try admin.ensureTopics([TopicSpec(name: stateTopic, partitions: inputPartitions,
                                          config: ["cleanup.policy": "compact", "max.message.bytes": "67108864"])])
        let statePartitions = try admin.topics()[stateTopic] ?? 0
        guard statePartitions >= inputPartitions else {
            throw AggregatorStateError.statePartitions(topic: stateTopic, has: statePartitions, needs: inputPartitions)
        }
        outputPartitions = [options.metricsTopic, options.alertsTopic].flatMap { t in
            (0..<Int32(topics[t] ?? 0)).map { TopicPartition(topic: t, partition: $0) }
        }
        reader = try KafkaPartitionReader(config: service.config)
        service.producer.trackAcknowledgedOffsets()
        windowsOut = Counter(label: "pipeline_windows_out_total")
        alertsOut = Counter(label: "pipeline_alerts_out_total")
        lateTrades = Gauge(label: "pipeline_late_trades")
    }

    static func fingerprint(_ o: Options) -> String {
        let w = o.window
        let rules = o.alertRules.map { "\($0.symbol):\($0.condition.name):\(JSONOutput.number($0.condition.level))" }.joined(separator: ",")
        return "window=\(w.windowMs) hop=\(w.hopMs) lateness=\(w.allowedLatenessMs) idle=\(w.idleGraceMs) alerts=\(rules) metrics=\(o.metricsTopic) alerts-topic=\(o.alertsTopic)"
    }

    /// The input partitions this member owns now.
    public var ownedPartitions: [Int32] { shared.withLock { $0.partitions.keys.sorted() } }

    public func run() async throws {
        try await service.run({ [self] batch in
            try shared.withLock { s throws in
                if let failure = s.failure { throw failure }
                var out = Outputs()
                let messages = batch.messages
                var i = 0
                while i < messages.count {
                    let p = messages[i].partition
                    var end = i + 1
                    while end < messages.count && messages[end].partition == p { end += 1 }
                    if s.partitions[p] != nil {
                        process(batch, i..<end, partition: p, in: &s.partitions[p]!, into: &out)
                    }
                    i = end
                }
                try publish(out)
                lateTrades.record(s.partitions.values.reduce(0) { $0 + $1.aggregator.lateTradeTotal })
            }
            options.onProcessed?(batch)
        }, onIdle: { [self] in
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try shared.withLock { s throws in
                if let failure = s.failure { throw failure }
                let newest = s.partitions.values.map(\.newest).max() ?? 0
                guard newest > 0, now - newest < options.liveThreshold else { return }
                var out = Outputs()
                for p in s.partitions.keys.sorted() {
                    let windows = s.partitions[p]!.aggregator.closeIdle(nowMs: now)
                    for w in windows { emit(w, partition: p, in: &s.partitions[p]!, into: &out) }
                }
                try publish(out)
            }
        }, beforeCheckpoint: { [self] _ in
            try shared.withLock { s throws in try checkpoint(&s, only: nil) }
        }, rebalance: RebalanceHandler(assigned: { [self] in assigned($0) }, revoked: { [self] in revoked($0) }),
        deadLettered: { [self] rejected in
            // A dead-lettered record is processed too: the next checkpoint continues after it, so a
            // restart never sends it to the dead-letter queue again.
            shared.withLock { s in
                for m in rejected where s.partitions[m.partition] != nil {
                    guard m.generation >= s.partitions[m.partition]!.generation, m.offset >= s.partitions[m.partition]!.nextOffset else { continue }
                    s.partitions[m.partition]!.nextOffset = m.offset + 1
                    s.partitions[m.partition]!.changed = true
                }
            }
        })
    }

    // MARK: processing

    struct Outputs {
        var windows: [(WindowMetrics, Int32, Position)] = []
        var alerts: [(Alert, Int32, Position)] = []
    }

    /// The trades at `range` of `batch`, all of one partition, in offset order; records fetched before
    /// the partition was (re)taken and offsets already processed are skipped.
    private func process(_ batch: TradeBatch, _ range: Range<Int>, partition: Int32,
                         in ps: inout PartitionState, into out: inout Outputs) {
        var windows: [WindowMetrics] = []
        let trades = batch.trades, messages = batch.messages
        for k in range where messages[k].generation >= ps.generation && messages[k].offset >= ps.nextOffset {
            let offset = messages[k].offset
            ps.nextOffset = offset + 1
            ps.changed = true
            if trades[k].timestamp > ps.newest { ps.newest = trades[k].timestamp }
            ps.position = Position(offset: offset, index: 0)
            ps.aggregator.add(trades[k], into: &windows)
            if !windows.isEmpty {
                for w in windows { emit(w, partition: partition, in: &ps, into: &out) }
                windows.removeAll(keepingCapacity: true)
            }
            for a in ps.alerts.evaluate(trades[k]) {
                let pos = next(&ps)
                if !isWritten(a, pos, ps.written) { out.alerts.append((a, partition, pos)) }
            }
        }
    }

    /// A closed window and its change alerts, each at the next position; what was already written is
    /// skipped, each output by its own topic (a crash can land a window without its alerts).
    private func emit(_ w: WindowMetrics, partition: Int32, in ps: inout PartitionState, into out: inout Outputs) {
        ps.changed = true
        let pos = next(&ps)
        let windowWritten = ps.written.lastWindowStart[w.symbol].map { w.windowStart <= $0 } ?? false
        if !windowWritten { out.windows.append((w, partition, pos)) }
        for a in ps.alerts.evaluate(w) {
            let apos = next(&ps)
            if !isWritten(a, apos, ps.written) { out.alerts.append((a, partition, apos)) }
        }
    }

    @inline(__always) private func next(_ ps: inout PartitionState) -> Position {
        defer { ps.position.index += 1 }
        return ps.position
    }

    @inline(__always) private func isWritten(_ a: Alert, _ pos: Position, _ written: Written) -> Bool {
        guard let last = written.lastAlert[a.symbol] else { return false }
        return pos <= last
    }

    private func origin(_ partition: Int32, _ pos: Position) -> [KafkaHeader] {
        [KafkaHeader("origin", "\(service.options.groupID)|\(partition)|\(pos.offset)|\(pos.index)")]
    }

    private func publish(_ out: Outputs) throws {
        let producer = service.producer
        for (w, partition, pos) in out.windows {
            try producer.enqueue(topic: options.metricsTopic, key: Array(w.symbol.utf8), value: w.jsonBytes(),
                                 headers: origin(partition, pos), timestamp: w.windowEnd)
        }
        for (a, partition, pos) in out.alerts {
            try producer.enqueue(topic: options.alertsTopic, key: Array(a.symbol.utf8), value: a.jsonBytes(),
                                 headers: origin(partition, pos), timestamp: a.timestamp)
        }
        windowsOut.increment(by: out.windows.count)
        alertsOut.increment(by: out.alerts.count)
    }

    // MARK: checkpoints

    /// Flushes the outputs, writes the state of every changed partition (of `only`, or all), and
    /// returns the offsets to commit: the state records' and the input's.
    private func checkpoint(_ s: inout Shared, only: Set<Int32>?) throws -> [TopicPartitionOffset] {
        let changed = s.partitions.keys.filter { (only?.contains($0) ?? true) && s.partitions[$0]!.changed }.sorted()
        guard !changed.isEmpty else { return [] }
        let producer = service.producer
        try producer.flush(timeout: .seconds(60))
        let acknowledged = producer.acknowledgedOffsets()
        for p in changed {
            for tp in outputPartitions { if let o = acknowledged[tp] { s.partitions[p]!.outputEnds[tp] = max(s.partitions[p]!.outputEnds[tp] ?? 0, o + 1) } }
            try producer.enqueue(topic: stateTopic, key: Array("\(service.options.groupID)|\(p)".utf8), value: encode(s.partitions[p]!), partition: p)
        }
        try producer.flush(timeout: .seconds(60))
        let written = producer.acknowledgedOffsets()
        var offsets: [TopicPartitionOffset] = []
        for p in changed {
            guard let at = written[TopicPartition(topic: stateTopic, partition: p)] else { continue }
            s.partitions[p]!.changed = false
            offsets.append(TopicPartitionOffset(topic: stateTopic, partition: p, offset: at))
            offsets.append(TopicPartitionOffset(topic: service.options.topic, partition: p, offset: s.partitions[p]!.nextOffset))
        }
        return offsets
    }

    private func revoked(_ partitions: [TopicPartition]) {
        shared.withLock { s in
            let mine = Set(partitions.filter { $0.topic == service.options.topic }.map(\.partition)).filter { s.partitions[$0] != nil }
            guard !mine.isEmpty else { return }
            do {
                let offsets = try checkpoint(&s, only: mine)
                if !offsets.isEmpty { try service.consumer.commit(offsets, wait: true) }
            } catch {
                logger.warning("could not checkpoint revoked partitions \(mine.sorted()): \(error); their next owner resumes from the previous checkpoint")
            }
            for p in mine { s.partitions[p] = nil }
        }
    }

    private func assigned(_ partitions: [TopicPartition]) -> [TopicPartitionOffset] {
        let input = service.options.topic
        let mine = partitions.filter { $0.topic == input }.map(\.partition)
        guard !mine.isEmpty else { return [] }
        let generation = service.consumer.generation
        do {
            let restored = try restore(mine)
            return shared.withLock { s in
                for (p, var ps) in restored {
                    ps.generation = generation
                    s.partitions[p] = ps
                }
                return restored.compactMap { p, ps in ps.nextOffset > 0 ? TopicPartitionOffset(topic: input, partition: p, offset: ps.nextOffset) : nil }
            }
        } catch {
            logger.error("cannot restore the state of \(input) \(mine.sorted()): \(error)")
            shared.withLock { if $0.failure == nil { $0.failure = error } }
            return []
        }
    }

    /// The state of each partition: its last checkpoint (or a fresh state), with what was already
    /// written after that checkpoint read back from the output topics.
    private func restore(_ partitions: [Int32]) throws -> [Int32: PartitionState] {
        let group = service.options.groupID
        let committed = try service.consumer.committed(partitions.map { TopicPartition(topic: stateTopic, partition: $0) })
        let pointers = Dictionary(committed.filter { $0.offset >= 0 }.map { ($0.partition, $0.offset) }, uniquingKeysWith: max)
        let records = try reader.read(pointers.map { TopicPartitionOffset(topic: stateTopic, partition: $0.key, offset: $0.value) })
        var result: [Int32: PartitionState] = [:]
        for p in partitions {
            guard let at = pointers[p] else {
                result[p] = PartitionState(aggregator: try WindowAggregator(config: options.window), alerts: AlertEngine(rules: options.alertRules))
                logger.info("\(service.options.topic)[\(p)]: no checkpoint in \(stateTopic); starting from the group's committed offset with empty windows")
                continue
            }
            guard let record = records.first(where: { $0.partition == p && $0.offset == at }) else {
                throw AggregatorStateError.missingCheckpoint(topic: stateTopic, partition: p, offset: at)
            }
            do { result[p] = try decode(record.value) } catch let error as StateDecodingError {
                throw AggregatorStateError.corrupt(topic: stateTopic, partition: p, offset: at, reason: error.reason)
            }
            logger.info("\(service.options.topic)[\(p)]: restored the checkpoint at \(stateTopic)[\(p)]@\(at); continuing at offset \(result[p]!.nextOffset)")
        }
        let checkpointed = result.filter { pointers[$0.key] != nil }
        guard !checkpointed.isEmpty else { return result }
        let starts = outputPartitions.map { tp in
            TopicPartitionOffset(topic: tp.topic, partition: tp.partition, offset: checkpointed.values.map { $0.outputEnds[tp] ?? 0 }.min() ?? 0)
        }
        var skipped = 0
        for m in try reader.read(starts, timeout: .seconds(60)) {
            guard let header = m.header("origin"), let o = Self.parseOrigin(header), o.group == group,
                  result[o.partition] != nil, pointers[o.partition] != nil,
                  m.offset >= (result[o.partition]!.outputEnds[TopicPartition(topic: m.topic, partition: m.partition)] ?? 0),
                  let key = m.key else { continue }
            let symbol = String(decoding: key, as: UTF8.self)
            if m.topic == options.metricsTopic {
                guard let start = Self.windowStart(m.value) else { continue }
                result[o.partition]!.written.lastWindowStart[symbol] = max(result[o.partition]!.written.lastWindowStart[symbol] ?? .min, start)
            } else {
                result[o.partition]!.written.lastAlert[symbol] = max(result[o.partition]!.written.lastAlert[symbol] ?? o.position, o.position)
            }
            skipped += 1
        }
        if skipped > 0 { logger.info("found \(skipped) outputs written after the checkpoints of \(checkpointed.keys.sorted()); they will not be written again") }
        return result
    }

    static func parseOrigin(_ bytes: [UInt8]) -> (group: String, partition: Int32, position: Position)? {
        let parts = bytes.split(separator: UInt8(ascii: "|"), omittingEmptySubsequences: false)
        guard parts.count >= 4,
              let index = Int64(String(decoding: parts[parts.count - 1], as: UTF8.self)),
              let offset = Int64(String(decoding: parts[parts.count - 2], as: UTF8.self)),
              let partition = Int32(String(decoding: parts[parts.count - 3], as: UTF8.self)) else { return nil }
        let group = String(decoding: bytes[..<(parts[parts.count - 3].startIndex - 1)], as: UTF8.self)
        return (group, partition, Position(offset: offset, index: index))
    }

    static func windowStart(_ value: [UInt8]) -> Int64? {
        let marker = Array(#""window_start":"#.utf8)
        guard let at = value.firstRange(of: marker)?.upperBound else { return nil }
        var end = at
        while end < value.count, value[end] == UInt8(ascii: "-") || (48...57).contains(value[end]) { end += 1 }
        return Int64(String(decoding: value[at..<end], as: UTF8.self))
    }

    // MARK: state records

    private static let magic = "marketstream-aggregator-state-v1"

    private func encode(_ ps: PartitionState) -> [UInt8] {
        var w = StateWriter()
        w.string(Self.magic)
        w.string(fingerprint)
        w.int(ps.nextOffset); w.int(ps.newest); w.int(ps.position.offset); w.int(ps.position.index)
        let ends = ps.outputEnds.sorted { $0.key < $1.key }
        w.int(ends.count)
        for (tp, o) in ends { w.string(tp.topic); w.int32(tp.partition); w.int(o) }
        ps.aggregator.encode(into: &w)
        ps.alerts.encode(into: &w)
        return w.bytes
    }

    private func decode(_ bytes: [UInt8]) throws -> PartitionState {
        var r = StateReader(bytes)
        guard try r.string() == Self.magic else { throw StateDecodingError(reason: "not an aggregator state record") }
        let written = try r.string()
        guard written == fingerprint else { throw AggregatorStateError.settingsChanged(stateTopic: stateTopic, then: written, now: fingerprint) }
        let nextOffset = try r.int(), newest = try r.int(), position = Position(offset: try r.int(), index: try r.int())
        var ends: [TopicPartition: Int64] = [:]
        for _ in 0..<(try r.count()) { ends[TopicPartition(topic: try r.string(), partition: try r.int32())] = try r.int() }
        let aggregator = try WindowAggregator(config: options.window, restoring: &r)
        let alerts = try AlertEngine(rules: options.alertRules, restoring: &r)
        guard r.isAtEnd else { throw StateDecodingError(reason: "trailing bytes") }
        return PartitionState(aggregator: aggregator, alerts: alerts, newest: newest, nextOffset: nextOffset, position: position, outputEnds: ends)
    }
}

public enum AggregatorStateError: Error, CustomStringConvertible {
    case missingTopic(String)
    case statePartitions(topic: String, has: Int, needs: Int)
    case missingCheckpoint(topic: String, partition: Int32, offset: Int64)
    case corrupt(topic: String, partition: Int32, offset: Int64, reason: String)
    case settingsChanged(stateTopic: String, then: String, now: String)

    public var description: String {
        switch self {
        case .missingTopic(let t): return "the input topic \(t) does not exist (create it with `pipeline ensure-topics`)"
        case .statePartitions(let t, let has, let needs):
            return "state topic \(t) has \(has) partitions but the input has \(needs); delete it or use another --group"
        case .missingCheckpoint(let t, let p, let o):
            return "the group's checkpoint \(t)[\(p)]@\(o) cannot be read (deleted by retention?); use another --group to start over"
        case .corrupt(let t, let p, let o, let reason): return "checkpoint \(t)[\(p)]@\(o) is unreadable: \(reason)"
        case .settingsChanged(let t, let then, let now):
            return "the state in \(t) was made with other settings (\(then)); this run has \(now): run with the same settings or another --group"
        }
    }
}
