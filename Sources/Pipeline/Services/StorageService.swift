import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
import ServiceLifecycle
import Metrics
import Synchronization

/// Consumer 3 of the seed: batches of at most `batchSize` trades into JSONL files (optionally gzip) under
/// `dataDir/<topic>/<yyyy-mm-dd>/<symbol>/<topic>-p<P>-<first>-<last>.jsonl`, one line per
/// record: `{"partition":P,"offset":O,"trade":<the record's JSON value>}`.
///
/// Crash safety (kill -9 at any moment loses nothing and stores nothing twice):
/// 1. a batch (N records or T seconds per partition) is written file by file, each atomically
///    (temp file, fsync, rename, fsync of the folder);
/// 2. then `dataDir/<topic>/_offsets/p<P>` records the batch's last offset, atomically;
/// 3. then the offsets are committed to Kafka.
/// When a member gets a partition it reads that partition's marker anew, deletes the partition's
/// files of a batch whose marker was never written, and starts reading after the marker; records at or
/// below the marker are skipped, so re-delivered records are never stored again. Before a partition
/// is given up, a batch being written for it is finished and what is buffered for it is dropped
/// (its new owner reads it again), so several instances can share one data folder, however
/// partitions move between them. Files stored more than `retentionDays` ago are deleted at start and hourly.
public final class StorageService: Service, Sendable {
    public struct Options: Sendable {
        public var dataDir: String
        public var batchSize = 1000
        public var batchInterval: Duration = .seconds(5)
        public var gzip = false
        public var retentionDays = 7
        public init(dataDir: String) { self.dataDir = dataDir }
    }

    public let service: ConsumerService
    public let options: Options
    private let topic: String
    private struct State {
        var owned: Set<Int32> = []
        var buffers: [Int32: [(trade: Trade, message: KafkaMessage)]] = [:]
        var oldest: ContinuousClock.Instant?
        var markers: [Int32: Int64] = [:]
        /// Highest offset buffered or stored per owned partition: records at or below it are repeats.
        var accepted: [Int32: Int64] = [:]
        /// Per owned partition, the consumer generation it was taken at: records fetched before are stale.
        var generations: [Int32: UInt64] = [:]
        var durable: [Int32: Int64] = [:]
        /// Per owned partition, the newest dead-lettered offset not yet passed by the marker.
        var rejectedTail: [Int32: Int64] = [:]
        var lastRetention = ContinuousClock.now
    }
    private let state = Mutex(State())
    /// Held while a batch is written, so a partition is never given up in the middle of one.
    private let writing = Mutex(())
    private let filesWritten: Counter
    private let recordsStored: Counter
    private let batchLatency: Metrics.Timer

    public init(service: ConsumerService, options: Options) throws {
        self.service = service
        self.options = options
        topic = service.options.topic
        filesWritten = Counter(label: "pipeline_storage_files_total")
        recordsStored = Counter(label: "pipeline_storage_records_total")
        batchLatency = Metrics.Timer(label: "pipeline_storage_batch_seconds")
        try Self.prepareFolder(options, topic: topic)
        _ = try? Retention.deleteFiles(olderThanDays: options.retentionDays, under: options.dataDir)
    }

    /// Creates the data folder (and its marker folder for `topic`) where missing.
    /// - Throws: ``StorageError`` naming the path that cannot be created.
    public static func prepareFolder(_ options: Options, topic: String) throws {
        try AtomicFileWriter.makeDirectories(StoragePaths.standardize(options.dataDir + "/" + SafeFileName.component(for: topic) + "/_offsets"))
    }

    private var markerDir: String { options.dataDir + "/" + SafeFileName.component(for: topic) + "/_offsets" }

