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
import Testing

@Suite struct RealDataTests {
    /// Every built-in strategy over the real Tardis BTCUSDT session, read as CSV and as a converted recording.
    @Test(.enabled(if: realDataDir() != nil, "needs ../shared/data/real (or MARKET_DATA_REAL_DIR)"))
    func tardisSession() throws {
        let dir = try #require(realDataDir())
        let csv = dir + "/tardis_binance-futures_BTCUSDT_trades_2020-02-22.csv"
        let out = tempDir()
        defer { try? FileManager.default.removeItem(atPath: out) }
        try TardisTradesImporter(path: csv).convert(to: out + "/btc.jsonl.gz")
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").count - 1
        var c = BacktestConfig()
        c.feeBps = 4; c.latencyMs = 50
        for (name, params) in [("buy-and-hold", [String]()), ("vwap-reversion", ["entry-bps=5", "stop-bps=30"]), ("breakout", ["lookback=3"])] {
            let fromCSV = try Backtest.run(path: csv, strategy: try Strategies.make(name, parameters: params), config: c)
            let fromRecording = try Backtest.run(path: out + "/btc.jsonl.gz", strategy: try Strategies.make(name, parameters: params), config: c)
            let r = fromRecording.report
            print("\(r.text)\n  \(fromRecording.speedLine)")
            #expect(fromCSV.report == r)
            #expect(r.trades == rows && rows == 9999)
            #expect(r.symbols.map(\.symbol) == ["BINANCE:BTCUSDT"])
            #expect(r.spanMs > 2 * 3600 * 1000 && r.spanMs < 2 * 3600 * 1000 + 6 * 60 * 1000)
            #expect(r.fills >= 1 && r.fees > 0 && r.maxDrawdown > 0 && r.maxDrawdownPct > 0 && r.maxDrawdownPct < 5)
            #expect(r.exposure > 0 && r.exposure <= 1)
            #expect(abs(r.returnPct) < 5, "prices moved 9653…9711, a long-only strategy cannot lose or win more")
            #expect(r.symbols[0].lastPrice >= 9653.07 && r.symbols[0].lastPrice <= 9710.70)
            if name == "buy-and-hold" { #expect(r.fills >= 1 && r.roundTrips == 0 && r.exposure > 0.99) }
            else { #expect(r.roundTrips > 0 && r.winRate != nil) }
        }
    }
}
