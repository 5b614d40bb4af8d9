@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Testing

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomTrades(seed: UInt64, count: Int, symbols: [String], latenessMs: Int64) -> [Trade] {
    var rng = SplitMix64(state: seed)
    var clock: [String: Int64] = [:]
    var out: [Trade] = []
    for _ in 0..<count {
        let s = symbols.randomElement(using: &rng)!
        var t = clock[s, default: 1_700_000_000_000 + Int64.random(in: 0...50_000, using: &rng)]
        t += Int64.random(in: 0...1_500, using: &rng)
        if Int.random(in: 0..<50, using: &rng) == 0 { t += Int64.random(in: 30_000...200_000, using: &rng) }
        clock[s] = t
        var ts = t
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: ts -= Int64.random(in: 0...(latenessMs + 2_000), using: &rng)
        case 1: ts -= Int64.random(in: 0...90_000, using: &rng)
        default: break
        }
        let price = (Double(Int.random(in: 9_000...11_000, using: &rng)) / 100)
        let volume = Int.random(in: 0..<8, using: &rng) == 0 ? 0 : Double(Int.random(in: 1...1_000, using: &rng)) / 10
        out.append(Trade(symbol: s, price: price, timestamp: ts, volume: volume))
    }
    return out
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { Int64((Double(a) / Double(b)).rounded(.down)) }

struct Key: Hashable { var symbol: String; var start: Int64 }

/// Brute force: replays each symbol's arrivals, decides lateness and window membership directly from the definitions.
func bruteForce(_ trades: [Trade], _ c: WindowConfig) -> (windows: [Key: WindowMetrics], closedAt: [Key: Int], late: [String: Int]) {
    let H = c.hopMs, L = c.windowMs, n = L / H
    var wm: [String: Int64] = [:]
    var accepted: [(idx: Int, trade: Trade)] = []
    var late: [String: Int] = [:]
    var wmAfter: [Int64] = []
    for (i, t) in trades.enumerated() {
        let w = max(wm[t.symbol] ?? .min, t.timestamp - c.allowedLatenessMs)
        wm[t.symbol] = w
        wmAfter.append(w)
        let p = floorDiv(t.timestamp, H)
        let allClosed = ((p - n + 1)...p).allSatisfy { $0 * H + L <= w }
        if allClosed { late[t.symbol, default: 0] += 1 } else { accepted.append((i, t)) }
    }
    var keys = Set<Key>()
    for (_, t) in accepted {
        let p = floorDiv(t.timestamp, H)
        for k in (p - n + 1)...p { keys.insert(Key(symbol: t.symbol, start: k * H)) }
    }
    var result: [Key: WindowMetrics] = [:], closedAt: [Key: Int] = [:]
    for key in keys {
        let end = key.start + L
        let closeIdx = trades.indices.first { trades[$0].symbol == key.symbol && wmAfter[$0] >= end }
        let members = accepted.filter { $0.trade.symbol == key.symbol && $0.trade.timestamp >= key.start && $0.trade.timestamp < end && $0.idx < (closeIdx ?? .max) }
        guard !members.isEmpty else { continue }
        let prices = members.map(\.trade.price), vols = members.map(\.trade.volume)
        let vol = vols.reduce(0, +), pv = zip(prices, vols).map { $0 * $1 }.reduce(0, +)
        let first = prices.first!, last = prices.last!
        result[key] = WindowMetrics(symbol: key.symbol, windowStart: key.start, windowEnd: end, tradeCount: members.count, volume: vol,
                                    vwap: vol == 0 ? nil : pv / vol, average: prices.reduce(0, +) / Double(prices.count),
                                    min: prices.min()!, max: prices.max()!, first: first, last: last,
                                    changePct: first == 0 ? nil : (last - first) / first * 100)
        if let closeIdx { closedAt[key] = closeIdx }
    }
    return (result, closedAt, late)
}

func close(_ a: Double?, _ b: Double?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return abs(x - y) <= 1e-9 * max(1, abs(x), abs(y))
    default: return false
    }
}

func isOrdered(_ m: [WindowMetrics]) -> Bool {
    zip(m, m.dropFirst()).allSatisfy { ($0.windowEnd, $0.symbol) < ($1.windowEnd, $1.symbol) }
}

