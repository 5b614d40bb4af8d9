import Backtest
import Feed
import Foundation
import Pipeline
import Synchronization
import Testing
import TestSupport

@Suite struct PaperTradingTests {
    /// Trades produced to a topic in the pipeline's message format give the same fills and report live as in a backtest.
    @Test func paperTradingMatchesTheBacktest() async throws {
        let kafka = try TestBroker.config()
        let topic = TestBroker.unique("paper-raw")
        _ = try KafkaAdmin(config: kafka).ensureTopics([TopicSpec(name: topic, partitions: 1)])
        let trades = syntheticTrades(count: 3000, symbols: ["BINANCE:BTCUSDT"])
        let publisher = TradePublisher(producer: try KafkaProducer(config: kafka), topic: topic, source: "tests")
        try publisher.publish(trades)
        try publisher.flush()

        var c = BacktestConfig()
        c.feeBps = 5; c.latencyMs = 200
        c.window = WindowConfig(windowMs: 20_000, hopMs: 5_000, allowedLatenessMs: 0, idleGraceMs: 0)
        var options = PaperOptions()
        options.topic = topic
        options.fromBeginning = true
        options.maxTrades = trades.count
        options.idleTimeout = .seconds(30)
        let seen = Mutex<[Fill]>([])
        let live = try await PaperTrading.run(kafka: kafka, options: options, strategy: VWAPReversion(entryBps: 5), config: c) { f in
            seen.withLock { $0.append(f) }
        }
        let offline = try Backtest.run(trades: trades, strategy: VWAPReversion(entryBps: 5), config: c)
        #expect(live.report.trades == trades.count)
        #expect(live.report.fills > 0 && seen.withLock { $0.count } == live.report.fills)
        #expect(live.report == offline.report)
        #expect(live.report.jsonBytes() == offline.report.jsonBytes())
    }
}
