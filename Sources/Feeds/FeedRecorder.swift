import MarketData
import Recording
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in ns since the Unix epoch (CLOCK_REALTIME), as recordings store it.
public func realtimeNs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// What ``FeedRecorder`` writes, and for how long.
public struct RecordOptions: Sendable {
    public var output: String
    /// Symbols named in the recording's header.
    public var symbols: [String]
    public var rotation: RecordingWriter.Rotation = .none
    /// Stop after this long (nil: until cancelled or the feed ends).
    public var duration: Duration?
    /// Buffered frames reach the file at least this often.
    public var flushInterval: Duration = .seconds(1)
    public var overwrite = false
    public var createdBy = "replay-record 1"

    public init(output: String, symbols: [String]) {
        self.output = output; self.symbols = symbols
    }
}

/// What a recording session captured.
public struct RecordSummary: Sendable, CustomStringConvertible {
    public var frames = 0
    public var tradeFrames = 0
    public var trades = 0
    public var pings = 0
    public var otherFrames = 0
    public var connections = 0
    public var files: [String] = []
    public var wallNs: UInt64 = 0
    public var description: String {
        "Recorded \(frames) frames (\(trades) trades in \(tradeFrames) trade frames, \(pings) pings, \(otherFrames) other) over "
            + "\(connections) connection\(connections == 1 ? "" : "s") in \(String(format: "%.1f", Double(wallNs) / 1e9)) s to "
            + files.joined(separator: ", ") + "."
    }
}

/// Records any ``Feed``'s raw frames into a recording, byte for byte, each with the receive time
/// the feed gives it (the wall clock for a socket, the recorded time for a replay, so recording a
/// replay reproduces its frames).
///
/// Frames reach the file at least every `flushInterval`. The run ends at `duration`, when the feed
/// ends, or at cancellation (Ctrl-C); the file is then flushed and closed, valid up to the last
/// frame. A write error or a fatal feed error (a rejected API key) ends the run and is thrown.
public final class FeedRecorder: Sendable {
    public let feed: any Feed
    public let options: RecordOptions
    let logger: Logger
    private let state: Mutex<State>

    struct State {
        var writer: RecordingWriter?
        var summary = RecordSummary()
        var error: RecordingError?
    }

    public init(feed: any Feed, options: RecordOptions, logger: Logger = Logger(label: "replay.record")) throws(RecordingError) {
        self.feed = feed
        self.options = options
        self.logger = logger
        let header = RecordingHeader(source: WebSocketFeed.redact(feed.source), symbols: options.symbols, startNs: realtimeNs(),
                                     createdBy: options.createdBy)
        let writer = try RecordingWriter(path: options.output, header: header, rotation: options.rotation, overwrite: options.overwrite)
        state = Mutex(State(writer: writer))
    }

    /// Frames recorded so far.
    public var summary: RecordSummary { state.withLock { $0.summary } }

    /// Records until the duration passes, the feed ends, or the task is cancelled; closes the file and
    /// returns what was captured.
    public func run() async throws -> RecordSummary {
        let started = ContinuousClock.now
        let deadline = options.duration.map { started + $0 }
        defer { closeWriter() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                do {
                    try await feed.run(frames: true) { event throws(RecordingError) in
                        switch event {
                        case .frame(let frame): try record(frame.text, recvNs: frame.receivedNs)
                        case .connected(let url):
                            state.withLock { $0.summary.connections += 1 }
                            logger.info("connected to \(url)")
                        case .disconnected(let reason): logger.warning("disconnected: \(reason)")
                        case .error(let error): logger.warning("\(error)")
                        default: break
                        }
                    }
                } catch FeedError.unauthorized {
                    throw ReplayFailure("\(WebSocketFeed.redact(feed.source)) rejected the API key (HTTP 401): check FINNHUB_API_KEY or --token")
                } catch let error as FeedError {
                    throw ReplayFailure("cannot record \(WebSocketFeed.redact(feed.source)): \(error)")
                }
            }
            group.addTask { [self] in
                // Periodic flush, so frames reach the file even when the stream goes quiet; ends the run at the deadline.
                while true {
                    if let deadline, ContinuousClock.now >= deadline { return }
                    let nap = deadline.map { min(options.flushInterval, $0 - ContinuousClock.now) } ?? options.flushInterval
                    try await Task.sleep(for: max(nap, .milliseconds(1)))
                    try state.withLock { s throws(RecordingError) in try s.writer?.flush() }
                }
            }
            do {
                _ = try await group.next()
            } catch is CancellationError {}
            group.cancelAll()
            while let r = await group.nextResult() {
                if case .failure(let e) = r, !(e is CancellationError) { throw e }
            }
        }
        let elapsed = ContinuousClock.now - started
        state.withLock { $0.summary.wallNs = UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000) }
        closeWriter()
        if let e = state.withLock({ $0.error }) { throw e }
        return summary
    }

    private func closeWriter() {
        state.withLock { s in
            guard let w = s.writer else { return }
            do throws(RecordingError) { try w.close() } catch { if s.error == nil { s.error = error } }
            s.summary.files = w.files
            s.writer = nil
        }
    }

    /// Records one frame.
    func record(_ text: String, recvNs: Int64) throws(RecordingError) {
        try state.withLock { (s) throws(RecordingError) in
            guard let w = s.writer else { return }
            do throws(RecordingError) {
                try w.append(recvNs: max(recvNs, w.lastRecvNs), frame: text)
            } catch {
                if error.kind == .invalidFrame {
                    logger.warning("not recorded (\(error.message))")
                    return
                }
                s.error = error
                throw error
            }
            s.summary.frames += 1
            s.summary.files = w.files
            switch try? FinnhubCodec.decode(text) {
            case .trades(let t): s.summary.tradeFrames += 1; s.summary.trades += t.count
            case .ping: s.summary.pings += 1
            default: s.summary.otherFrames += 1
            }
        }
    }
}