    static func readMarkers(_ dir: String) throws -> [Int32: Int64] {
        var markers: [Int32: Int64] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix("p") {
            guard let p = Int32(name.dropFirst()),
                  let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8),
                  let offset = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            markers[p] = offset
        }
        return markers
    }

    /// The highest offset stored per owned partition.
    public var markers: [Int32: Int64] { state.withLock { $0.markers } }

    /// Takes over `partitions`: reads each marker from disk, deletes the partition's files that
    /// no marker covers (a batch cut short by a crash) and returns where to continue reading.
    private func take(_ partitions: [TopicPartition]) -> [TopicPartitionOffset] {
        let mine = partitions.filter { $0.topic == topic }.map(\.partition)
        guard !mine.isEmpty else { return [] }
        let markers = (try? Self.readMarkers(markerDir)) ?? [:]
        let wanted = Set(mine)
        for (path, batch) in StoredOffsets.batchFiles(under: options.dataDir, topic: topic)
        where wanted.contains(Int32(batch.partition)) && batch.lastOffset > (markers[Int32(batch.partition)] ?? -1) {
            do {
                try FileManager.default.removeItem(atPath: path)
                service.logger.notice("removed \(path): its batch was cut short before its marker was written")
            } catch {
                service.logger.error("cannot remove \(path) of an unfinished batch: \(error)")
            }
        }
        let generation = service.consumer.generation
        return state.withLock { s in
            var starts: [TopicPartitionOffset] = []
            for p in mine {
                s.owned.insert(p)
                s.generations[p] = generation
                s.buffers[p] = nil
                s.markers[p] = markers[p]
                s.accepted[p] = markers[p]
                if let m = markers[p] {
                    starts.append(TopicPartitionOffset(topic: topic, partition: p, offset: m + 1))
                    // What the marker says is stored is durable: the next checkpoint commits it, even
                    // when a member killed after writing it never did and nothing new arrives.
                    s.durable[p] = m
                }
            }
            return starts
        }
    }

    /// Gives up `partitions`: waits for a batch being written, then drops what is buffered for them.
    private func release(_ partitions: [TopicPartition]) {
        writing.withLock { _ in
            state.withLock { s in
                for tp in partitions where tp.topic == topic {
                    s.owned.remove(tp.partition)
                    s.generations[tp.partition] = nil
                    s.buffers[tp.partition] = nil
                    s.markers[tp.partition] = nil
                    s.accepted[tp.partition] = nil
                    s.durable[tp.partition] = nil
                    s.rejectedTail[tp.partition] = nil
                }
                if s.buffers.isEmpty { s.oldest = nil }
            }
        }
    }

    public func run() async throws {
        try await service.run({ [self] batch in
            let full = state.withLock { s -> Bool in
                for item in batch where (s.generations[item.message.partition] ?? .max) <= item.message.generation
                    && item.message.offset > (s.accepted[item.message.partition] ?? -1) {
                    s.buffers[item.message.partition, default: []].append(item)
                    s.accepted[item.message.partition] = item.message.offset
                }
                if s.oldest == nil, !s.buffers.isEmpty { s.oldest = .now }
                return s.buffers.values.contains { $0.count >= options.batchSize }
            }
            if full { try writeBuffered() }
        }, beforeCheckpoint: { [self] final in
            let due = state.withLock { s in s.oldest.map { ContinuousClock.now - $0 >= options.batchInterval } ?? false }
            if due || final { try writeBuffered() }
            try passDeadLetteredTails()
            return state.withLock { s in
                defer { s.durable.removeAll() }
                return s.durable.map { TopicPartitionOffset(topic: topic, partition: $0.key, offset: $0.value + 1) }
            }
        }, rebalance: RebalanceHandler(assigned: { [self] in take($0) }, revoked: { [self] in release($0) }),
        deadLettered: { [self] rejected in
            // A dead-lettered record is processed too: once every record before it is stored, the
            // commit passes it, so a restart never sends it to the dead-letter queue again.
            state.withLock { s in
                for m in rejected where (s.generations[m.partition] ?? .max) <= m.generation && m.offset > (s.accepted[m.partition] ?? -1) {
                    s.accepted[m.partition] = m.offset
                    s.rejectedTail[m.partition] = m.offset
                }
            }
        })
    }

    /// Moves the marker (and the commit) past dead-lettered records that follow everything stored,
    /// once the dead letters are delivered: a restart then starts after them.
    private func passDeadLetteredTails() throws {
        try writing.withLock { _ throws in
            let tails = state.withLock { s in
                s.rejectedTail.filter { s.owned.contains($0.key) && (s.buffers[$0.key]?.isEmpty ?? true) && $0.value > (s.markers[$0.key] ?? -1) }
            }
            guard !tails.isEmpty else { return }
            try service.producer.flush(timeout: .seconds(60))
            for (partition, offset) in tails.sorted(by: { $0.key < $1.key }) {
                try AtomicFileWriter.write(Array("\(offset)\n".utf8), to: markerDir + "/p\(partition)")
                state.withLock { s in
                    s.markers[partition] = offset
                    s.durable[partition] = offset
                    if s.rejectedTail[partition] == offset { s.rejectedTail[partition] = nil }
                }
            }
        }
    }

    private func writeBuffered() throws {
        try writing.withLock { _ throws in try writeBufferedLocked() }
    }

    private func writeBufferedLocked() throws {
        let buffers = state.withLock { s -> [Int32: [(trade: Trade, message: KafkaMessage)]] in
            defer { s.buffers.removeAll(); s.oldest = nil }
            return s.buffers.filter { s.owned.contains($0.key) }
        }
        let start = ContinuousClock.now
        for (partition, buffered) in buffers.sorted(by: { $0.key < $1.key }) where !buffered.isEmpty {
            for chunk in stride(from: 0, to: buffered.count, by: max(1, options.batchSize)) {
                let items = buffered[chunk..<min(chunk + max(1, options.batchSize), buffered.count)]
                let batch = BatchId(topic: topic, partition: Int(partition), firstOffset: items.first!.message.offset, lastOffset: items.last!.message.offset)
                var groups: [String: (eventMs: Int64, symbol: String, bytes: [UInt8])] = [:]
                for (trade, message) in items {
                    let key = StoragePaths.dateUTC(eventMs: trade.timestamp) + "\u{0}" + trade.symbol
                    var entry = groups[key] ?? (trade.timestamp, trade.symbol, [])
                    entry.bytes.append(contentsOf: #"{"partition":"#.utf8)
                    entry.bytes.append(contentsOf: String(message.partition).utf8)
                    entry.bytes.append(contentsOf: #","offset":"#.utf8)
                    entry.bytes.append(contentsOf: String(message.offset).utf8)
                    entry.bytes.append(contentsOf: #","trade":"#.utf8)
                    message.withUnsafeValue { entry.bytes.append(contentsOf: $0) }
                    entry.bytes.append(contentsOf: "}\n".utf8)
                    groups[key] = entry
                }
                for (_, group) in groups.sorted(by: { $0.key < $1.key }) {
                    let path = try StoragePaths.path(root: options.dataDir, topic: topic, eventMs: group.eventMs, symbol: group.symbol, batch: batch, gzip: options.gzip)
                    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try AtomicFileWriter.write(group.bytes, to: path, gzip: options.gzip)
                    filesWritten.increment()
                }
                try AtomicFileWriter.write(Array("\(batch.lastOffset)\n".utf8), to: markerDir + "/p\(partition)")
                recordsStored.increment(by: items.count)
                state.withLock { s in
                    s.markers[partition] = batch.lastOffset
                    s.durable[partition] = batch.lastOffset
                }
            }
        }
        batchLatency.recordInterval(since: start)
        let sweep = state.withLock { s -> Bool in
            guard ContinuousClock.now - s.lastRetention > .seconds(3600) else { return false }
            s.lastRetention = .now
            return true
        }
        if sweep { _ = try? Retention.deleteFiles(olderThanDays: options.retentionDays, under: options.dataDir) }
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}
