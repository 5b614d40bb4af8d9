import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline
import Foundation
import Synchronization

/// What a run produced, plus how fast it went (the speed is not part of the deterministic report).
public struct BacktestResult: Sendable {
    public var report: BacktestReport
    /// Wall time of the event loop, reading and decoding included.
    public var wallNs: UInt64
    /// Lines or rows skipped because of `skipBad`, and trade messages that did not decode (paper trading).
    public var skipped: Int
    public var tradesPerSecond: Double { wallNs > 0 ? Double(report.trades) * 1e9 / Double(wallNs) : 0 }
    /// `<trades> trades in <s> s (<rate> trades/s)`.
    public var speedLine: String {
        String(format: "%d trades in %.3f s (%.0f trades/s)", report.trades, Double(wallNs) / 1e9, tradesPerSecond)
            + (skipped > 0 ? ", \(skipped) skipped" : "")
    }
}

/// Input formats `Backtest.run(path:)` reads: a recording, or history the replay importers understand.
public enum InputFormat: String, Sendable, CaseIterable {
    /// `.csv`/`.csv.gz` → tardis, `.zip` → lean, anything else → recording (JSONL, gzip, or its binary tape).
    case auto, recording, tardis, binance, lean

    func resolved(for path: String) -> InputFormat {
        guard self == .auto else { return self }
        let p = path.lowercased()
        if p.hasSuffix(".csv") || p.hasSuffix(".csv.gz") { return .tardis }
        if p.hasSuffix(".zip") { return .lean }
        return .recording
    }
}

/// Runs strategies over history as fast as the machine allows.
public enum Backtest {
    /// Runs `strategy` over the file at `path`, in the file's order. Bad input throws a one-line
    /// ``BacktestFailure`` naming file and line, unless `skipBad`.
    public static func run<S: Strategy>(path: String, format: InputFormat = .auto, strategy: S, config: BacktestConfig = BacktestConfig(),
                                        skipBad: Bool = false) throws(BacktestFailure) -> BacktestResult {
        try runFile(path, format, strategy, config, skipBad)
    }

