import Feed
import Foundation
import HummingbirdWSClient
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

/// What `FrameRecorder` records.
public struct RecordOptions: Sendable {
    /// `ws://` or `wss://` Finnhub-protocol endpoint (live Finnhub or `sim-exchange`).
    public var url: String
    /// Appended as `token=` when set.
    public var token: String?
    public var symbols: [String]
    public var output: String
    public var rotation: RecordingWriter.Rotation = .none
    /// Stop after this long (nil: until cancelled).
    public var duration: Duration?
    /// Buffered frames reach the file at least this often.
    public var flushInterval: Duration = .seconds(1)
    /// Reconnect after a dropped connection (with a short back-off) until the duration ends.
    public var reconnect = true
    public var overwrite = false
    public var createdBy = "replay-record 1"

    public init(url: String, symbols: [String], output: String) {
        self.url = url; self.symbols = symbols; self.output = output
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

/// Captures the raw text frames of a Finnhub-protocol WebSocket into a recording, byte for byte, each with its
/// receive time. It speaks the protocol itself (subscribe to every symbol on each connection) instead of going
/// through `Feed`, because `Feed` delivers decoded events and the recording must keep frames losslessly.
/// Cancellation (Ctrl-C) ends it cleanly: the file is flushed and closed, valid up to the last frame.
public final class FrameRecorder: Sendable {
    public let options: RecordOptions
    let logger: Logger
    private let state: Mutex<State>

    struct State {
        var writer: RecordingWriter?
        var summary = RecordSummary()
        var lastFlush: Int64 = 0
        var error: RecordingError?
    }

    public init(options: RecordOptions, logger: Logger = Logger(label: "replay.record")) throws(RecordingError) {
        self.options = options
        self.logger = logger
        let url = WebSocketFeed.normalize(url: options.url, token: options.token)
        let header = RecordingHeader(source: WebSocketFeed.redact(url), symbols: options.symbols, startNs: realtimeNs(),
                                     createdBy: options.createdBy)
        let writer = try RecordingWriter(path: options.output, header: header, rotation: options.rotation, overwrite: options.overwrite)
        state = Mutex(State(writer: writer, lastFlush: realtimeNs()))
    }

    /// Frames recorded so far.
    public var summary: RecordSummary { state.withLock { $0.summary } }

    /// Records until the duration passes or the task is cancelled; closes the file and returns what was captured.
    /// Throws when the file cannot be written, or when the first connection fails (later drops are reconnected).
    public func run() async throws -> RecordSummary {
        let started = ContinuousClock.now
        let url = WebSocketFeed.normalize(url: options.url, token: options.token)
        let deadline = options.duration.map { started + $0 }
        defer { closeWriter() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                var attempt = 0
                while !Task.isCancelled {
                    do {
                        try await connectOnce(url: url)
                        attempt = 0
                    } catch is CancellationError {
                        return
                    } catch let failure as ReplayFailure {
                        throw failure
                    } catch {
                        if Task.isCancelled { return }
                        if let e = state.withLock({ $0.error }) { throw e }
                        if summary.connections == 0 && attempt == 0 && !options.reconnect {
                            throw ReplayFailure("cannot connect to \(WebSocketFeed.redact(url)): \(error)")
                        }
                        attempt += 1
                        logger.warning("connection to \(WebSocketFeed.redact(url)) failed: \(WebSocketFeed.redact(String(describing: error)))")
                    }
                    if let e = state.withLock({ $0.error }) { throw e }
                    guard options.reconnect, !Task.isCancelled else { return }
                    try await Task.sleep(for: .milliseconds(min(5000, 250 << min(attempt, 5))))
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

    /// Records one frame (also used by tests and importers of other captures).
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

    private func connectOnce(url: String) async throws {
        var config = WebSocketClientConfiguration(maxFrameSize: 1 << 24, closeTimeout: .seconds(2))
        let host = URLComponents(string: url)?.host ?? ""
        if host.contains(":") || (!host.isEmpty && host.allSatisfy({ $0.isNumber || $0 == "." })) { config.sniHostname = "localhost" }
        let symbols = options.symbols
        let client = WebSocketClient(url: url, configuration: config, logger: logger) { [self] inbound, outbound, _ in
            state.withLock { $0.summary.connections += 1 }
            logger.info("connected to \(WebSocketFeed.redact(url)), subscribing to \(symbols.count) symbols")
            for s in symbols { try await outbound.write(.text(FinnhubCodec.encodeClientMessage(.subscribe(s)))) }
            for try await message in inbound.messages(maxSize: 1 << 24) {
                let now = realtimeNs()
                guard case .text(let text) = message else { continue }
                try record(text, recvNs: now)
            }
        }
        do {
            try await client.run()
        } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
            let status = try? await UpgradeProbe.status(url: url, tls: nil, sniHostname: config.sniHostname, timeout: .seconds(10))
            if status == 401 {
                throw ReplayFailure("\(WebSocketFeed.redact(url)) rejected the API key (HTTP 401): check FINNHUB_API_KEY or --token")
            }
            throw error
        }
    }
}
