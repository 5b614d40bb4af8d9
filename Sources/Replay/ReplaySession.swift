import Feed
import Foundation
import Pipeline
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
        s += "; \(skippedLines) line\(skippedLines == 1 ? "" : "s") skipped."
        return s
    }
}

/// Replays one recording: decodes its frames, filters them, paces them on the recording's clock, and hands each
/// frame's trades to `publish`. Errors name the file and line; see ``ReplayOptions``.
public struct ReplaySession: Sendable {
    public let path: String
    public let options: ReplayOptions

    public init(path: String, options: ReplayOptions) { self.path = path; self.options = options }

    /// The file name, as used in the Kafka `source` header (`replay:<name>`).
    public var fileName: String { path.split(separator: "/").last.map(String.init) ?? path }

    /// Opens the recording and reads its header: a one-line error for a missing or unreadable file.
    public func check() throws(ReplayFailure) -> RecordingHeader {
        do { return try RecordingReader(path: path, skipBad: options.skipBad).header } catch {
            throw Self.failure(error, path: path)
        }
    }

    static func failure(_ e: RecordingError, path: String) -> ReplayFailure {
        if e.kind == .io, !FileManager.default.fileExists(atPath: path) { return ReplayFailure("\(path): no such file") }
        return ReplayFailure(e.kind == .io ? "\(path): \(e.message)" : e.description, line: e.line)
    }

    /// Runs the replay with `MonotonicClock`. Cancellation stops it at the next frame (or during a wait) and
    /// returns the summary with `interrupted` set. Bad input throws ``ReplayFailure`` naming file and line;
    /// an error thrown by `publish` is rethrown. `beforeRelease` runs before each frame's trades are
    /// published, once it is due, with the line and trade count published so far (what a caller checks
    /// against its acknowledgements to know the last line that is safely delivered).
    public func run(onProgress: (@Sendable (ReplayProgress) -> Void)? = nil,
                    beforeRelease: ((_ lastLine: Int, _ trades: Int) -> Void)? = nil,
                    publish: ([Trade]) throws -> Void) async throws -> ReplaySummary {
        try await run(clock: MonotonicClock(), onProgress: onProgress, beforeRelease: beforeRelease, publish: publish)
    }

    public func run<C: PacerClock>(clock: C, onProgress: (@Sendable (ReplayProgress) -> Void)? = nil,
                                   beforeRelease: ((_ lastLine: Int, _ trades: Int) -> Void)? = nil,
                                   publish: ([Trade]) throws -> Void) async throws -> ReplaySummary {
        var summary = ReplaySummary(file: fileName, speed: options.speed)
        var pacer = Pacer(speed: options.speed, clock: clock)
        let lastInFile = Self.lastRecvNs(path: path)
        var recvOffset: Int64 = 0  // added to recv_ns on later passes so loops stay on one schedule
        var lastNs: Int64?
        var startWall: UInt64?, endWall: UInt64 = 0
        var nextProgress: UInt64 = 0
        var tick = 0
        let maxSpeed = options.speed == .max
        var pass = 0
        func progress(_ rawNs: Int64, _ passFirst: Int64, _ reader: RecordingReader) {
            guard let onProgress, let start = startWall else { return }
            let now = clock.now()
            guard now >= nextProgress else { return }
            nextProgress = now + options.progressIntervalNs
            var fraction: Double?, eta: Double?
            let end = [lastInFile, options.toNs].compactMap { $0 }.min()
            if let end, end > passFirst {
                fraction = min(1, max(0, Double(rawNs - passFirst) / Double(end - passFirst)))
                if case .factor(let s) = options.speed { eta = max(0, Double(end - rawNs) / s / 1e9) }
            } else {
                fraction = reader.inputFraction
            }
            let elapsed = now - start
            if eta == nil, let f = fraction, f > 0 { eta = Double(elapsed) / 1e9 * (1 - f) / f }
            onProgress(ReplayProgress(fraction: fraction, trades: summary.trades, frames: summary.frames, elapsedNs: elapsed,
                                      lagNs: pacer.lag, etaSeconds: eta, pass: pass, line: summary.lastLine))
        }

        passes: while true {
            pass += 1
            let reader: RecordingReader
            do { reader = try RecordingReader(path: path, skipBad: options.skipBad, validateFrames: false) } catch {
                throw Self.failure(error, path: path)
            }
            reader.startLine = options.fromLine ?? 0
            var passFirst: Int64?, passLast: Int64 = 0, passFrames = 0
            do {
                while true {
                    let raw: RecordingReader.RawFrame?
                    do { raw = try reader.nextRaw(checkUTF8: false) } catch { throw Self.failure(error, path: path) }
                    guard let raw else { break }
                    if let fromLine = options.fromLine, raw.line < fromLine { continue }
                    if let from = options.fromNs, raw.recvNs < from { continue }
                    if let to = options.toNs, raw.recvNs > to { break }
                    let decoded: FinnhubFrame
                    do { decoded = try FinnhubCodec.decode(UnsafeRawBufferPointer(raw.bytes)) } catch {
                        do { try reader.reportBadFrame(line: raw.line, "frame does not decode: \(error)") } catch {
                            throw Self.failure(error, path: path)
                        }
                        continue
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
                    guard case .trades(var trades) = decoded else { continue }
                    if let wanted = options.symbols {
                        if !trades.allSatisfy({ wanted.contains($0.symbol) }) { trades.removeAll { !wanted.contains($0.symbol) } }
                        if trades.isEmpty { continue }
                    }
                    beforeRelease?(summary.lastLine, summary.trades)
                    try publish(trades)
                    summary.trades += trades.count
                    summary.frames += 1
                    summary.lastLine = raw.line
                    if onProgress != nil, !maxSpeed || tick & 31 == 0 { progress(raw.recvNs, passFirst!, reader) }
                }
            } catch is CancellationError {
                summary.interrupted = true
            }
            endWall = clock.now()
            summary.skippedLines += reader.skippedLines
            for p in reader.problems where summary.problems.count < 100 { summary.problems.append(p.description) }
            summary.passes = pass
            if summary.interrupted || !options.loop || passFirst == nil { break passes }
            if let m = options.maxPasses, pass >= m { break passes }
            let span = passLast - passFirst!
            recvOffset += span + (passFrames > 1 ? span / Int64(passFrames - 1) : 1_000_000)
        }
        if let start = startWall {
            summary.wallNs = endWall >= start ? endWall - start : 0
            if !maxSpeed, !summary.interrupted, let last = lastNs, let due = pacer.dueTime(recvNs: last) {
                summary.scheduledNs = due - start
                summary.driftNs = Int64(endWall) - Int64(due)
            }
            summary.maxLagNs = pacer.maxLag
        }
        return summary
    }

    /// recv_ns of the last frame of a plain recording, read from its tail; nil for gzip or when unreadable.
    public static func lastRecvNs(path: String) -> Int64? {
        guard let f = try? FileInput(path: path) else { return nil }
        if f.peek(2) == [0x1f, 0x8b] { return nil }
        let size = f.size()
        let len = min(size, 1 << 16)
        guard len > 0 else { return nil }
        var tail = [UInt8](repeating: 0, count: len)
        let r = tail.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, len, off_t(size - len)) }
        guard r == len else { return nil }
        var end = len
        while end > 0 {
            while end > 0, tail[end - 1] == 0x0A || tail[end - 1] == 0x0D { end -= 1 }
            var start = end
            while start > 0, tail[start - 1] != 0x0A { start -= 1 }
            if start == 0 && len < size { return nil }
            let ns: Int64? = tail.withUnsafeBufferPointer { b in
                guard case .success(let (ns, _, _)) = RecordingReader.parseLine(b.baseAddress! + start, end - start, validate: false)
                else { return nil }
                return ns
            }
            if let ns { return ns }
            end = start
        }
        return nil
    }
}