    static func runFile<S: Strategy>(_ path: String, _ format: InputFormat, _ strategy: S, _ config: BacktestConfig,
                                     _ skipBad: Bool, rawTurns: TapeReader.RawTurns = .whenEngineWaits) throws(BacktestFailure) -> BacktestResult {
        guard FileManager.default.fileExists(atPath: path) else { throw BacktestFailure("\(path): no such file") }
        var engine = try BacktestEngine(strategy: strategy, config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        let queue = ChunkQueue(depth: 8)
        let reader = Thread { TapeReader.read(path: path, format: format.resolved(for: path), skipBad: skipBad, rawTurns: rawTurns, into: queue) }
        reader.name = "backtest-reader"
        reader.start()
        var decoded: [Trade] = []
        var skipped = 0
        func finish(_ failure: BacktestFailure) -> BacktestFailure {
            queue.stop()
            while true { switch queue.take() { case .end, .failure: return failure; default: continue } }
        }
        while true {
            switch queue.take() {
            case .trades(let trades): engine.process(trades)
            case .tape(let records, let tape): engine.process(records, of: tape)
            case .raw(let chunk):
                do { skipped += try chunk.decode(into: &decoded, path: path, skipBad: skipBad) } catch { throw finish(error) }
                engine.process(decoded)
            case .end(let n):
                return BacktestResult(report: engine.report(), wallNs: DispatchTime.now().uptimeNanoseconds - start, skipped: skipped + n)
            case .failure(let f): throw f
            }
        }
    }

    /// ``run(path:format:strategy:config:skipBad:)`` for a strategy of a type known only at run time (as
    /// ``Strategies/make(_:parameters:)`` returns): built-in strategies run on code specialized for their type.
    public static func run(path: String, format: InputFormat = .auto, strategy: any Strategy, config: BacktestConfig = BacktestConfig(),
                           skipBad: Bool = false) throws(BacktestFailure) -> BacktestResult {
        switch strategy {
        case let s as BuyAndHold: return try runFile(path, format, s, config, skipBad)
        case let s as VWAPReversion: return try runFile(path, format, s, config, skipBad)
        case let s as Breakout: return try runFile(path, format, s, config, skipBad)
        default: return try runFile(path, format, strategy, config, skipBad)
        }
    }

    /// Runs `strategy` over the trades of `trades`, in order (any sequence: a tape in memory, a test fixture).
    public static func run<S: Strategy>(trades: some Sequence<Trade>, strategy: S, config: BacktestConfig = BacktestConfig()) throws(BacktestFailure) -> BacktestResult {
        var engine = try BacktestEngine(strategy: strategy, config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        for t in trades { engine.process(t) }
        return BacktestResult(report: engine.report(), wallNs: DispatchTime.now().uptimeNanoseconds - start, skipped: 0)
    }

    /// Runs `strategy` over every trade any ``Feed`` delivers (a live socket, a recording at N×, the synthetic
    /// market) until the feed ends or the task is cancelled. Malformed frames are counted as skipped; a fatal
    /// feed error is thrown.
    public static func run<S: Strategy>(feed: some Feed, strategy: S, config: BacktestConfig = BacktestConfig()) async throws -> BacktestResult {
        var engine = try BacktestEngine(strategy: strategy, config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        var skipped = 0
        try await feed.run(frames: false) { event in
            switch event {
            case .trades(let trades): engine.process(trades)
            case .malformedFrame: skipped += 1
            default: break
            }
        }
        return BacktestResult(report: engine.report(), wallNs: DispatchTime.now().uptimeNanoseconds - start, skipped: skipped)
    }
}

/// Parses the command line's durations: `500ms`, `10s`, `1m`, `2h`, or a plain number of seconds. Returns ms.
public enum DurationText {
    public static func milliseconds(_ text: String) throws(BacktestFailure) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        var number = t, scale = 1000.0
        for (suffix, s) in units where t.hasSuffix(suffix) { number = String(t.dropLast(suffix.count)); scale = s; break }
        guard let v = Double(number), v.isFinite, v >= 0, (v * scale).rounded() == v * scale, v * scale < 1e15 else {
            throw BacktestFailure("invalid duration \"\(text)\": use e.g. 500ms, 10s, 1m")
        }
        return Int64(v * scale)
    }
}

/// Reads a file on its own thread and hands its trades to the engine in order, in chunks. Of a recording, it
/// decodes the frames in turns of ``rawChunkBytes``; when the engine's thread is waiting for trades (fewer
/// than ``busyEngine`` chunks queued) a turn goes to that thread undecoded (`raw`), so reading, decoding and
/// the engine share two cores whichever of them is slower for this strategy and file.
enum TapeReader {
    static let chunkSize = 4096
    /// A turn of frames holds about this many bytes (some 4,000 trades).
    static let rawChunkBytes = 256 << 10
    /// Chunks queued at which the engine's thread counts as busy: the reader then decodes the next turn itself.
    static let busyEngine = 2

    /// Which turns of a recording the reader leaves to the engine's thread.
    enum RawTurns: Sendable {
        /// The turns that start while the engine's thread is waiting (fewer than ``busyEngine`` chunks queued).
        case whenEngineWaits
        /// Every other turn, whatever the threads' speeds.
        case everyOther
        /// None: the reader decodes every frame.
        case never
    }

    static func read(path: String, format: InputFormat, skipBad: Bool, rawTurns: RawTurns = .whenEngineWaits, into queue: ChunkQueue) {
        var chunk: [Trade] = []
        chunk.reserveCapacity(chunkSize + 64)
        func emit(_ trades: [Trade]) {
            chunk.append(contentsOf: trades)
            if chunk.count >= chunkSize {
                queue.put(.trades(chunk))
                chunk.removeAll(keepingCapacity: true)
            }
        }
        do {
            var skipped = 0
            switch format {
            case _ where (format == .recording || format == .auto) && BinaryTape.isTape(path: path):
                // A tape's trade records need no decoding: the reader thread hands them over in runs.
                let tape = try BinaryTape(path: path)
                try tape.forEachRecordRun(runSize: chunkSize) { run in
                    queue.put(.tape(run, tape))
                    if queue.stopped { throw CancellationError() }
                }
            case .recording, .auto:
                let reader = try RecordingReader(path: path, skipBad: skipBad, validateFrames: false)
                var raw = RawChunk()
                // Bytes of frames decoded here in this turn: turns are by bytes, as a frame may hold one
                // trade or hundreds.
                var decodedBytes = 0
                while let f = try reader.nextRaw(checkUTF8: false) {
                    if decodedBytes >= rawChunkBytes, raw.lines.isEmpty {
                        switch rawTurns {
                        case .whenEngineWaits: if queue.count >= busyEngine { decodedBytes = 0 }
                        case .everyOther: break
                        case .never: decodedBytes = 0
                        }
                    }
                    if decodedBytes >= rawChunkBytes {
                        if raw.lines.isEmpty, !chunk.isEmpty {
                            // The decoded trades before the raw turn go first: the engine sees the file's order.
                            queue.put(.trades(chunk))
                            chunk.removeAll(keepingCapacity: true)
                        }
                        raw.append(f)
                        if raw.bytes.count >= rawChunkBytes {
                            queue.put(.raw(raw))
                            raw = RawChunk()
                            decodedBytes = 0
                            if queue.stopped { break }
                        }
                        continue
                    }
                    decodedBytes += f.bytes.count
                    let frame: FinnhubFrame
                    do { frame = try FinnhubCodec.decode(UnsafeRawBufferPointer(f.bytes)) } catch {
                        try reader.reportBadFrame(line: f.line, "frame does not decode: \(error)")
                        continue
                    }
                    if case .trades(let trades) = frame {
                        chunk.append(contentsOf: trades)
                        if chunk.count >= chunkSize {
                            queue.put(.trades(chunk))
                            chunk.removeAll(keepingCapacity: true)
                            if queue.stopped { break }
                        }
                    }
                }
                if !chunk.isEmpty { queue.put(.trades(chunk)) }
                if !raw.lines.isEmpty { queue.put(.raw(raw)) }
                chunk.removeAll()
                skipped = reader.skippedLines
            case .tardis: skipped = try imported(TardisTradesImporter(path: path, skipBad: skipBad), emit)
            case .binance: skipped = try imported(BinanceRawImporter(path: path, skipBad: skipBad), emit)
            case .lean: skipped = try imported(LeanTickImporter(path: path, skipBad: skipBad), emit)
            }
            if !chunk.isEmpty { queue.put(.trades(chunk)) }
            queue.put(.end(skipped: skipped))
        } catch is CancellationError {
            queue.put(.end(skipped: 0))
        } catch let e as RecordingError {
            queue.put(.failure(BacktestFailure(e.kind == .io ? "\(path): \(e.message)" : e.description)))
        } catch {
            queue.put(.failure(BacktestFailure("\(path): \(error)")))
        }
    }

    private static func imported(_ importer: some TradeImporter, _ emit: ([Trade]) -> Void) throws -> Int {
        try importer.run { _, frame in
            if case .trades(let trades) = try FinnhubCodec.decode(frame) { emit(trades) }
        }.rowsSkipped
    }
}

/// Frames copied out of the reader's buffer, decoded later on another thread.
struct RawChunk: Sendable {
    var bytes: [UInt8] = []
    var ends: [Int] = []
    var lines: [Int] = []

    init() {
        bytes.reserveCapacity(TapeReader.rawChunkBytes + (64 << 10))
        ends.reserveCapacity(TapeReader.chunkSize)
        lines.reserveCapacity(TapeReader.chunkSize)
    }

    mutating func append(_ f: RecordingReader.RawFrame) {
        bytes.append(contentsOf: f.bytes)
        ends.append(bytes.count)
        lines.append(f.line)
    }

    /// Replaces `out` with the chunk's trades; returns the frames skipped (`skipBad`) or throws the first bad one.
    func decode(into out: inout [Trade], path: String, skipBad: Bool) throws(BacktestFailure) -> Int {
        out.removeAll(keepingCapacity: true)
        var skipped = 0
        var failure: BacktestFailure?
        bytes.withUnsafeBytes { all in
            var start = 0
            for i in ends.indices {
                let frame = UnsafeRawBufferPointer(rebasing: all[start..<ends[i]])
                start = ends[i]
                do {
                    if case .trades(let trades) = try FinnhubCodec.decode(frame) { out.append(contentsOf: trades) }
                } catch {
                    guard skipBad else {
                        failure = BacktestFailure(RecordingError(.invalidFrame, path: path, line: lines[i], "frame does not decode: \(error)").description)
                        return
                    }
                    skipped += 1
                }
            }
        }
        if let failure { throw failure }
        return skipped
    }
}

/// What the reader thread hands the engine, in order.
enum ChunkItem: Sendable {
    case trades([Trade])
    /// Trade records of `tape` (``BinaryTape/forEachRecordRun(runSize:_:)``).
    case tape([BinaryTape.Record], BinaryTape)
    case raw(RawChunk)
    case end(skipped: Int)
    case failure(BacktestFailure)
}

/// The bounded FIFO between one reader thread and the engine.
typealias ChunkQueue = BlockingQueue<ChunkItem>
