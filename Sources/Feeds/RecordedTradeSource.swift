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
                while let raw = try reader.nextRaw(checkUTF8: false) {
                    let decoded: FinnhubFrame
                    do { decoded = try FinnhubCodec.decode(UnsafeRawBufferPointer(raw.bytes)) } catch {
                        try reader.reportBadFrame(line: raw.line, "frame does not decode: \(error)")
                        continue
                    }
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

    public init(tape: Tape, speed: Double, startMilliseconds: Int64, loop: Bool = false) {
        self.tape = tape; self.speed = speed; self.loop = loop; now = startMilliseconds
    }

    public mutating func add(symbol: String) {}
    public mutating func remove(symbol: String) {}

    public mutating func advance(byMilliseconds milliseconds: Int64) -> [Trade] {
        now += milliseconds
        positionNs += Double(milliseconds) * 1e6 * speed
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
        return out
    }

    /// Whether every trade has been released (never with `loop`).
    public var finished: Bool { !loop && index >= tape.offsets.count }
}
