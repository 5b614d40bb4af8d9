import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import CKafkaFloor
import Foundation
import Logging

/// `sim-exchange --rate max` → the Feed's WebSocket client, over a real socket in this process.
public struct WebSocketScenario: Sendable {
    public var trades: Int
    public init(trades: Int) { self.trades = trades }

    public func run() async throws -> [BenchResult] {
        var config = SimExchangeConfig()
        config.port = 0
        config.setMaxRate()
        var quiet = Logger(label: "bench")
        quiet.logLevel = .critical
        let server = SimExchangeServer(config: config, logger: quiet)
        let port = try await server.start()
        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)", symbols: WebSocketFeed.defaultSymbols, logger: quiet)
        var count = 0, frames = 0, bytes = 0, sampled = 0
        var first: Int64?
        var cpu0 = 0.0
        let target = trades
        do {
        try await feed.run(frames: false) { event in
            guard case .trades(let t) = event else { return }
            if first == nil {
                first = monotonicNanoseconds()
                cpu0 = processCPUSeconds()
                return
            }
            count += t.count
            frames += 1
            if frames <= 100 { bytes += FinnhubCodec.encodeTrades(t).utf8.count; sampled += t.count }
            if count >= target { throw Enough() }
        }
        } catch is Enough {}
        let seconds = Double(monotonicNanoseconds() - (first ?? monotonicNanoseconds())) / 1e9
        let cpu = processCPUSeconds() - cpu0
        await server.stop()
        let perTrade = bytes / max(sampled, 1)
        var results = [BenchResult(scenario: "sim-exchange → WebSocket client", messages: count, messageBytes: perTrade, seconds: seconds, cpuSeconds: cpu,
                                   note: String(format: "%.0f trades per frame; server and client in this process", Double(count) / Double(max(frames, 1))))]
        // The same market without the socket: the in-process SyntheticFeed.
        var o = SyntheticFeed.Options()
        o.symbols = WebSocketFeed.defaultSymbols
        o.asFastAsPossible = true
        o.tradesPerSecond = Double(o.maxTradesPerFrame) * 1000 / Double(o.frameIntervalMilliseconds)
        o.maxTrades = trades
        var synthetic = 0
        let c0 = processCPUSeconds(), t0 = monotonicNanoseconds()
        try await SyntheticFeed(options: o).forEachTrades { synthetic += $0.count }
        results.append(BenchResult(scenario: "synthetic feed (in process)", messages: synthetic, messageBytes: perTrade,
                                   seconds: Double(monotonicNanoseconds() - t0) / 1e9, cpuSeconds: processCPUSeconds() - c0,
                                   note: "SyntheticFeed at max rate: the market sim-exchange serves, framed the same way, no socket"))
        return results
    }
}

/// Replay of a synthetic recording: `--speed max` into Kafka against the C floor's produce of the
/// same count, size and keys in the same run; `--dry-run --speed max` to /dev/null; and pacing
/// accuracy at 10× and 100×.
public struct ReplayScenarios: Sendable {
    public var config: KafkaConfig?
    public var trades: Int
    /// Length of the recording used for the pacing runs, in recorded seconds.
    public var pacingSpan: Double
    /// Named like the C floor's keys (`SYM<n>`), so both spread over the partitions the same way.
    public var symbols = (0..<20).map { "SYM\($0)" }
    public var tradesPerFrame = 20
    public var partitions = 6
    /// The Kafka runs go this many rounds (each with `trades / rounds`) in the order C S, S C, …, so a
    /// disturbance on the machine, or a broker slowing as it fills, lands on both sides alike.
    public var rounds = 2

    public init(config: KafkaConfig?, trades: Int, pacingSpan: Double) {
        self.config = config; self.trades = trades; self.pacingSpan = pacingSpan
    }

