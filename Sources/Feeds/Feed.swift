import MarketData

/// What a feed delivers, in order.
///
/// For every frame a source receives, ``frame(_:)`` comes first (only when the run asked for
/// frames), then what the frame carried: ``trades(_:)``, ``serverError(message:)`` or
/// ``malformedFrame(_:frame:)``; pings carry nothing but their frame.
public enum FeedEvent: Sendable {
    /// A connection was upgraded; `url` has any `token=` value redacted.
    case connected(url: String)
    /// One decoded trade frame, in the order received.
    case trades([Trade])
    /// A raw text frame as the source received it, with its receive time: what a recorder keeps.
    case frame(FeedFrame)
    /// A connection ended; the feed reconnects unless stopped or the error is fatal.
    case disconnected(reason: String)
    /// Time without a subscribed connection, reported once re-subscribed.
    case gap(Gap)
    /// A connection attempt failed, or a fatal error ended the feed.
    case error(FeedError)
    /// A Finnhub `{"type":"error","msg":…}` frame.
    case serverError(message: String)
    /// A frame that did not decode; the stream continues.
    case malformedFrame(FrameDecodingError, frame: String)
}

/// A text frame and when it was received (ns since the Unix epoch, on the source's clock: the wall
/// clock for a live socket, the recorded receive time for a recording).
public struct FeedFrame: Sendable, Hashable {
    public var receivedNs: Int64
    public var text: String
    public init(receivedNs: Int64, text: String) { self.receivedNs = receivedNs; self.text = text }
}

/// An outage: from losing a subscribed connection (`startMilliseconds`, Unix ms) to
/// re-subscribing on a new one (`endMilliseconds`).
public struct Gap: Sendable, Hashable {
    public var startMilliseconds: Int64
    public var endMilliseconds: Int64
    public var duration: Duration { .milliseconds(endMilliseconds - startMilliseconds) }
    public init(startMilliseconds: Int64, endMilliseconds: Int64) {
        self.startMilliseconds = startMilliseconds
        self.endMilliseconds = endMilliseconds
    }
}

/// Feed failures. Descriptions never contain the API token.
public enum FeedError: Error, Sendable, Hashable, CustomStringConvertible {
    /// HTTP 401 on upgrade: fatal, never retried.
    case unauthorized
    /// The upgrade was refused with another HTTP status (retried).
    case upgradeRejected(status: Int?)
    /// No upgrade within the connect timeout (retried).
    case connectTimeout
    /// Connecting or the connection failed (retried).
    case connectionFailed(String)
    /// `Backoff.maxAttempts` consecutive attempts failed: fatal.
    case retriesExhausted(attempts: Int)
    /// The URL could not be used.
    case invalidURL(String)

    public var description: String {
        switch self {
        case .unauthorized: "Finnhub rejected the API key (HTTP 401)"
        case .upgradeRejected(let status): "WebSocket upgrade refused" + (status.map { " (HTTP \($0))" } ?? "")
        case .connectTimeout: "Timed out connecting"
        case .connectionFailed(let reason): "Connection failed: \(reason)"
        case .retriesExhausted(let n): "Gave up after \(n) failed connection attempts"
        case .invalidURL(let url): "Invalid URL: \(url)"
        }
    }
}

/// Exponential backoff with jitter: attempt n (1-based) waits
/// `min(max, initial * multiplier^(n-1))`, scaled by a random factor in `1 ± jitter`.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var max: Duration
    public var multiplier: Double
    public var jitter: Double
    /// Consecutive failed attempts before giving up; `nil` retries forever.
    public var maxAttempts: Int?

    public init(initial: Duration = .milliseconds(500), max: Duration = .seconds(30), multiplier: Double = 2, jitter: Double = 0.2, maxAttempts: Int? = nil) {
        self.initial = initial
        self.max = max
        self.multiplier = multiplier
        self.jitter = jitter
        self.maxAttempts = maxAttempts
    }

    /// The delay before reconnect attempt `attempt` (1-based).
    public func delay(attempt: Int) -> Duration {
        let base = min(max.inSeconds, initial.inSeconds * pow(multiplier, Double(Swift.max(0, attempt - 1))))
        let factor = jitter > 0 ? Double.random(in: (1 - jitter)...(1 + jitter)) : 1
        return .nanoseconds(Int64(Swift.max(0, base * factor) * 1e9))
    }

    private func pow(_ x: Double, _ y: Double) -> Double { y == 0 ? 1 : (0..<Int(y)).reduce(1.0) { r, _ in Swift.min(r * x, 1e12) } }
}

/// A source of market data: everything downstream (the ingest service, the recorder, backtests,
/// bench) sees sources only through this protocol.
///
/// Contract:
/// - ``run(frames:deliver:)`` calls `deliver` on the caller's task, one event at a time, in the
///   order the source produced them; it never calls it after returning.
/// - It returns when the source ends (a recording's last frame), or when the calling task is
///   cancelled (which is how a service stops a live feed). A fatal source error (a rejected API
///   key, retries exhausted) is delivered as ``FeedEvent/error(_:)`` and then thrown; bad input a
///   source was told to stop on is thrown as that source's one-line error. An error thrown by
///   `deliver` ends the run and is rethrown.
/// - `deliver` runs synchronously: a slow consumer slows the source (a recording waits, a socket
///   stops reading), it never makes the feed drop events.
/// - With `frames: true` every received text frame is delivered as ``FeedEvent/frame(_:)``
///   before the events decoded from it; without it no frame text is kept.
public protocol Feed: Sendable {
    /// Names the source in logs, recordings and the Kafka `source` header.
    var source: String { get }
    func run(frames: Bool, deliver: (FeedEvent) throws -> Void) async throws
}

extension Feed {
    /// Runs without raw frames.
    public func run(deliver: (FeedEvent) throws -> Void) async throws {
        try await run(frames: false, deliver: deliver)
    }

    /// Runs and hands only the trades to `body`, in order.
    public func forEachTrades(_ body: ([Trade]) throws -> Void) async throws {
        try await run(frames: false) { event in
            if case .trades(let trades) = event { try body(trades) }
        }
    }
}
