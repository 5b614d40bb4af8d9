import MarketData
import Recording
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure the `replay` command reports as one line (`replay: <message>`) before exiting non-zero.
public struct ReplayFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// The recording line the failure is about, when it is about one.
    public var line: Int?
    public init(_ message: String, line: Int? = nil) { self.message = message; self.line = line }
    public var description: String { message }
}

/// What to replay and how.
public struct ReplayOptions: Sendable {
    public var speed: Speed = .factor(1)
    /// Only frames with recv_ns ≥ `fromNs` (ns since the epoch).
    public var fromNs: Int64?
    /// Only lines from this one on (1-based line numbers of the recording file; line 1 is the header):
    /// how a replay that stopped continues without publishing again what it already published.
    public var fromLine: Int?
    /// Only frames with recv_ns ≤ `toNs`.
    public var toNs: Int64?
    /// Only trades of these symbols; nil means all.
    public var symbols: Set<String>?
    /// Start again at the beginning after the end, on one continuous schedule, until stopped.
    public var loop = false
    /// With `loop`, stop after this many passes (nil: until stopped).
    public var maxPasses: Int?
    /// Skip and count bad lines and frames that do not decode instead of failing.
    public var skipBad = false
    /// How often `onProgress` is called.
    public var progressIntervalNs: UInt64 = 1_000_000_000

    public init(speed: Speed = .factor(1)) { self.speed = speed }
}

/// A snapshot of a running replay.
public struct ReplayProgress: Sendable {
    /// Position in the current pass, 0…1 (nil when unknown).
    public var fraction: Double?
    public var trades: Int
    public var frames: Int
    public var elapsedNs: UInt64
    /// How far behind schedule the last frame was released.
    public var lagNs: UInt64
    /// Seconds until the end of the current pass; nil when unknown.
    public var etaSeconds: Double?
    public var pass: Int
    /// The recording line of the last frame released.
    public var line = 0
    public var tradesPerSecond: Double { elapsedNs > 0 ? Double(trades) * 1e9 / Double(elapsedNs) : 0 }
}

/// What a replay did.
public struct ReplaySummary: Sendable, CustomStringConvertible {
    public var file: String
    public var speed: Speed
    /// Trades handed to `publish` and the frames that carried them.
    public var trades = 0
    public var frames = 0
    /// The recording line of the last frame handed to `publish` (0: none).
    public var lastLine = 0
    /// Every frame read in the window (pings, errors and trade frames filtered to nothing included).
    public var framesRead = 0
    /// Lines skipped because of `skipBad` (bad lines and frames that do not decode).
    public var skippedLines = 0
    /// First problems skipped, as `file:line: message`.
    public var problems: [String] = []
    /// Wall time from the first frame's release to the last frame's.
    public var wallNs: UInt64 = 0
    /// What the schedule allotted for the same span: (last recv_ns − first recv_ns) / speed; nil at max speed.
    public var scheduledNs: UInt64?
    /// Signed release time − due time of the last frame (`wallNs − scheduledNs`).
    public var driftNs: Int64 = 0
    /// The most any frame was released behind its due time.
    public var maxLagNs: UInt64 = 0
    public var passes = 0
    /// Stopped early (Ctrl-C / cancellation).
    public var interrupted = false
    /// Seeks done through a ``ReplayControl``; the trades they passed over that were not released later
    /// either (within each pass); and the trades released a second time after seeking back.
    public var seeks = 0
    public var skippedTrades = 0
    public var repeatedTrades = 0

    public init(file: String, speed: Speed) { self.file = file; self.speed = speed }

