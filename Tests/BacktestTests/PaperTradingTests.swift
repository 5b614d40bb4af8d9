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
import Synchronization
import Testing

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

/// Checks that windows never arrive before the clock reaches their end, and counts them.
final class WindowLog: Sendable {
    let counts = Mutex<(windows: Int, early: Int)>((0, 0))
}

struct WindowWatcher: Strategy {
    let log: WindowLog
    var name: String { "window-watcher" }
    mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] {
        log.counts.withLock { $0.windows += 1; if w.windowEnd > ctx.now { $0.early += 1 } }
        return []
    }
}

extension PaperTradingTests {
    /// Windows taken from an aggregated-metrics topic are delivered, and never ahead of the paper clock.
    @Test func windowsFromTheMetricsTopic() async throws {
        let kafka = try TestBroker.config()
        let raw = TestBroker.unique("paper-raw"), metrics = TestBroker.unique("paper-metrics")
        _ = try KafkaAdmin(config: kafka).ensureTopics([TopicSpec(name: raw, partitions: 1), TopicSpec(name: metrics, partitions: 1)])
        let trades = syntheticTrades(count: 2000, symbols: ["BINANCE:BTCUSDT"])
        let window = WindowConfig(windowMs: 20_000, hopMs: 5_000, allowedLatenessMs: 0, idleGraceMs: 0)
        var aggregator = try WindowAggregator(config: window)
        var windows: [WindowMetrics] = []
        for t in trades { aggregator.add(t, into: &windows) }
        let producer = try KafkaProducer(config: kafka)
        for w in windows { try producer.enqueue(topic: metrics, key: Array(w.symbol.utf8), value: w.jsonBytes(), timestamp: w.windowEnd) }
        try producer.flush(timeout: .seconds(30))
        let publisher = TradePublisher(producer: producer, topic: raw, source: "tests")
        try publisher.publish(trades)
        try publisher.flush()
        #expect(WindowMetrics(json: windows[0].jsonBytes()) == windows[0])

        var options = PaperOptions()
        options.topic = raw
        options.metricsTopic = metrics
        options.fromBeginning = true
        options.idleTimeout = .seconds(3)
        var c = BacktestConfig()
        c.window = window
        let log = WindowLog()
        let r = try await PaperTrading.run(kafka: kafka, options: options, strategy: WindowWatcher(log: log), config: c)
        let last = trades.last!.timestamp
        #expect(r.report.trades == trades.count)
        let (delivered, early) = log.counts.withLock { $0 }
        #expect(early == 0)
        #expect(delivered == windows.filter { $0.windowEnd <= last }.count && r.report.windows == delivered)
    }
}
