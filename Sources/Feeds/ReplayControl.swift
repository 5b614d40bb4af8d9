import MarketData
import Synchronization

/// Steering of a running replay: pause, resume, speed, seek. Keys on a terminal, the HTTP control
/// endpoint and `sim-exchange --replay` all act on one of these; the replay reads it between frames.
///
/// Contract:
/// - Requests take effect before the next frame is released. After each, the schedule starts again
///   from the frame it lands on (``Pacer/reanchor(recvNs:speed:)``): no burst after a pause, drift
///   measured from the last anchor.
/// - A seek lands on the first frame at or after its target, clamped to the recording (and to
///   `--from/--to`); what it passes over is counted as skipped, what is released again after a seek
///   back as repeated (``ReplayStatus``).
/// - Checking for requests costs one atomic load per frame.
public final class ReplayControl: Sendable {
    /// The speeds `faster()` and `slower()` step through.
    public static let ladder: [Speed] = [.factor(0.5), .factor(1), .factor(2), .factor(5), .factor(10), .factor(50), .factor(100), .max]

    /// A seek target in recording time (ns since the epoch), or relative to the current position.
    public enum SeekTarget: Sendable, Equatable {
        case absolute(Int64)
        case relative(Int64)

        /// `+10s`, `-60s`, `+500ms`, `-2m` (relative), or a time `ReplayTime` reads: ISO-8601 or Unix ms.
        public static func parse(_ text: String) throws(ReplayFailure) -> SeekTarget {
            let t = text.trimmingWhitespace()
            if let sign = t.first, sign == "+" || sign == "-" {
                let body = t.dropFirst().lowercased()
                let units: [(String, Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
                for (suffix, scale) in units where body.hasSuffix(suffix) {
                    if let v = Double(body.dropLast(suffix.count)), v.isFinite, v >= 0, v * scale < 9e18 {
                        let ns = Int64((v * scale).rounded())
                        return .relative(sign == "-" ? -ns : ns)
                    }
                }
                throw ReplayFailure("invalid relative seek \"\(text)\": use e.g. +10s, -60s, +500ms, -2m")
            }
            return .absolute(try ReplayTime.parse(t))
        }
    }

    struct Requests {
        var paused = false
        var speed: Speed
        /// The last seek asked for, numbered: each reader applies a seek whose number it has not seen
        /// (the replay, or each of sim-exchange's connections).
        var lastSeek: (number: Int, target: SeekTarget)?
    }

    private let requests: Mutex<Requests>
    private let changes = Atomic<Int>(0)
    private let current: Mutex<ReplayStatus>

    public init(speed: Speed, file: String = "") {
        requests = Mutex(Requests(speed: speed))
        current = Mutex(ReplayStatus(file: file, speed: speed))
    }

    public func pause() { change { $0.paused = true } }
    public func resume() { change { $0.paused = false } }
    public func togglePause() { change { $0.paused.toggle() } }
    public func setSpeed(_ speed: Speed) { change { $0.speed = speed } }
    /// The next speed up the ladder (from between two rungs, the next one above).
    public func faster() { change { r in r.speed = Self.ladder.first { Self.rank($0) > Self.rank(r.speed) } ?? .max } }
    /// The next speed down the ladder.
    public func slower() { change { r in r.speed = Self.ladder.last { Self.rank($0) < Self.rank(r.speed) } ?? Self.ladder[0] } }
    public func seek(_ target: SeekTarget) { change { r in r.lastSeek = ((r.lastSeek?.number ?? 0) + 1, target) } }

    /// What the replay last reported.
    public var status: ReplayStatus {
        var s = current.withLock { $0 }
        let r = requests.withLock { $0 }
        s.paused = r.paused
        s.speed = r.speed
        return s
    }

    static func rank(_ s: Speed) -> Double { if case .factor(let f) = s { f } else { .infinity } }

    private func change(_ body: (inout Requests) -> Void) {
        requests.withLock { body(&$0) }
        changes.add(1, ordering: .releasing)
    }

    // MARK: the replay's side

    /// Increases with every request; the replay compares it with what it saw last.
    public var changeCount: Int { changes.load(ordering: .acquiring) }

    /// The current requests: pause, speed, and the last seek with its number.
    public func peek() -> (paused: Bool, speed: Speed, seek: (number: Int, target: SeekTarget)?) {
        requests.withLock { ($0.paused, $0.speed, $0.lastSeek) }
    }

    /// Updates what ``status`` reports (`paused` and `speed` come from the requests themselves).
    public func report(_ update: (inout ReplayStatus) -> Void) { current.withLock { update(&$0) } }
}

/// Where a replay is and what it did, as `GET /status` and the progress line show it.
public struct ReplayStatus: Sendable, Equatable {
    public var file: String
    public var speed: Speed
    public var paused = false
    /// Receive time (recording clock, ns) of the last frame released.
    public var positionNs: Int64?
    /// The recording's first and last receive times, when known.
    public var firstNs: Int64?
    public var lastNs: Int64?
    public var tradesSent = 0
    public var framesSent = 0
    /// How far behind schedule the last frame was released.
    public var lagNs: UInt64 = 0
    public var seeks = 0
    public var skippedTrades = 0
    public var repeatedTrades = 0
    /// The last thing worth telling about a request (a clamped seek).
    public var notice: String?
    public var finished = false

    public init(file: String, speed: Speed) { self.file = file; self.speed = speed }

    /// One JSON object: position as ISO-8601 and Unix ms, speed, paused, counts, lag in ms.
    public func json() -> String {
        var w = JSONObjectWriter(capacity: 384)
        w.string("file", file)
        w.string("position", positionNs.map(ReplayTime.iso) ?? "")
        w.number("position_ms", positionNs.map { Double($0 / 1_000_000) })
        w.number("first_ms", firstNs.map { Double($0 / 1_000_000) })
        w.number("last_ms", lastNs.map { Double($0 / 1_000_000) })
        w.string("speed", speed.description)
        w.string("state", finished ? "finished" : paused ? "paused" : "playing")
        w.int("trades_sent", tradesSent)
        w.int("frames_sent", framesSent)
        w.number("lag_ms", Double(lagNs) / 1e6)
        w.int("seeks", seeks)
        w.int("skipped_trades", skippedTrades)
        w.int("repeated_trades", repeatedTrades)
        if let notice { w.string("notice", notice) }
        return String(decoding: w.finish(), as: UTF8.self)
    }
}
