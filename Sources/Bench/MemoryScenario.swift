import Pipeline
import Feeds
import MarketData
import Recording
import Foundation
import Synchronization

/// Resident memory over a long replay: a recording of `trades` trades (written for the run, 20 per
/// frame) replayed with `--dry-run --speed max` through the same Feed and ingest path as any replay,
/// with the process's RSS sampled every second. Flat means nothing grows with the trades read.
public struct MemoryScenario: Sendable {
    public var trades: Int

    public init(trades: Int) { self.trades = trades }

    static func label(_ n: Int) -> String { n >= 1_000_000 ? "\(n / 1_000_000)M" : "\(n / 1_000)k" }

    public func run(log: (String) -> Void) async throws -> [BenchResult] {
        log("memory: writing a \(trades)-trade recording…")
        let replay = ReplayScenarios(config: nil, trades: trades, pacingSpan: 0)
        let path = try replay.makeRecording(trades: trades, frameGapNs: 1_000_000)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        log("memory: replaying \(fileBytes / 1_000_000) MB…")
        let devNull = open("/dev/null", O_WRONLY)
        defer { close(devNull) }
        let feed = RecordingFeed(path: path, options: ReplayOptions(speed: .max))
        let samples = Mutex<[Int]>([])
        let sampler = Task {
            while !Task.isCancelled {
                let rss = residentMemory()
                samples.withLock { $0.append(rss) }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        let run = try await replay.timed {
            try await IngestService(feed: feed, sink: TradeLineWriter(fd: devNull)).run()
            return feed.summary!
        }
        sampler.cancel()
        let last = residentMemory()
        let rss = samples.withLock { $0 + [last] }
        let mb = { (b: Int) in Double(b) / 1_048_576 }
        // The first sample is taken before the feed opens; the second, a second in, is the working start.
        let start = rss.count > 1 ? rss[1] : rss[0]
        return [BenchResult(scenario: "replay --dry-run --speed max, \(Self.label(trades)) trades: memory", messages: run.summary.trades, messageBytes: fileBytes / max(trades, 1),
                            seconds: run.seconds, cpuSeconds: run.cpu,
                            note: String(format: "RSS start %.1f MB, end %.1f MB, max %.1f MB (%d samples 1 s apart; start = a second in); recording %.2f GB",
                                         mb(start), mb(rss.last!), mb(rss.max()!), rss.count, Double(fileBytes) / 1e9))]
    }
}