    public var description: String {
        let wall = Double(wallNs) / 1e9
        var s = "\(interrupted ? "Interrupted after replaying" : "Replayed") \(trades) trades in \(frames) frames from \(file)"
        s += " (\(framesRead) frames read\(passes > 1 ? ", \(passes) passes" : "")) at \(speed) in \(String(format: "%.3f", wall)) s"
        if wallNs > 0 { s += String(format: " (%.0f trades/s)", Double(trades) / wall) }
        if let scheduledNs {
            s += String(format: "; schedule %.3f s, drift %+.3f ms, max lag %.3f ms", Double(scheduledNs) / 1e9,
                        Double(driftNs) / 1e6, Double(maxLagNs) / 1e6)
        } else {
            s += speed == .max ? "; no schedule at max speed" : String(format: "; max lag %.3f ms", Double(maxLagNs) / 1e6)
        }
        s += "; \(skippedLines) line\(skippedLines == 1 ? "" : "s") skipped"
        if seeks > 0 { s += "; \(seeks) seek\(seeks == 1 ? "" : "s"): \(skippedTrades) trades skipped, \(repeatedTrades) repeated" }
        return s + "."
    }
}

/// A recording as a ``Feed``: its frames in order, paced on the recording's clock at
/// `options.speed` (or as fast as `deliver` takes them at `.max`), filtered by `--from/--to`,
/// `--from-line` and symbols, looped on one continuous schedule when asked.
///
/// Several files make one session: their frames in receive-time order, a tie going to the file
/// named first, and within a file to the earlier line. Errors name the file and line (see
/// ``ReplayOptions/skipBad``); frames that do not decode are delivered as
/// ``FeedEvent/malformedFrame(_:frame:)`` when skipped. After a run ``summary`` tells what was read
/// and released.
public final class RecordingFeed: Feed {
    public let paths: [String]
    public let options: ReplayOptions
    let onProgress: (@Sendable (ReplayProgress) -> Void)?
    let beforeRelease: (@Sendable (_ lastLine: Int, _ trades: Int) -> Void)?
    /// Pause, speed and seek requests while it runs (keys, the HTTP endpoint); nil: none.
    public let control: ReplayControl?
    private let finalSummary: Mutex<ReplaySummary?> = Mutex(nil)
    private let seekIndex = IndexSlot()

    final class IndexSlot: Sendable {
        let value = Mutex<RecordingIndex?>(nil)
    }

    /// - Parameters:
    ///   - onProgress: called every `options.progressIntervalNs` while frames are released.
    ///   - beforeRelease: called before each frame's trades are delivered, once they are due, with the
    ///     line and the trade count delivered so far (what a caller checks against its acknowledgements
    ///     to know the last line that is safely delivered).
    ///   - control: steering while it runs; seeking needs a single recording.
    public init(paths: [String], options: ReplayOptions = ReplayOptions(), onProgress: (@Sendable (ReplayProgress) -> Void)? = nil,
                beforeRelease: (@Sendable (_ lastLine: Int, _ trades: Int) -> Void)? = nil, control: ReplayControl? = nil) {
        self.paths = paths
        self.options = options
        self.onProgress = onProgress
        self.beforeRelease = beforeRelease
        self.control = control
    }

    public convenience init(path: String, options: ReplayOptions = ReplayOptions(), onProgress: (@Sendable (ReplayProgress) -> Void)? = nil,
                            beforeRelease: (@Sendable (_ lastLine: Int, _ trades: Int) -> Void)? = nil, control: ReplayControl? = nil) {
        self.init(paths: [path], options: options, onProgress: onProgress, beforeRelease: beforeRelease, control: control)
    }

    /// The seek index of a single recording: the `FILE.idx` sidecar when it matches, else (for a paced
    /// replay) built once in the background and written next to the file when the folder is writable.
    /// Seeks without it read the recording again from the start.
    func prepareIndex(build: Bool) {
        guard paths.count == 1 else { return }
        let path = paths[0]
        if let loaded = RecordingIndex.load(for: path) { seekIndex.value.withLock { $0 = loaded }; return }
        guard build else { return }
        let slot = seekIndex
        Task.detached(priority: .utility) {
            guard let built = try? RecordingIndex.build(path: path) else { return }
            slot.value.withLock { $0 = built }
            try? built.write(for: path)
        }
    }

    var index: RecordingIndex? { seekIndex.value.withLock { $0 } }

    /// The file names joined by `+`, as used in the Kafka `source` header (`replay:<name>`).
    public var fileName: String {
        paths.map { $0.split(separator: "/").last.map(String.init) ?? $0 }.joined(separator: "+")
    }