/// Parses `--from`/`--to` values: Unix milliseconds (digits only) or ISO-8601 (`2024-08-08T23:55:00Z`,
/// fractional seconds and offsets allowed; no zone means UTC). Returns ns since the epoch.
public enum ReplayTime {
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

/// Writes trades as JSON lines (the Kafka message value, ``TradeMessage``) to a file descriptor, in order.
///
/// `write` only collects trades; a background thread encodes and writes them in chunks, so decoding
/// (the caller) and encoding run on two cores. At most `maxPendingChunks` chunks wait; `write` blocks
/// beyond that. `flush()` returns once everything written so far has reached the descriptor.
public final class TradeLineWriter {
    private let worker: Worker
    private let chunkSize: Int
    private var chunk: [Trade] = []

    /// Writes to file descriptor `fd` (default: standard output) through its own `FILE` stream.
    public init(fd: Int32 = 1, chunkSize: Int = 4096, maxPendingChunks: Int = 4) {
        worker = Worker(stream: fdopen(fd, "w")!, maxPendingChunks: maxPendingChunks)
        self.chunkSize = chunkSize
        chunk.reserveCapacity(chunkSize)
        let worker = worker
        let thread = Thread { worker.drainLoop() }
        thread.name = "trade-line-writer"
        thread.start()
    }

    public func write(_ trades: [Trade]) {
        chunk.append(contentsOf: trades)
        if chunk.count >= chunkSize { handOff() }
    }

    public func flush() {
        if !chunk.isEmpty { handOff() }
        worker.put([])
        worker.drained.wait()
    }

    private func handOff() {
        worker.put(chunk)
        chunk = []
        chunk.reserveCapacity(chunkSize)
    }

    deinit {
        flush()
        worker.put(nil)
        worker.finished.wait()
    }

    /// The encoding thread's side: chunks in order; `[]` means flush, `nil` means stop.
    private final class Worker: @unchecked Sendable {
        let stream: UnsafeMutablePointer<FILE>
        let queue: BlockingQueue<[Trade]?>
        let drained = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)

        init(stream: UnsafeMutablePointer<FILE>, maxPendingChunks: Int) {
            self.stream = stream
            queue = BlockingQueue(depth: maxPendingChunks)
        }

        func put(_ chunk: [Trade]?) { queue.put(chunk) }

        func drainLoop() {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            while true {
                guard let next = queue.take() else { break }
                if next.isEmpty {
                    fflush(stream)
                    drained.signal()
                    continue
                }
                for t in next {
                    TradeMessage.encode(t, into: &buffer)
                    buffer.append(0x0A)
                }
                buffer.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, stream) }
                buffer.removeAll(keepingCapacity: true)
            }
            finished.signal()
        }
    }
}