    /// Writes a recording of `trades` trades, `tradesPerFrame` per frame, frames `frameGapNs` apart.
    func makeRecording(trades: Int, frameGapNs: Int64) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UInt32.random(in: 0...UInt32.max)).jsonl").path
        let start = Self.startNs
        let writer = try RecordingWriter(path: path, header: RecordingHeader(source: "bench", symbols: symbols, startNs: start, createdBy: "bench"))
        var i = 0, frame: Int64 = 0
        var batch: [Trade] = []
        while i < trades {
            batch.removeAll(keepingCapacity: true)
            for _ in 0..<min(tradesPerFrame, trades - i) {
                batch.append(trade(i))
                i += 1
            }
            try writer.append(recvNs: start + frame * frameGapNs, frame: FinnhubCodec.encodeTrades(batch))
            frame += 1
        }
        try writer.close()
        return path
    }

    /// Receive time of a synthetic recording's first frame.
    static let startNs: Int64 = 1_764_000_000_000_000_000

    /// Trade `i` of a synthetic recording.
    func trade(_ i: Int) -> Trade {
        Trade(symbol: symbols[i % symbols.count], price: 30_000 + Double(i % 10_007) / 100, timestamp: Self.startNs / 1_000_000 + Int64(i),
              volume: Double(1 + i % 997) / 1000, conditions: nil)
    }

    public func run(includeKafka: Bool) async throws -> [BenchResult] {
        let path = try makeRecording(trades: trades, frameGapNs: 10_000_000)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = TradeMessage.encode(Trade(symbol: symbols[0], price: 30_000.25, timestamp: Self.startNs / 1_000_000, volume: 0.123, conditions: nil)).count
        var results: [BenchResult] = []

        let devNull = open("/dev/null", O_WRONLY)
        let out = TradeLineWriter(fd: devNull)
        // Plain and steerable (a ReplayControl attached) in 2 rounds each, in the order P S, S P.
        func dryRun(steerable: Bool) async throws -> (summary: ReplaySummary, seconds: Double, cpu: Double) {
            try await timed {
                let feed = RecordingFeed(path: path, options: ReplayOptions(speed: .max),
                                         control: steerable ? ReplayControl(speed: .max, file: "bench") : nil)
                try await IngestService(feed: feed, sink: out).run()
                return feed.summary!
            }
        }
        var plain: [(summary: ReplaySummary, seconds: Double, cpu: Double)] = [], steered: [(summary: ReplaySummary, seconds: Double, cpu: Double)] = []
        for round in 0..<2 {
            for steerable in (round == 0 ? [false, true] : [true, false]) {
                let run = try await dryRun(steerable: steerable)
                if steerable { steered.append(run) } else { plain.append(run) }
            }
        }
        let dry = (summary: plain[0].summary, seconds: plain.map(\.seconds).reduce(0, +), cpu: plain.map(\.cpu).reduce(0, +))
        let steer = (summary: steered[0].summary, seconds: steered.map(\.seconds).reduce(0, +), cpu: steered.map(\.cpu).reduce(0, +))
        results.append(BenchResult(scenario: "replay --dry-run --speed max", messages: dry.summary.trades * 2, messageBytes: bytes, seconds: dry.seconds, cpuSeconds: dry.cpu,
                                   note: "decode the recording and write each trade's JSON line to /dev/null; 2 rounds"))
        results.append(BenchResult(scenario: "replay --dry-run --speed max, steerable", messages: steer.summary.trades * 2, messageBytes: bytes,
                                   seconds: steer.seconds, cpuSeconds: steer.cpu,
                                   note: String(format: "the same with a ReplayControl attached (keys / --control-port); 2 rounds, order P S, S P: %.3f× of the row above",
                                                steer.seconds > 0 ? dry.seconds / steer.seconds : 0)))

        if includeKafka, let config {
            let roundPath = try makeRecording(trades: trades / rounds, frameGapNs: 10_000_000)
            defer { try? FileManager.default.removeItem(atPath: roundPath) }
            // The same recording's tape (`replay pack`): the same messages, without the JSON decode.
            let tapePath = roundPath + ".mstape"
            _ = try BinaryTape.pack(recording: roundPath, to: tapePath)
            defer { try? FileManager.default.removeItem(atPath: tapePath) }
            var c = Totals(), plain = Totals(), fromTape = Totals(), marked = Totals()
            for round in 0..<rounds {
                if round % 2 == 0 { c.add(try cProduce(config: config, n: trades / rounds)) }
                plain.add(try await swiftReplay(config: config, path: roundPath, headers: false))
                fromTape.add(try await swiftReplay(config: config, path: tapePath, headers: false))
                marked.add(try await swiftReplay(config: config, path: roundPath, headers: true))
                if round % 2 == 1 { c.add(try cProduce(config: config, n: trades / rounds)) }
            }
            let floor = BenchResult(scenario: "produce for replay (C floor)", messages: c.messages, messageBytes: bytes, seconds: c.seconds, cpuSeconds: c.cpu,
                                    note: "the replay's messages (same JSON values and keys), \(partitions) partitions, no headers; \(roundsText(rounds))")
            results.append(floor)
            for (name, t, note) in [("", plain, "read, decode, publish (produced on a second thread) until every trade is acknowledged; \(roundsText(rounds))"),
                                    (", from its tape", fromTape, "the same recording packed into a tape (replay pack): no JSON to decode, the same messages"),
                                    (" --headers", marked, "the same with headers source and ingest_time on every message")] {
                var r = BenchResult(scenario: "replay --speed max → Kafka" + name, messages: t.messages, messageBytes: bytes,
                                    seconds: t.seconds, cpuSeconds: t.cpu, note: note)
                r.ratioToFloor = r.messagesPerSecond / floor.messagesPerSecond
                results.append(r)
            }
        }

        let framesPerSecond = 100.0
        let pacingTrades = max(tradesPerFrame, Int(pacingSpan * framesPerSecond) * tradesPerFrame)
        let pacingPath = try makeRecording(trades: pacingTrades, frameGapNs: Int64(1e9 / framesPerSecond))
        defer { try? FileManager.default.removeItem(atPath: pacingPath) }
        for factor in [10.0, 100.0] {
            let paced = try await timed { try await RecordingFeed(path: pacingPath, options: ReplayOptions(speed: .factor(factor))).replay { _ in } }
            var r = BenchResult(scenario: "replay pacing \(Int(factor))×", messages: paced.summary.trades, messageBytes: bytes, seconds: paced.seconds, cpuSeconds: paced.cpu,
                                note: String(format: "%.1f s recorded at %.0f frames/s: schedule %.3f s, end drift %+.3f ms, max lag %.3f ms",
                                             pacingSpan, framesPerSecond, Double(paced.summary.scheduledNs ?? 0) / 1e9,
                                             Double(paced.summary.driftNs) / 1e6, Double(paced.summary.maxLagNs) / 1e6))
            r.driftMs = Double(paced.summary.driftNs) / 1e6
            r.latencyMs = ["max": Double(paced.summary.maxLagNs) / 1e6]
            results.append(r)
        }
        return results
    }

    /// Messages, seconds and CPU seconds summed over rounds.
    struct Totals {
        var messages = 0, seconds = 0.0, cpu = 0.0
        mutating func add(_ t: Totals) { messages += t.messages; seconds += t.seconds; cpu += t.cpu }
    }

    /// The C floor: `n` copies of the recording's trade messages, keyed the same way, into a fresh topic.
    func cProduce(config: KafkaConfig, n: Int) throws -> Totals {
        let topic = "bench-replay-c-\(UInt32.random(in: 0...UInt32.max))"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: partitions)])
        var seconds = 0.0
        let count = min(n, symbols.count * 1_000)
        var values: [UInt8] = []
        var lengths: [Int32] = []
        for i in 0..<count {
            let before = values.count
            TradeMessage.encode(trade(i), into: &values)
            lengths.append(Int32(values.count - before))
        }
        let c = try measure {
            try CFloor.run("C produce", config: config) { producer, _, err, errlen in
                cfloor_produce_values(producer, topic, Int64(n), values, lengths, Int32(count), Int32(symbols.count), &seconds, err, errlen)
            }
        }
        return Totals(messages: n, seconds: seconds, cpu: c.cpu)
    }

    /// `replay FILE --speed max` into a fresh topic, the way the command does it, until every trade is acknowledged.
    func swiftReplay(config: KafkaConfig, path: String, headers: Bool) async throws -> Totals {
        let topic = "bench-replay-\(UInt32.random(in: 0...UInt32.max))"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: partitions)])
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "replay:bench", headers: headers)
        let pipeline = ReplayKafka.pipeline(publisher, speed: .max)
        let replay = try await timed {
            let feed = RecordingFeed(path: path, options: ReplayOptions(speed: .max))
            try await IngestService(feed: feed, sink: pipeline).run()
            return feed.summary!
        }
        pipeline.close()
        try publisher.producer.close()
        return Totals(messages: replay.summary.trades, seconds: replay.seconds, cpu: replay.cpu)
    }

    func timed(_ body: () async throws -> ReplaySummary) async throws -> (summary: ReplaySummary, seconds: Double, cpu: Double) {
        let cpu0 = processCPUSeconds()
        let t0 = monotonicNanoseconds()
        let summary = try await body()
        return (summary, Double(monotonicNanoseconds() - t0) / 1e9, processCPUSeconds() - cpu0)
    }
}