@Suite struct WindowAggregatorTests {
    @Test(arguments: [
        WindowConfig(),
        WindowConfig(windowMs: 30_000, hopMs: 30_000, allowedLatenessMs: 0),
        WindowConfig(windowMs: 20_000, hopMs: 5_000, allowedLatenessMs: 12_000),
    ])
    func matchesBruteForce(config: WindowConfig) throws {
        let trades = randomTrades(seed: 7 &+ UInt64(config.hopMs), count: 3_000, symbols: ["AAPL", "MSFT", "BINANCE:BTCUSDT", "Z"], latenessMs: config.allowedLatenessMs)
        var agg = try WindowAggregator(config: config)
        var got: [Key: WindowMetrics] = [:], emittedAt: [Key: Int] = [:]
        for (i, t) in trades.enumerated() {
            let out = agg.add(t)
            #expect(zip(out, out.dropFirst()).allSatisfy { $0.windowEnd < $1.windowEnd })
            for m in out {
                let k = Key(symbol: m.symbol, start: m.windowStart)
                #expect(got[k] == nil, "window emitted twice")
                got[k] = m; emittedAt[k] = i
            }
        }
        let flushed = agg.flushAll()
        #expect(isOrdered(flushed))
        for m in flushed { got[Key(symbol: m.symbol, start: m.windowStart)] = m }
        #expect(agg.flushAll().isEmpty)

        let expected = bruteForce(trades, config)
        #expect(expected.late.values.reduce(0, +) > 0)
        #expect(got.count == expected.windows.count)
        #expect(emittedAt == expected.closedAt)
        for (k, e) in expected.windows {
            guard let g = got[k] else { Issue.record("missing window \(k)"); continue }
            #expect(g.tradeCount == e.tradeCount && g.min == e.min && g.max == e.max && g.first == e.first && g.last == e.last && g.windowEnd == e.windowEnd, "\(k)")
            #expect(close(g.volume, e.volume) && close(g.vwap, e.vwap) && close(g.average, e.average) && close(g.changePct, e.changePct), "\(k)")
        }
        for s in ["AAPL", "MSFT", "BINANCE:BTCUSDT", "Z"] { #expect(agg.lateTrades(for: s) == expected.late[s, default: 0]) }
    }

    @Test func deterministicJSON() throws {
        let trades = randomTrades(seed: 99, count: 5_000, symbols: ["A", "B", "C\"q"], latenessMs: 5_000)
        func run() throws -> [UInt8] {
            var agg = try WindowAggregator()
            var bytes: [UInt8] = []
            for t in trades { for m in agg.add(t) { bytes += m.jsonBytes() + [10] } }
            for m in agg.flushAll() { bytes += m.jsonBytes() + [10] }
            return bytes
        }
        let a = try run(), b = try run()
        #expect(!a.isEmpty && a == b)
    }

    @Test func jsonFormat() {
        let m = WindowMetrics(symbol: "AAPL", windowStart: 60_000, windowEnd: 120_000, tradeCount: 2, volume: 30, vwap: 201.5, average: 0.1,
                              min: 200, max: 1e300, first: -0.0, last: 5e-7, changePct: nil)
        #expect(String(decoding: m.jsonBytes(), as: UTF8.self) ==
            #"{"symbol":"AAPL","window_start":60000,"window_end":120000,"trade_count":2,"volume":30,"vwap":201.5,"average":0.1,"min":200,"max":1e+300,"first":0,"last":5e-07,"change_pct":null}"#)
        #expect(Double(JSONOutput.number(9_007_199_254_740_992)) == 9_007_199_254_740_992 && JSONOutput.number(-3) == "-3")
        #expect(JSONOutput.number(.nan) == "null")
    }

    @Test func handScenarioAndLateness() throws {
        var agg = try WindowAggregator(config: WindowConfig(windowMs: 20_000, hopMs: 10_000, allowedLatenessMs: 5_000))
        #expect(agg.add(Trade(symbol: "X", price: 10, timestamp: 1_000, volume: 1)).isEmpty)
        #expect(agg.add(Trade(symbol: "X", price: 12, timestamp: 11_000, volume: 3)).isEmpty)
        let out = agg.add(Trade(symbol: "X", price: 11, timestamp: 16_000, volume: 0))
        #expect(out.map(\.windowStart) == [-10_000])
        #expect(out.first?.tradeCount == 1)
        #expect(agg.lateHorizon(for: "X") == 0)
        #expect(agg.add(Trade(symbol: "X", price: 99, timestamp: -1, volume: 1)).isEmpty)
        #expect(agg.lateTrades(for: "X") == 1)
        let out2 = agg.add(Trade(symbol: "X", price: 13, timestamp: 25_000, volume: 1))
        #expect(out2.count == 1)
        let w = try #require(out2.first)
        #expect(w.windowStart == 0 && w.tradeCount == 3 && w.first == 10 && w.last == 11 && w.min == 10 && w.max == 12)
        #expect(w.vwap == (10 + 36) / 4.0 && w.average == 11 && w.changePct == 10)
        let rest = agg.flushAll()
        #expect(rest.map(\.windowStart) == [10_000, 20_000])
        #expect(agg.add(Trade(symbol: "X", price: 1, timestamp: 29_999, volume: 1)).isEmpty)
        #expect(agg.lateTrades(for: "X") == 2)
    }

    @Test func idleClosing() throws {
        var agg = try WindowAggregator(config: WindowConfig(windowMs: 20_000, hopMs: 10_000, allowedLatenessMs: 5_000, idleGraceMs: 1_000))
        _ = agg.add(Trade(symbol: "IDLE", price: 5, timestamp: 3_000, volume: 1))
        _ = agg.add(Trade(symbol: "BUSY", price: 7, timestamp: 4_000, volume: 2))
        #expect(agg.closeIdle(nowMs: 15_999).isEmpty)
        let a = agg.closeIdle(nowMs: 16_000)
        #expect(a.map { "\($0.symbol)@\($0.windowStart)" } == ["BUSY@-10000", "IDLE@-10000"])
        #expect(agg.watermark(for: "IDLE") == 10_000)
        let b = agg.closeIdle(nowMs: 100_000)
        #expect(b.map { "\($0.symbol)@\($0.windowStart)" } == ["BUSY@0", "IDLE@0"])
        #expect(agg.closeIdle(nowMs: 50_000).isEmpty)
        #expect(agg.flushAll().isEmpty)
    }

    @Test func invalidConfigAndTrades() throws {
        #expect(throws: WindowConfigError.self) { try WindowAggregator(config: WindowConfig(windowMs: 25_000, hopMs: 10_000)) }
        #expect(throws: WindowConfigError.self) { try WindowAggregator(config: WindowConfig(hopMs: 0)) }
        #expect(throws: WindowConfigError.self) { try WindowAggregator(config: WindowConfig(allowedLatenessMs: -1)) }
        var agg = try WindowAggregator()
        _ = agg.add(Trade(symbol: "N", price: .nan, timestamp: 0, volume: 1))
        _ = agg.add(Trade(symbol: "N", price: 1, timestamp: 0, volume: -1))
        #expect(agg.invalidTrades == 2 && agg.flushAll().isEmpty)
    }

    /// A caller's own slots (numbered in another order than the aggregator's) give the output of the
    /// plain `add`: the same windows in the same order, late and invalid counts, watermarks.
    @Test func callerSlotsGiveTheSameOutput() throws {
        let symbols = (0..<30).map { "S\($0)" }
        var trades = randomTrades(seed: 7, count: 40_000, symbols: symbols, latenessMs: 5_000)
        trades.insert(Trade(symbol: "S3", price: .infinity, timestamp: trades[0].timestamp, volume: 1), at: 100)
        let c = WindowConfig(windowMs: 30_000, hopMs: 5_000, allowedLatenessMs: 5_000, idleGraceMs: 0)
        var plain = try WindowAggregator(config: c), slotted = try WindowAggregator(config: c)
        let order = symbols.reversed().map { $0 }
        var a: [WindowMetrics] = [], b: [WindowMetrics] = []
        for t in trades {
            plain.add(t, into: &a)
            slotted.add(t, callerSlot: order.firstIndex(of: t.symbol)!, into: &b)
        }
        #expect(a.count > 1_000)
        #expect(a == b)
        #expect(plain.flushAll() == slotted.flushAll())
        #expect(plain.lateTradeCounts == slotted.lateTradeCounts && plain.lateTradeTotal > 0)
        #expect(plain.invalidTrades == 1 && slotted.invalidTrades == 1)
        for s in symbols { #expect(plain.watermark(for: s) == slotted.watermark(for: s)) }
    }

    /// An aggregator restored from its encoded state at any point continues exactly as the one that
    /// never stopped: the same windows, late counts and watermarks (what a restart from a checkpoint relies on).
    @Test func restoredStateContinuesAsIfNeverStopped() throws {
        let symbols = (0..<12).map { "S\($0)" } + ["BINANCE:BTCUSDT", "Ü"]
        let trades = randomTrades(seed: 11, count: 20_000, symbols: symbols, latenessMs: 5_000)
        let c = WindowConfig(windowMs: 30_000, hopMs: 5_000, allowedLatenessMs: 5_000, idleGraceMs: 0)
        var whole = try WindowAggregator(config: c)
        var expected: [WindowMetrics] = []
        for t in trades { whole.add(t, into: &expected) }
        #expect(expected.count > 500 && whole.lateTradeTotal > 0)
        for cut in [0, 1, 777, 10_000, 19_999] {
            var first = try WindowAggregator(config: c)
            var got: [WindowMetrics] = []
            for t in trades[..<cut] { first.add(t, into: &got) }
            var w = StateWriter()
            first.encode(into: &w)
            var r = StateReader(w.bytes)
            var second = try WindowAggregator(config: c, restoring: &r)
            #expect(r.isAtEnd)
            for t in trades[cut...] { second.add(t, into: &got) }
            #expect(got == expected, "cut at \(cut)")
            #expect(second.lateTradeCounts == whole.lateTradeCounts, "cut at \(cut)")
            for s in symbols { #expect(second.watermark(for: s) == whole.watermark(for: s), "cut at \(cut), \(s)") }
            var flushedWhole = whole
            #expect(second.flushAll() == flushedWhole.flushAll(), "cut at \(cut)")
        }
    }
}