    public var source: String { "replay:" + fileName }

    /// What the last run read and released; nil before a run ends.
    public var summary: ReplaySummary? { finalSummary.withLock { $0 } }

    /// Opens every recording and reads its header: a one-line error for a missing or unreadable file,
    /// or for `--from-line` with more than one file.
    @discardableResult
    public func check() throws(ReplayFailure) -> [RecordingHeader] {
        if options.fromLine != nil, paths.count > 1 { throw ReplayFailure("--from-line needs a single recording (line numbers are per file)") }
        var headers: [RecordingHeader] = []
        for path in paths {
            do { headers.append(try RecordingReader(path: path, skipBad: options.skipBad).header) } catch {
                throw Self.failure(error, path: path)
            }
        }
        return headers
    }

    static func failure(_ e: RecordingError, path: String) -> ReplayFailure {
        if e.kind == .io, !FileManager.default.fileExists(atPath: path) { return ReplayFailure("\(path): no such file") }
        return ReplayFailure(e.kind == .io ? "\(path): \(e.message)" : e.description, line: e.line)
    }

    public func run(frames: Bool, deliver: (FeedEvent) throws -> Void) async throws {
        _ = try await replay(frames: frames, clock: MonotonicClock(), deliver: deliver)
    }

    /// Runs and hands only the trades to `body`; returns the summary.
    @discardableResult
    public func replay(trades body: ([Trade]) throws -> Void) async throws -> ReplaySummary {
        try await replay(frames: false, clock: MonotonicClock()) { event in
            if case .trades(let trades) = event { try body(trades) }
        }
    }

