import MarketData
import Recording
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A seeded, reproducible trade generator for a mock exchange.
///
/// Each symbol has an independent stream derived only from `(seed, symbol)`: a random-walk price on a
/// 0.01 tick, volumes, conditions and quiet/burst regimes (gaps ~10× shorter in bursts). Symbols containing
/// `:` are crypto (price ~30,000–70,000, fractional volumes with 4–8 decimals, `conditions == nil`); others are
/// stocks (start price 20–500 derived from the symbol, integer volumes 1–500, conditions like `["1","12"]`).
/// Gaps are drawn in a rate-free unit (mean 1) and scaled by `symbolCount / tradesPerSecond` seconds, so a
/// symbol's prices, volumes and conditions never depend on the rate or on other symbols.
public struct SyntheticMarket: Sendable {
    /// The total trade rate over all current symbols, split evenly between them. Changes apply to later gaps.
    public var tradesPerSecond: Double
    /// The seed every symbol stream is derived from (with the symbol's UTF-8 bytes).
    public let seed: UInt64
    private var streams: [SymbolStream] = []
    private var clock: Int64

    public init(seed: UInt64, symbols: [String], startMilliseconds: Int64, tradesPerSecond: Double) {
        self.seed = seed
        self.clock = startMilliseconds
        self.tradesPerSecond = tradesPerSecond
        for symbol in Set(symbols).sorted() { streams.append(SymbolStream(seed: seed, symbol: symbol)) }
        let scale = msPerUnit(symbolCount: streams.count)
        for i in streams.indices { streams[i].nextTime = Double(clock) + streams[i].drawGap() * scale }
    }

    /// The virtual clock, in Unix milliseconds.
    public var now: Int64 { clock }

    /// Current symbols in ascending order.
    public var symbols: [String] { streams.map(\.symbol) }

    /// Starts `symbol`'s stream at the current virtual time; no effect if it is already present.
    public mutating func add(symbol: String) {
        let index = streams.partitioningIndex { $0.symbol >= symbol }
        guard index == streams.count || streams[index].symbol != symbol else { return }
        var stream = SymbolStream(seed: seed, symbol: symbol)
        stream.nextTime = Double(clock) + stream.drawGap() * msPerUnit(symbolCount: streams.count + 1)
        streams.insert(stream, at: index)
    }

    /// Stops `symbol`'s stream; adding it again restarts it from its beginning.
    public mutating func remove(symbol: String) {
        streams.removeAll { $0.symbol == symbol }
    }

    /// All trades with timestamp in `[now, now + intervalMs)`, merged across symbols in (timestamp, symbol)
    /// order (a symbol's own trades keep their order); then `now` advances by `intervalMs`.
    public mutating func advance(byMilliseconds intervalMs: Int64) -> [Trade] {
        guard intervalMs > 0 else { return [] }
        let start = clock
        let end = clock + intervalMs
        clock = end
        let scale = msPerUnit(symbolCount: streams.count)
        let endTime = Double(end)
        var generated: [Trade] = []
        let expected: Double = Double(intervalMs) * tradesPerSecond / 800 + 16
        generated.reserveCapacity(expected < 4_194_304 ? Int(expected) : 4_194_304)
        var offsets: [Int] = []
        offsets.reserveCapacity(generated.capacity)
        var sorted = true
        var last = 0
        for i in streams.indices {
            while streams[i].nextTime < endTime {
                let ms = Int64(streams[i].nextTime.rounded(.down))
                generated.append(streams[i].nextTrade(timestamp: ms))
                streams[i].nextTime += streams[i].drawGap() * scale
                let offset = Int(ms - start)
                if offset < last { sorted = false }
                last = offset
                offsets.append(offset)
            }
        }
        if sorted { return generated }
        return Self.stableSort(generated, by: offsets, span: intervalMs)
    }

    private func msPerUnit(symbolCount: Int) -> Double {
        tradesPerSecond > 0 ? 1000 * Double(symbolCount) / tradesPerSecond : .infinity
    }

    private static func stableSort(_ trades: [Trade], by offsets: [Int], span: Int64) -> [Trade] {
        guard span <= Int64(max(1 << 16, trades.count * 4)) else {
            let order = trades.indices.sorted { (offsets[$0], $0) < (offsets[$1], $1) }
            return order.map { trades[$0] }
        }
        var starts = [Int](repeating: 0, count: Int(span) + 1)
        for o in offsets { starts[o + 1] += 1 }
        for k in 1..<starts.count { starts[k] += starts[k - 1] }
        return [Trade](unsafeUninitializedCapacity: trades.count) { buffer, count in
            for i in trades.indices {
                let o = offsets[i]
                (buffer.baseAddress! + starts[o]).initialize(to: trades[i])
                starts[o] += 1
            }
            count = trades.count
        }
    }
}

