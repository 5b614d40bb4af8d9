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
import Testing

@Suite struct FillModelTests {
    /// Buy 10 at market walks two trades, sell 10 at market fills at one; 10 bps fees; every figure by hand.
    @Test func marketOrdersWalkTheTapeWithFees() throws {
        let tape = [trade(1000, 100, 5), trade(2000, 101, 4), trade(3000, 102, 10), trade(4000, 105, 1), trade(5000, 104, 100)]
        var engine = try BacktestEngine(strategy: Scripted(script: [1000: [.market("X", .buy, 10)], 4000: [.market("X", .sell, 10)]]),
                                        config: config(feeBps: 10))
        engine.process(tape)
        let fills = engine.strategy.fills
        #expect(fills.map(\.price) == [101, 102, 104])
        #expect(fills.map(\.quantity) == [4, 6, 10])
        #expect(fills.map(\.remaining) == [6, 0, 0])
        #expect(fills.map(\.timestamp) == [2000, 3000, 5000])
        #expect(close(fills[0].fee, 0.404) && close(fills[1].fee, 0.612) && close(fills[2].fee, 1.04))
        let r = engine.report()
        #expect(close(r.cash, 10_021.944))
        #expect(close(r.finalEquity, 10_021.944))
        #expect(close(r.pnl, 21.944))
        #expect(close(r.returnPct, 0.21944))
        #expect(close(r.fees, 2.056))
        #expect(r.fills == 3 && r.orders == 2 && r.roundTrips == 1 && r.winningTrips == 1 && r.winRate == 1)
        #expect(close(r.symbols[0].realizedPnL, 24))
        #expect(r.symbols[0].position == 0 && r.symbols[0].averageCost == 0)
        // Peak 10 032.984 at t=4000 (cash 8 982.984 + 10 × 105), then 10 021.944 after the sale.
        #expect(close(r.maxDrawdown, 11.04))
        #expect(close(r.maxDrawdownPct, 11.04 / 10_032.984 * 100))
        // Long from the fill at 2000 to the sale at 5000 of a 4000 ms span.
        #expect(r.exposure == 0.75)
        #expect(r.trades == 5 && r.spanMs == 4000)
    }

    /// A losing round trip, a partial sell, and a short: average cost, realized PnL and win rate.
    @Test func roundTripsAverageCostAndShorts() throws {
        let tape = [trade(1, 50, 0), trade(2, 50, 0), trade(3, 60, 0), trade(4, 40, 0), trade(5, 45, 0), trade(6, 30, 0), trade(7, 35, 0)]
        let script: [Int64: [Order]] = [
            1: [.market("X", .buy, 2)],          // fills 2 @ 50 at t=2 (volume 0: fills whole)
            2: [.market("X", .buy, 2)],          // fills 2 @ 60 → avg 55
            3: [.market("X", .sell, 1)],         // fills 1 @ 40 → realized −15
            4: [.market("X", .sell, 5)],         // fills 5 @ 45: closes 3 (−30), opens short 2 @ 45
            5: [.market("X", .buy, 2)],          // fills 2 @ 30: short gains 30
        ]
        var engine = try BacktestEngine(strategy: Scripted(script: script), config: config(cash: 1000))
        engine.process(tape)
        let r = engine.report()
        #expect(engine.strategy.fills.map(\.price) == [50, 60, 40, 45, 30])
        #expect(close(r.symbols[0].realizedPnL, -15 - 30 + 30))
        #expect(r.roundTrips == 2 && r.winningTrips == 1)
        #expect(r.symbols[0].position == 0)
        #expect(close(r.cash, 1000 - 100 - 120 + 40 + 225 - 60))
        #expect(close(r.pnl, -15))
    }