    /// Runs on `clock`. Cancellation stops it at the next frame (or during a wait) and returns the summary
    /// with `interrupted` set. Bad input throws ``ReplayFailure`` naming file and line; an error thrown
    /// by `deliver` is rethrown.
    @discardableResult
    public func replay<C: PacerClock>(frames wantFrames: Bool = false, clock: C, deliver: (FeedEvent) throws -> Void) async throws -> ReplaySummary {
        try check()
        var summary = ReplaySummary(file: fileName, speed: options.speed)
        var pacer = Pacer(speed: options.speed, clock: clock)
        let lastInFile: Int64? = {
            var last: Int64 = .min
            for path in paths { guard let l = Self.lastRecvNs(path: path) else { return nil }; last = max(last, l) }
            return last == .min ? nil : last
        }()
        var recvOffset: Int64 = 0  // added to recv_ns on later passes so loops stay on one schedule
        var lastNs: Int64?
        var startWall: UInt64?, endWall: UInt64 = 0
        var nextProgress: UInt64 = 0
        var tick = 0
        var maxSpeed = options.speed == .max
        var pass = 0
        let onProgress = onProgress, beforeRelease = beforeRelease, control = control
        let steering = control.map { ReplaySteering(control: $0, paths: paths, options: options, lastInFile: lastInFile, index: { [self] in index }) }
        if let control {
            prepareIndex(build: options.speed != .max)
            control.report { [index] in $0.lastNs = index?.lastRecvNs ?? lastInFile }
        }
        /// Where a pass ends in recording time, when known, and how far `rawNs` is from `first` towards it.
        let passEnd = [lastInFile, options.toNs].compactMap { $0 }.min()
        func fraction(_ rawNs: Int64, _ first: Int64) -> Double? {
            guard let passEnd, passEnd > first else { return nil }
            return min(1, max(0, Double(rawNs - first) / Double(passEnd - first)))
        }
        func progress(_ rawNs: Int64, _ passFirst: Int64, _ merger: FrameMerger) {
            guard let onProgress, let start = startWall else { return }
            let now = clock.now()
            guard now >= nextProgress else { return }
            nextProgress = now + options.progressIntervalNs
            var done = fraction(rawNs, passFirst), eta: Double?
            if let passEnd, done != nil {
                if case .factor(let s) = pacer.speed { eta = max(0, Double(passEnd - rawNs) / s / 1e9) }
            } else {
                done = merger.inputFraction
            }
            let elapsed = now - start
            if eta == nil, let f = done, f > 0 { eta = Double(elapsed) / 1e9 * (1 - f) / f }
            onProgress(ReplayProgress(fraction: done, trades: summary.trades, frames: summary.frames, elapsedNs: elapsed,
                                      lagNs: pacer.lag, etaSeconds: eta, pass: pass, line: summary.lastLine))
        }
        passes: while true {
            pass += 1
            var merger: FrameMerger
            do { merger = try FrameMerger(paths: paths, skipBad: options.skipBad, startLine: options.fromLine ?? 0) } catch {
                throw Self.failure(error.error, path: error.path)
            }
            steering?.startPass()
            // Steering bookkeeping kept in locals, so the loop reads no class property per frame.
            var run: Int?, landed: RecordingReader.RawFrame?, lastReleasedNs: Int64?
            var seen = steering?.seenChanges ?? 0, mayRepeat = false, first = true
            var passFirst: Int64?, passLast: Int64 = 0, passFrames = 0

            do {
                frames: while true {
                    var raw: RecordingReader.RawFrame
                    if let l = landed { raw = l; landed = nil } else {
                        let next: RecordingReader.RawFrame?
                        do { next = try merger.next() } catch { throw Self.failure(error.error, path: error.path) }
                        guard let next else { break }
                        raw = next
                    }
                    if let fromLine = options.fromLine, raw.line < fromLine { continue }
                    if let from = options.fromNs, raw.recvNs < from { continue }
                    if let to = options.toNs, raw.recvNs > to { break }
                    if let steering, let control {
                        if first { first = false; if steering.firstNs == nil { steering.noteFirst(raw.recvNs) } }
                        if control.changeCount != seen {
                            // While paused the progress line keeps coming, from values that do not change meanwhile.
                            let (trades, frames, line, started, first) = (summary.trades, summary.frames, summary.lastLine, startWall, passFirst ?? raw.recvNs)
                            let interval = options.progressIntervalNs
                            var next: UInt64 = 0
                            let outcome = try await steering.steer(at: raw, run: &run, lastLine: summary.lastLine, lastNs: lastReleasedNs,
                                                                   merger: &merger, pacer: &pacer, clock: clock, summary: &summary,
                                                                   recvOffset: recvOffset) { at in
                                guard let onProgress, let started else { return }
                                let now = clock.now()
                                guard now >= next else { return }
                                next = now + interval
                                onProgress(ReplayProgress(fraction: fraction(at, first), trades: trades, frames: frames, elapsedNs: now - started,
                                                          lagNs: 0, etaSeconds: nil, pass: pass, line: line))
                            }
                            maxSpeed = summary.speed == .max
                            seen = steering.seenChanges
                            mayRepeat = steering.anyReleased
                            if let moved = outcome {
                                guard let moved else { break frames }
                                landed = moved
                                continue frames
                            }
                        }
                    }
                    let decoded: FinnhubFrame
                    if let trades = raw.trades {
                        decoded = .trades(trades)
                    } else {
                        do { decoded = try FinnhubCodec.decode(UnsafeRawBufferPointer(raw.bytes)) } catch {
                            do { try merger.reportBadFrame(line: raw.line, "frame does not decode: \(error)") } catch {
                                throw Self.failure(error.error, path: error.path)
                            }
                            try deliver(.malformedFrame(error, frame: raw.text))
                            continue
                        }
                    }
                    let recv = raw.recvNs + recvOffset
                    if passFirst == nil { passFirst = raw.recvNs }
                    passLast = raw.recvNs; passFrames += 1
                    lastNs = recv
                    summary.framesRead += 1
                    if maxSpeed {
                        if startWall == nil { startWall = clock.now() }
                        tick &+= 1
                        if tick & 255 == 0 { try Task.checkCancellation() }
                    } else {
                        try await pacer.wait(recvNs: recv)
                        if startWall == nil { startWall = pacer.originWallNs }
                    }
                    if wantFrames { try deliver(.frame(FeedFrame(receivedNs: recv, text: raw.text))) }
                    switch decoded {
                    case .trades(var trades):
                        if let wanted = options.symbols {
                            if !trades.allSatisfy({ wanted.contains($0.symbol) }) { trades.removeAll { !wanted.contains($0.symbol) } }
                            if trades.isEmpty { continue }
                        }
                        beforeRelease?(summary.lastLine, summary.trades)
                        try deliver(.trades(trades))
                        summary.trades += trades.count
                        summary.frames += 1
                        summary.lastLine = raw.line
                        if let steering {
                            if mayRepeat, steering.wasReleased(raw.line) { summary.repeatedTrades += trades.count }
                            if run == nil { run = raw.line }
                            lastReleasedNs = raw.recvNs
                            if !maxSpeed || tick & 1023 == 0 { steering.report(recvNs: raw.recvNs, summary: summary, lagNs: pacer.lag) }
                        }
                        if onProgress != nil, !maxSpeed || tick & 31 == 0 { progress(raw.recvNs, passFirst!, merger) }
                    case .error(let message): try deliver(.serverError(message: message))
                    case .ping, .unknown: continue
                    }
                }
            } catch is CancellationError {
                summary.interrupted = true
            }
            try steering?.finishPass(&summary, run: &run, lastLine: summary.lastLine)
            endWall = clock.now()
            summary.skippedLines += merger.skippedLines
            for p in merger.problems where summary.problems.count < 100 { summary.problems.append(p.description) }
            summary.passes = pass
            if summary.interrupted || !options.loop || passFirst == nil { break passes }
            if let m = options.maxPasses, pass >= m { break passes }
            let span = passLast - passFirst!
            recvOffset += span + (passFrames > 1 ? span / Int64(passFrames - 1) : 1_000_000)
        }
        if let start = startWall {
            summary.wallNs = endWall >= start ? endWall - start : 0
            if !maxSpeed, !summary.interrupted, let last = lastNs, let due = pacer.dueTime(recvNs: last) {
                // After a pause, a speed change or a seek the schedule restarted: drift counts from the last anchor.
                summary.scheduledNs = steering?.steered == true ? nil : due - start
                summary.driftNs = Int64(endWall) - Int64(due)
            }
            summary.maxLagNs = pacer.maxLag
        }
        let final = summary
        control?.report { st in
            st.finished = true; st.tradesSent = final.trades; st.framesSent = final.frames
            st.seeks = final.seeks; st.skippedTrades = final.skippedTrades; st.repeatedTrades = final.repeatedTrades
        }
        finalSummary.withLock { $0 = summary }
        return summary
    }