private struct Enough: Error {}

/// Seeks in a recording through its index (what `replay` does on a key or `POST /seek`): a plain and a
/// gzip recording of `trades` trades written by the recorder, the index built, then seeks to 50 %, 90 %,
/// 10 % and 99 % of the recorded span, each timed from the request to the landing frame.
public struct SeekScenario: Sendable {
    public var trades: Int
    public init(trades: Int) { self.trades = trades }

    public func run() async throws -> [BenchResult] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-seek-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var results: [BenchResult] = []
        for (kind, name) in [("plain", "seek.jsonl"), ("gzip", "seek.jsonl.gz")] {
            let path = dir + "/" + name
            var o = SyntheticFeed.Options()
            o.symbols = ["AAPL", "MSFT", "BINANCE:BTCUSDT"]
            o.asFastAsPossible = true
            o.maxTradesPerFrame = 10
            o.tradesPerSecond = 100_000
            o.startMilliseconds = 1_732_000_000_000
            o.maxTrades = trades
            _ = try await FeedRecorder(feed: SyntheticFeed(options: o), options: RecordOptions(output: path, symbols: o.symbols)).run()
            let t0 = monotonicNanoseconds()
            let index = try RecordingIndex.build(path: path)
            let buildSeconds = Double(monotonicNanoseconds() - t0) / 1e9
            guard let first = index.firstRecvNs, let last = index.lastRecvNs else { continue }
            let reader = try RecordingReader(path: path, skipBad: true, validateFrames: false)
            var times: [Double] = []
            let c0 = processCPUSeconds(), w0 = monotonicNanoseconds()
            for fraction in [0.5, 0.9, 0.1, 0.99] {
                let target = first + Int64(Double(last - first) * fraction)
                let s = monotonicNanoseconds()
                if let e = index.entry(atOrBefore: target) {
                    try reader.reposition(offset: e.offset, line: e.line, members: index.members)
                    while let f = try reader.nextRaw(checkUTF8: false), f.recvNs < target {}
                }
                times.append(Double(monotonicNanoseconds() - s) / 1e6)
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            var r = BenchResult(scenario: "seek, \(kind) recording", messages: times.count, messageBytes: max(1, size / max(1, index.frames)),
                                seconds: Double(monotonicNanoseconds() - w0) / 1e9, cpuSeconds: processCPUSeconds() - c0,
                                note: String(format: "%d trades, %d frames, %.0f MB, %d gzip members; index built in %.2f s; seeks to 50/90/10/99 %%: %@ ms",
                                             index.trades, index.frames, Double(size) / 1e6, index.members.count, buildSeconds,
                                             times.map { String(format: "%.1f", $0) }.joined(separator: " / ")))
            r.latencyMs = ["max": times.max() ?? 0]
            results.append(r)
        }
        return results
    }
}
