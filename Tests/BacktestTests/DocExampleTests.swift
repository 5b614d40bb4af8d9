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

/// The strategy of docs/BACKTEST.md, verbatim.
struct BuyTheDip: Strategy {
    var name: String { "buy-the-dip" }
    mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] {
        guard let change = w.changePct else { return [] }
        let held = ctx.portfolio.position(w.symbol)
        if held == 0, change < -1, ctx.portfolio.openOrders(w.symbol) == 0 { return [.market(w.symbol, .buy, 1)] }
        if held > 0, change > 0, ctx.portfolio.openOrders(w.symbol) == 0 { return [.market(w.symbol, .sell, held)] }
        return []
    }
}

@Suite struct DocExampleTests {
    @Test func documentedStrategyRuns() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeRecording(syntheticTrades(count: 50_000, symbols: ["X"]), to: dir + "/btc.jsonl.gz")
        var c = BacktestConfig()
        c.window = WindowConfig(windowMs: 10_000, hopMs: 10_000, allowedLatenessMs: 0, idleGraceMs: 0)
        let result = try Backtest.run(path: dir + "/btc.jsonl.gz", strategy: BuyTheDip(), config: c)
        #expect(result.report.trades == 50_000 && result.report.strategy == "buy-the-dip")
        #expect(result.report.text.hasPrefix("Backtest buy-the-dip: 50000 trades"))
    }
}