    /// recv_ns of the last frame of a plain recording, read from its tail; nil for gzip or when unreadable.
    public static func lastRecvNs(path: String) -> Int64? { RecordingReader.lastRecvNs(path: path) }
}

/// Parses `--from`/`--to` values: Unix milliseconds (digits only) or ISO-8601 (`2024-08-08T23:55:00Z`,
/// fractional seconds and offsets allowed; no zone means UTC). Returns ns since the epoch.
public enum ReplayTime {
    /// `ns` as ISO-8601 UTC with milliseconds (`2024-08-08T23:55:00.123Z`).
    public static func iso(_ ns: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ns / 1_000_000) / 1000))
    }

    public static func parse(_ text: String) throws(ReplayFailure) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        if !t.isEmpty, t.allSatisfy(\.isASCII), t.allSatisfy(\.isNumber), let ms = Int64(t), ms < Int64.max / 1_000_000 {
            return ms * 1_000_000
        }
        var candidate = t
        if candidate.count == 10 { candidate += "T00:00:00Z" }
        let hasZone = candidate.hasSuffix("Z") || candidate.range(of: #"[+-]\d\d:?\d\d$"#, options: .regularExpression) != nil
        if !hasZone { candidate += "Z" }
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            let f = ISO8601DateFormatter()
            f.formatOptions = options
            if let d = f.date(from: candidate) { return Int64((d.timeIntervalSince1970 * 1e6).rounded()) * 1000 }
        }
        throw ReplayFailure("invalid time \"\(text)\": use ISO-8601 (2024-08-08T23:55:00Z) or Unix milliseconds")
    }
}