    /// Limit buy at 100: a print at 100 does not fill (strictly through), prints below fill at 100, walking volume.
    @Test func limitOrdersFillOnlyWhenTheTapeTradesThrough() throws {
        let tape = [trade(1000, 101, 1), trade(2000, 100, 5), trade(3000, 99.5, 3), trade(4000, 99, 10), trade(5000, 103, 1), trade(6000, 103.01, 1)]
        let script: [Int64: [Order]] = [1000: [.limit("X", .buy, 5, at: 100)], 4000: [.limit("X", .sell, 5, at: 103)]]
        var engine = try BacktestEngine(strategy: Scripted(script: script), config: config(feeBps: 2.5))
        engine.process(tape)
        let fills = engine.strategy.fills
        #expect(fills.map(\.timestamp) == [3000, 4000, 6000])
        #expect(fills.map(\.price) == [100, 100, 103])
        #expect(fills.map(\.quantity) == [3, 2, 1])
        let r = engine.report()
        #expect(r.openOrders == 1)
        #expect(close(r.fees, 500 * 0.00025 + 103 * 0.00025))
        #expect(close(r.cash, 10_000 - 500 + 103 - r.fees))
        #expect(r.symbols[0].position == 4)
    }

    /// An order submitted at t is active from t + latency: earlier prints do not fill it.
    @Test func latencyDelaysActivation() throws {
        let tape = [trade(1000, 100, 1), trade(1200, 101, 1), trade(1499, 102, 1), trade(1500, 103, 1), trade(1600, 104, 1)]
        var engine = try BacktestEngine(strategy: Scripted(script: [1000: [.market("X", .buy, 1.5)]]), config: config(latencyMs: 500))
        engine.process(tape)
        #expect(engine.strategy.fills.map(\.price) == [103, 104])
        #expect(engine.strategy.fills.map(\.quantity) == [1, 0.5])
    }

    /// Two orders share each print's volume, first submitted first.
    @Test func ordersShareTheTapeInSubmissionOrder() throws {
        let tape = [trade(1, 10, 1), trade(2, 11, 3), trade(3, 12, 3)]
        var engine = try BacktestEngine(strategy: Scripted(script: [1: [.market("X", .buy, 2), .market("X", .buy, 2)]]), config: config())
        engine.process(tape)
        let f = engine.strategy.fills
        #expect(f.map(\.orderID) == [1, 2, 2])
        #expect(f.map(\.price) == [11, 11, 12])
        #expect(f.map(\.quantity) == [2, 1, 1])
    }

    /// Orders with a bad quantity or limit are rejected and counted; other symbols' prints never fill an order.
    @Test func rejectsInvalidOrdersAndMatchesPerSymbol() throws {
        let tape = [trade(1, 10, 1), trade(2, 5, 9, "Y"), trade(3, 11, 9)]
        let script: [Int64: [Order]] = [1: [.market("X", .buy, 0), .market("X", .buy, .nan), .limit("X", .buy, 1, at: -1), .market("X", .buy, 1)]]
        var engine = try BacktestEngine(strategy: Scripted(script: script), config: config())
        engine.process(tape)
        #expect(engine.ordersRejected == 3 && engine.ordersSubmitted == 1)
        #expect(engine.strategy.fills.map(\.price) == [11])
    }

    @Test func parametersAndDurations() throws {
        #expect(try DurationText.milliseconds("500ms") == 500)
        #expect(try DurationText.milliseconds("10s") == 10_000)
        #expect(try DurationText.milliseconds("1m") == 60_000)
        #expect(try DurationText.milliseconds("2") == 2000)
        #expect(throws: BacktestFailure.self) { try DurationText.milliseconds("ten") }
        #expect(throws: BacktestFailure("vwap-reversion has no parameter entry (it takes entry-bps, exit-bps, fraction, qty, stop-bps)")) {
            try Strategies.make("vwap-reversion", parameters: ["entry=3"])
        }
        #expect(throws: BacktestFailure.self) { try Strategies.make("nope", parameters: []) }
        #expect(try Strategies.make("breakout", parameters: ["lookback=3", "qty=2"]).parameters.map { "\($0.0)=\($0.1)" }
                == ["lookback=3", "min-change-pct=0", "qty=2"])
    }
}
