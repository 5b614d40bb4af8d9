import Feed
import Foundation
import Metrics
import Synchronization

/// Consumer 3 of the seed: batches trades into JSONL files (optionally gzip) under
/// `dataDir/<topic>/<yyyy-mm-dd>/<symbol>/<topic>-p<P>-<first>-<last>.jsonl`, one line per
/// record: `{"partition":P,"offset":O,"trade":<the record's JSON value>}`.
///
/// Crash safety (kill -9 at any moment loses nothing and stores nothing twice):
/// 1. a batch (N records or T seconds per partition) is written file by file, each atomically
///    (temp file, fsync, rename, fsync of the folder);
/// 2. then `dataDir/<topic>/_offsets/p<P>` records the batch's last offset, atomically;
/// 3. then the offsets are committed to Kafka.
/// On start, files of a batch whose marker was never written are deleted, and records at or
/// below the marker are skipped, so re-delivered records are never stored again. Records buffered
/// for a partition that was revoked meanwhile are dropped: its new owner reads them again. Files stored more
/// than `retentionDays` ago are deleted at start and hourly.
public final class StorageService: Sendable {
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
        var buffers: [Int32: [(trade: Trade, message: KafkaMessage)]] = [:]
        var oldest: ContinuousClock.Instant?
        var markers: [Int32: Int64] = [:]
        var durable: [Int32: Int64] = [:]
        var lastRetention = ContinuousClock.now
    }
    private let state = Mutex(State())
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
        try FileManager.default.createDirectory(atPath: markerDir, withIntermediateDirectories: true)
        let markers = try Self.readMarkers(markerDir)
        for (path, batch) in StoredOffsets.batchFiles(under: options.dataDir, topic: topic)
        where batch.lastOffset > (markers[Int32(batch.partition)] ?? -1) {
            try FileManager.default.removeItem(atPath: path)
        }
        state.withLock { $0.markers = markers }
        _ = try? Retention.deleteFiles(olderThanDays: options.retentionDays, under: options.dataDir)
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

    /// The highest offset stored per partition (what survived the last crash).
    public var markers: [Int32: Int64] { state.withLock { $0.markers } }

    public func run() async throws {
        try await service.run({ [self] batch in
            let full = state.withLock { s -> Bool in
                for item in batch where item.message.offset > (s.markers[item.message.partition] ?? -1) {
                    s.buffers[item.message.partition, default: []].append(item)
                }
                if s.oldest == nil, !s.buffers.isEmpty { s.oldest = .now }
                return s.buffers.values.contains { $0.count >= options.batchSize }
            }
            if full { try writeBuffered() }
        }, beforeCheckpoint: { [self] final in
            let due = state.withLock { s in s.oldest.map { ContinuousClock.now - $0 >= options.batchInterval } ?? false }
            if due || final { try writeBuffered() }
            return state.withLock { s in
                defer { s.durable.removeAll() }
                return s.durable.map { TopicPartitionOffset(topic: topic, partition: $0.key, offset: $0.value + 1) }
            }
        })
    }

    private func writeBuffered() throws {
        let buffers = state.withLock { s -> [Int32: [(trade: Trade, message: KafkaMessage)]] in
            defer { s.buffers.removeAll(); s.oldest = nil }
            return s.buffers
        }
        let start = ContinuousClock.now
        let assigned = service.consumer.assignment
        for (partition, items) in buffers.sorted(by: { $0.key < $1.key }) where !items.isEmpty {
            guard assigned.contains(TopicPartition(topic: topic, partition: partition)) else { continue }
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
                entry.bytes.append(contentsOf: message.value)
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