/// The frames of one or more recordings in receive-time order (ties: the earlier file, then the
/// earlier line). Each frame's bytes stay valid until the next call; a tape's trade frames come
/// decoded (``RecordingReader/RawFrame/trades``).
final class FrameMerger {
    struct Failure: Error { var error: RecordingError; var path: String }
    let readers: [RecordingReader]
    private var heads: [RecordingReader.RawFrame?]
    private var started = false
    private var lastIndex = 0

    init(paths: [String], skipBad: Bool, startLine: Int) throws(Failure) {
        var readers: [RecordingReader] = []
        for path in paths {
            do {
                let r = try RecordingReader(path: path, skipBad: skipBad, validateFrames: false)
                r.startLine = startLine
                r.tapeTradesDecoded = true
                readers.append(r)
            } catch { throw Failure(error: error, path: path) }
        }
        self.readers = readers
        heads = Array(repeating: nil, count: readers.count)
    }

    func next() throws(Failure) -> RecordingReader.RawFrame? {
        if readers.count == 1 {
            do { return try readers[0].nextRaw(checkUTF8: false) } catch { throw Failure(error: error, path: readers[0].path) }
        }
        if !started {
            started = true
            for i in readers.indices { heads[i] = try read(i) }
        } else {
            heads[lastIndex] = try read(lastIndex)
        }
        var best = -1
        for i in heads.indices {
            guard let h = heads[i] else { continue }
            if best < 0 || h.recvNs < heads[best]!.recvNs { best = i }
        }
        guard best >= 0 else { return nil }
        lastIndex = best
        return heads[best]
    }

    private func read(_ i: Int) throws(Failure) -> RecordingReader.RawFrame? {
        do { return try readers[i].nextRaw(checkUTF8: false) } catch { throw Failure(error: error, path: readers[i].path) }
    }

    /// Reports a frame of the file the last frame came from.
    func reportBadFrame(line: Int, _ message: String) throws(Failure) {
        let r = readers[readers.count == 1 ? 0 : lastIndex]
        do { try r.reportBadFrame(line: line, message) } catch { throw Failure(error: error, path: r.path) }
    }

    var skippedLines: Int { readers.reduce(0) { $0 + $1.skippedLines } }
    var problems: [RecordingError] { readers.flatMap(\.problems) }
    var inputFraction: Double? { readers.count == 1 ? readers[0].inputFraction : nil }
}

/// A seek that cannot be done (a merged session); the replay goes on where it was.
struct SeekRefused: Error {}

/// Sorted, disjoint ranges of recording lines.
struct LineRanges {
    private(set) var ranges: [Range<Int>] = []
    var isEmpty: Bool { ranges.isEmpty }

    mutating func insert(_ r: Range<Int>) {
        guard !r.isEmpty else { return }
        var merged = r
        var out: [Range<Int>] = []
        for x in ranges {
            if x.upperBound < merged.lowerBound || x.lowerBound > merged.upperBound { out.append(x) } else {
                merged = min(x.lowerBound, merged.lowerBound)..<max(x.upperBound, merged.upperBound)
            }
        }
        out.append(merged)
        ranges = out.sorted { $0.lowerBound < $1.lowerBound }
    }

    func contains(_ line: Int) -> Bool {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound <= line { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count && ranges[lo].contains(line)
    }

    /// The parts of these ranges not in `other`.
    func subtracting(_ other: LineRanges) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges {
            var lo = r.lowerBound
            for o in other.ranges where o.upperBound > lo && o.lowerBound < r.upperBound {
                if o.lowerBound > lo { out.append(lo..<o.lowerBound) }
                lo = max(lo, o.upperBound)
            }
            if lo < r.upperBound { out.append(lo..<r.upperBound) }
        }
        return out
    }

    func overlaps(_ r: Range<Int>) -> [Range<Int>] {
        ranges.compactMap { x in
            let lo = max(x.lowerBound, r.lowerBound), hi = min(x.upperBound, r.upperBound)
            return lo < hi ? lo..<hi : nil
        }
    }
}