private let stockConditions: [[String]] = [["1"], ["1", "12"], [], ["12"], ["1", "14", "41"]]

private struct SymbolStream: Sendable {
    let symbol: String
    let isCrypto: Bool
    var rng: Xoshiro256StarStar
    var nextTime = 0.0
    var ticks: Int64
    let minTicks: Int64
    let maxTicks: Int64
    let stepTicks: UInt64
    var bursting = false
    var regimeLeft: Int

    static let quietMeanTrades = 60
    static let burstMeanTrades = 30
    static let burstGapFactor = 0.1
    static let quietGap = 1 / (2.0 / 3.0 + burstGapFactor / 3.0)

    init(seed: UInt64, symbol: String) {
        self.symbol = symbol
        isCrypto = symbol.utf8.contains(UInt8(ascii: ":"))
        let symbolHash = fnv1a(symbol)
        rng = Xoshiro256StarStar(seed: seed ^ symbolHash.rotated(by: 17) ^ 0x5EED_F00D_CAFE_BEEF)
        let anchor = splitMix64(symbolHash)
        if isCrypto {
            ticks = 3_000_000 + Int64(anchor % 4_000_001)
            minTicks = 3_000_000
            maxTicks = 7_000_000
            stepTicks = 400
        } else {
            ticks = 2_000 + Int64(anchor % 48_001)
            minTicks = 100
            maxTicks = 5_000_000
            stepTicks = max(1, UInt64(ticks / 8_000))
        }
        regimeLeft = 0
        regimeLeft = drawRegimeLength()
    }

    /// Uniform in [mean/2, 3·mean/2] trades: bursty, yet stable in the long-run rate.
    mutating func drawRegimeLength() -> Int {
        let mean = bursting ? Self.burstMeanTrades : Self.quietMeanTrades
        return mean / 2 + Int(rng.next() % UInt64(mean + 1))
    }

    /// The next gap in rate-free units (mean 1 over a long run).
    mutating func drawGap() -> Double {
        if regimeLeft == 0 {
            bursting.toggle()
            regimeLeft = drawRegimeLength()
        }
        regimeLeft -= 1
        return rng.exponential() * (bursting ? Self.quietGap * Self.burstGapFactor : Self.quietGap)
    }

    mutating func nextTrade(timestamp: Int64) -> Trade {
        let r = rng.next()
        let span = 2 * stepTicks + 1
        let step = Int64((r >> 32) % span) - Int64(stepTicks)
        let move = (r & 3) == 0 ? step : ((r >> 2) & 7 == 0 ? step.signum() : 0)
        ticks += move
        if ticks < minTicks { ticks = 2 * minTicks - ticks }
        if ticks > maxTicks { ticks = 2 * maxTicks - ticks }
        let price = Double(ticks) / 100
        let v = rng.next()
        if isCrypto {
            let decimals = Int(v % 5) + 4
            let units = 1 + (v >> 8) % (5 * powersOfTen[decimals])
            return Trade(symbol: symbol, price: price, timestamp: timestamp,
                         volume: Double(units) / Double(powersOfTen[decimals]), conditions: nil)
        }
        let volume = (v & 3) == 0 ? Double(100 * (1 + (v >> 2) % 5)) : Double(1 + (v >> 8) % 500)
        let c = (v >> 40) % 16
        let conditions = stockConditions[c < 7 ? 0 : c < 12 ? 1 : c < 14 ? 2 : c < 15 ? 3 : 4]
        return Trade(symbol: symbol, price: price, timestamp: timestamp, volume: volume, conditions: conditions)
    }
}

private let powersOfTen: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

private func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

private func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

private struct Xoshiro256StarStar: Sendable {
    var s0, s1, s2, s3: UInt64

    init(seed: UInt64) {
        let golden: UInt64 = 0x9E37_79B9_7F4A_7C15
        s0 = splitMix64(seed); s1 = splitMix64(seed &+ golden)
        s2 = splitMix64(seed &+ 2 &* golden); s3 = splitMix64(seed &+ 3 &* golden)
    }

    @inline(__always) mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotated(by: 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3.rotated(by: 45)
        return result
    }

    /// Exp(1): -log(u) for u uniform in (0, 1].
    @inline(__always) mutating func exponential() -> Double {
        -log(Double((next() >> 11) + 1) * 0x1.0p-53)
    }
}

private extension UInt64 {
    @inline(__always) func rotated(by k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}

private extension Array {
    func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
