#if canImport(Glibc)
import MarketData
import Recording
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A monotonic clock in nanoseconds that can sleep until an instant.
public protocol PacerClock: Sendable {
    func now() -> UInt64
    /// Returns at (or as soon as possible after) `deadline`; returns early only if the task is cancelled.
    func sleep(until deadline: UInt64) async
}

/// CLOCK_MONOTONIC. Sleeps coarsely with `Task.sleep` until ~2 ms before the deadline, then yields
/// in a loop until it passes, landing within about ±0.1 ms.
public struct MonotonicClock: PacerClock {
    public var spinWindowNs: UInt64
    public init(spinWindowNs: UInt64 = 2_000_000) { self.spinWindowNs = spinWindowNs }

    public func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public func sleep(until deadline: UInt64) async {
        var t = now()
        if deadline > t + spinWindowNs {
            do { try await Task.sleep(nanoseconds: deadline - spinWindowNs - t) } catch { return }
            t = now()
        }
        while t < deadline {
            if Task.isCancelled { return }
            await Task.yield()
            t = now()
        }
    }
}

/// Replay speed: a factor of recorded time, or as fast as possible.
public enum Speed: Sendable, Equatable, CustomStringConvertible {
    case factor(Double)
    case max

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var input: String
        public var description: String { "invalid speed \"\(input)\": use a number followed by x, like 10x, 0.5x, or max" }
    }

    /// Parses `10x`, `0.5x`, `1` (a bare number), or `max`; the factor must be finite and positive.
    public static func parse(_ text: String) throws(ParseError) -> Speed {
        let t = text.trimmingWhitespace().lowercased()
        if t == "max" { return .max }
        let num = t.hasSuffix("x") ? String(t.dropLast()) : t
        guard !num.isEmpty, num.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let v = Double(num), v.isFinite, v > 0 else { throw ParseError(input: text) }
        return .factor(v)
    }

    public var description: String {
        switch self {
        case .max: return "max"
        case .factor(let f): return f == f.rounded() && f < 1e15 ? "\(Int64(f))x" : "\(f)x"
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// Paces frames on an absolute schedule: with the first frame's recv_ns R0 and the wall time W0 at which it
/// was released, frame i is due at W0 + (recv_i − R0) / speed. Sleep errors never accumulate because every
/// due time is computed from (R0, W0), not from the previous frame.
public struct Pacer<Clock: PacerClock>: Sendable {
    public private(set) var speed: Speed
    public let clock: Clock
    /// R0 and W0, set by the first `wait`.
    public private(set) var originRecvNs: Int64?
    public private(set) var originWallNs: UInt64 = 0
    /// How late (ns, ≥ 0) the last frame was released relative to its due time.
    public private(set) var lag: UInt64 = 0
    public private(set) var maxLag: UInt64 = 0
    /// Signed release time − due time of the last frame (negative only if the clock woke early).
    public private(set) var drift: Int64 = 0
    public private(set) var frames = 0

    public init(speed: Speed, clock: Clock) { self.speed = speed; self.clock = clock }

    /// Wall time (clock ns) at which a frame received at `recvNs` is due; nil before the first frame or at max speed.
    public func dueTime(recvNs: Int64) -> UInt64? {
        guard let r0 = originRecvNs, case .factor(let s) = speed else { return nil }
        let dt = max(0, recvNs - r0)
        let offset = s == 1 ? UInt64(dt) : UInt64((Double(dt) / s).rounded())
        return originWallNs + offset
    }

    /// Starts the schedule again from the frame received at `recvNs`, due now, at `speed`: what a pause,
    /// a speed change or a seek does, so nothing bursts to catch up and drift counts from this anchor.
    public mutating func reanchor(recvNs: Int64, speed: Speed) {
        self.speed = speed
        originRecvNs = recvNs
        originWallNs = clock.now()
    }

    /// Waits until the frame received at `recvNs` is due. The first call fixes the schedule's origin
    /// at `start` (default: now). Throws `CancellationError` if the task is cancelled.
    public mutating func wait(recvNs: Int64, start: UInt64? = nil) async throws {
        if originRecvNs == nil { originRecvNs = recvNs; originWallNs = start ?? clock.now() }
        frames += 1
        guard let due = dueTime(recvNs: recvNs) else { return }
        if clock.now() < due { await clock.sleep(until: due) }
        try Task.checkCancellation()
        let t = clock.now()
        drift = t >= due ? Int64(t - due) : -Int64(due - t)
        lag = t > due ? t - due : 0
        maxLag = Swift.max(maxLag, lag)
    }
}
