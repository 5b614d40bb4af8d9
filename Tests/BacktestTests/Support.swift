import Backtest
import Feeds
import Recording
import MarketData
import Exchange
import Aggregation
import Pipeline
import Kafka
import MarketStreamTesting
import SimExchange
import Foundation

/// Submits scripted orders when it sees the trade with a given timestamp, and records every fill.
struct Scripted: Strategy {
    var script: [Int64: [Order]]
    var fills: [Fill] = []
    var name: String { "scripted" }
    mutating func onTrade(_ trade: Trade, _ context: StrategyContext) -> [Order] { script.removeValue(forKey: trade.timestamp) ?? [] }
    mutating func onFill(_ fill: Fill, _ context: StrategyContext) -> [Order] { fills.append(fill); return [] }
}

func trade(_ t: Int64, _ p: Double, _ v: Double, _ s: String = "X") -> Trade { Trade(symbol: s, price: p, timestamp: t, volume: v) }

func config(cash: Double = 10_000, feeBps: Double = 0, latencyMs: Int64 = 0) -> BacktestConfig {
    var c = BacktestConfig()
    c.initialCash = cash; c.feeBps = feeBps; c.latencyMs = latencyMs
    return c
}

func close(_ a: Double, _ b: Double, _ tol: Double = 1e-9) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

/// Deterministic pseudo-random trades: a random walk per symbol, several trades per millisecond at times.
func syntheticTrades(count: Int, symbols: [String] = ["BINANCE:BTCUSDT", "AAPL"], seed: UInt64 = 42) -> [Trade] {
    var state = seed
    func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
    var prices = symbols.map { _ in 100.0 }
    var t: Int64 = 1_700_000_000_000
    var out: [Trade] = []
    out.reserveCapacity(count)
    for _ in 0..<count {
        t += Int64(next() * 400)
        let i = Int(next() * Double(symbols.count))
        prices[i] = max(1, prices[i] * (1 + (next() - 0.5) * 0.004))
        out.append(Trade(symbol: symbols[i], price: (prices[i] * 100).rounded() / 100, timestamp: t, volume: (next() * 10 * 1000).rounded() / 1000))
    }
    return out
}

/// Writes `trades` as a recording, `perFrame` trades a frame, recv_ns = trade time.
func writeRecording(_ trades: [Trade], to path: String, perFrame: Int = 3) throws {
    let header = RecordingHeader(source: "tests", symbols: Array(Set(trades.map(\.symbol))).sorted(), startNs: (trades.first?.timestamp ?? 0) * 1_000_000, createdBy: "tests")
    let w = try RecordingWriter(path: path, header: header, overwrite: true)
    var i = 0
    while i < trades.count {
        let chunk = Array(trades[i..<min(i + perFrame, trades.count)])
        try w.append(recvNs: chunk.last!.timestamp * 1_000_000, frame: FinnhubCodec.encodeTrades(chunk))
        i += perFrame
    }
    try w.close()
}
