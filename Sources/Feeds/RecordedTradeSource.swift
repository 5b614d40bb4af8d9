import MarketData
import Recording

/// The trades of a recording on its own clock, released by virtual time: the core of `sim-exchange --replay`.
/// It has the shape of SimExchange's `TradeSource` (`now`, `add`, `remove`, `advance(byMilliseconds:)`);
/// the conformance is declared where both modules are visible (the `sim-exchange` command), so the Replay
/// library does not depend on SimExchange.
///
/// `advance(byMilliseconds: d)` moves virtual time forward by `d × speed` ms of recording time and returns the
/// trades of every frame received in that span, in order. Frame boundaries and pings are not kept (the server
/// frames and pings on its own). The recording is loaded once and shared by every connection.
public struct RecordedTradeSource: Sendable {
    /// The decoded trade frames: offset from the first frame (ns) and trades.
    public final class Tape: Sendable {
        public let offsets: [Int64]
        public let frames: [[Trade]]
        public let firstRecvNs: Int64
        public let skippedLines: Int
        public var tradeCount: Int { frames.reduce(0) { $0 + $1.count } }
        public var spanNs: Int64 { offsets.last ?? 0 }

        public init(path: String, skipBad: Bool = false) throws(ReplayFailure) {
            var offsets: [Int64] = [], frames: [[Trade]] = []
            var first: Int64?
            let reader: RecordingReader
            do {
                reader = try RecordingReader(path: path, skipBad: skipBad, validateFrames: false)
                while let (raw, decoded) = try reader.nextDecoded() {
                    if first == nil { first = raw.recvNs }
                    guard case .trades(let t) = decoded, !t.isEmpty else { continue }
                    offsets.append(raw.recvNs - first!)
                    frames.append(t)
                }
            } catch {
                throw RecordingFeed.failure(error, path: path)
            }
            self.offsets = offsets; self.frames = frames; firstRecvNs = first ?? 0; skippedLines = reader.skippedLines
        }
    }

    public let tape: Tape
    /// Recorded time per virtual time (10 = ten times faster than recorded).
    public let speed: Double
    public let loop: Bool
    /// Virtual time (Unix ms) as the server sees it.
    public private(set) var now: Int64
    private var positionNs: Double = 0
    private var index = 0
    private var passOffsetNs: Int64 = 0

    /// Pause, speed and seek requests shared by every connection (`sim-exchange --replay --control-port`).
    public let control: ReplayControl?
    private var seenSeek = 0
    private var currentSpeed: Double

    public init(tape: Tape, speed: Double, startMilliseconds: Int64, loop: Bool = false, control: ReplayControl? = nil) {
        self.tape = tape; self.speed = speed; self.loop = loop; now = startMilliseconds
        self.control = control
        currentSpeed = speed
        seenSeek = control?.peek().seek?.number ?? 0
    }

    /// Applies the control's requests; true while paused.
    private mutating func steer(_ control: ReplayControl) -> Bool {
        let request = control.peek()
        if case .factor(let f) = request.speed { currentSpeed = f } else { currentSpeed = 1000 }
        if let seek = request.seek, seek.number != seenSeek {
            seenSeek = seek.number
            let position = Int64(positionNs) - passOffsetNs
            var target: Int64
            switch seek.target {
            case .absolute(let ns): target = ns - tape.firstRecvNs
            case .relative(let d): target = position + d
            }
            target = min(max(0, target), tape.spanNs)
            var lo = 0, hi = tape.offsets.count
            while lo < hi { let mid = (lo + hi) / 2; if tape.offsets[mid] < target { lo = mid + 1 } else { hi = mid } }
            index = lo
            positionNs = Double(target + passOffsetNs)
            let at = tape.firstRecvNs + target
            control.report { $0.positionNs = at; $0.seeks += 1 }
        }
        return request.paused
    }

    public mutating func add(symbol: String) {}
    public mutating func remove(symbol: String) {}

    public mutating func advance(byMilliseconds milliseconds: Int64) -> [Trade] {
        now += milliseconds
        if let control, steer(control) { return [] }
        positionNs += Double(milliseconds) * 1e6 * currentSpeed
        var out: [Trade] = []
        let n = tape.offsets.count
        guard n > 0 else { return out }
        while true {
            while index < n, Double(tape.offsets[index] + passOffsetNs) <= positionNs {
                out.append(contentsOf: tape.frames[index]); index += 1
            }
            guard index == n, loop else { break }
            let gap = n > 1 ? tape.spanNs / Int64(n - 1) : 1_000_000
            passOffsetNs += tape.spanNs + max(gap, 1)
            index = 0
            if Double(passOffsetNs) > positionNs { break }
        }
        if let control, !out.isEmpty {
            let sent = out.count, at = tape.firstRecvNs + Int64(positionNs) - passOffsetNs
            control.report { $0.tradesSent += sent; $0.positionNs = at }
        }
        return out
    }

    /// Whether every trade has been released (never with `loop`).
    public var finished: Bool { !loop && index >= tape.offsets.count }
}
