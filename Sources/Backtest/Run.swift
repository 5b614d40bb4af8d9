import Feed
import Foundation
import Pipeline
import Replay

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
    /// `.csv`/`.csv.gz` → tardis, `.zip` → lean, anything else → recording.
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
        guard FileManager.default.fileExists(atPath: path) else { throw BacktestFailure("\(path): no such file") }
        var engine = try BacktestEngine(strategy: strategy, config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        var skipped = 0
        do {
            switch format.resolved(for: path) {
            case .recording, .auto:
                let reader = try RecordingReader(path: path, skipBad: skipBad, validateFrames: false)
                while let raw = try reader.nextRaw(checkUTF8: false) {
                    let frame: FinnhubFrame
                    do { frame = try FinnhubCodec.decode(UnsafeRawBufferPointer(raw.bytes)) } catch {
                        try reader.reportBadFrame(line: raw.line, "frame does not decode: \(error)")
                        continue
                    }
                    if case .trades(let trades) = frame { for t in trades { engine.process(t) } }
                }
                skipped = reader.skippedLines
            case .tardis: skipped = try imported(TardisTradesImporter(path: path, skipBad: skipBad), &engine)
            case .binance: skipped = try imported(BinanceRawImporter(path: path, skipBad: skipBad), &engine)
            case .lean: skipped = try imported(LeanTickImporter(path: path, skipBad: skipBad), &engine)
            }
        } catch let e as BacktestFailure {
            throw e
        } catch let e as RecordingError {
            throw BacktestFailure(e.kind == .io ? "\(path): \(e.message)" : e.description)
        } catch {
            throw BacktestFailure("\(path): \(error)")
        }
        let wall = DispatchTime.now().uptimeNanoseconds - start
        return BacktestResult(report: engine.report(), wallNs: wall, skipped: skipped)
    }

    private static func imported<S: Strategy>(_ importer: some TradeImporter, _ engine: inout BacktestEngine<S>) throws -> Int {
        let stats = try importer.run { _, frame in
            if case .trades(let trades) = try FinnhubCodec.decode(frame) { for t in trades { engine.process(t) } }
        }
        return stats.rowsSkipped
    }

    /// Runs `strategy` over the trades of `trades`, in order (any sequence: a tape in memory, a test fixture).
    public static func run<S: Strategy>(trades: some Sequence<Trade>, strategy: S, config: BacktestConfig = BacktestConfig()) throws(BacktestFailure) -> BacktestResult {
        var engine = try BacktestEngine(strategy: strategy, config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        for t in trades { engine.process(t) }
        return BacktestResult(report: engine.report(), wallNs: DispatchTime.now().uptimeNanoseconds - start, skipped: 0)
    }

    /// Runs `strategy` over every trade a ``Feed`` delivers until its event stream ends (the feed stops, fails
    /// fatally, or the task is cancelled, which stops the feed).
    public static func run<S: Strategy>(feed: some Feed, strategy: S, config: BacktestConfig = BacktestConfig()) async throws -> BacktestResult {
        var engine = try BacktestEngine(strategy: strategy, config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        let runner = Task { try await feed.run() }
        await withTaskCancellationHandler {
            for await event in feed.events {
                if case .trades(let trades) = event { engine.process(trades) }
            }
        } onCancel: {
            runner.cancel()
        }
        _ = await runner.result
        return BacktestResult(report: engine.report(), wallNs: DispatchTime.now().uptimeNanoseconds - start, skipped: 0)
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
