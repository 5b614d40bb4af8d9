@testable import Backtest
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

/// Records everything it is shown and checks it against the clock; trades now and then so fills happen.
struct Recorder: Strategy {
    var seen: [Trade] = []
    var violations: [String] = []
    var windows = 0
    var fills = 0
    var submittedAt: [Int64] = []
    let latency: Int64
    let tape: [Trade]
    var name: String { "recorder" }

    mutating func onTrade(_ trade: Trade, _ ctx: StrategyContext) -> [Order] {
        if trade.timestamp > ctx.now { violations.append("trade \(trade.timestamp) after now \(ctx.now)") }
        seen.append(trade)
        guard seen.count % 97 == 0 else { return [] }
        submittedAt.append(ctx.now)
        let side: Side = ctx.portfolio.position(trade.symbol) > 0 ? .sell : .buy
        return [.market(trade.symbol, side, 1), .limit(trade.symbol, .buy, 1, at: trade.price * 0.999)]
    }

    mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] {
        windows += 1
        if w.windowEnd > ctx.now { violations.append("window ending \(w.windowEnd) delivered at \(ctx.now)") }
        let inside = seen.filter { $0.symbol == w.symbol && $0.timestamp >= w.windowStart && $0.timestamp < w.windowEnd }
        if inside.count != w.tradeCount { violations.append("window \(w.windowStart) holds \(w.tradeCount) trades, strategy saw \(inside.count)") }
        return []
    }

    mutating func onFill(_ f: Fill, _ ctx: StrategyContext) -> [Order] {
        fills += 1
        if f.timestamp > ctx.now { violations.append("fill at \(f.timestamp) after now \(ctx.now)") }
        if !submittedAt.contains(where: { $0 + latency <= f.timestamp }) { violations.append("fill at \(f.timestamp) before any order was active") }
        if seen.count >= tape.count || tape[seen.count].timestamp != f.timestamp || tape[seen.count].symbol != f.symbol {
            violations.append("fill at \(f.timestamp) is not against the next, still unseen trade")
        }
        return []
    }
}

@Suite struct EngineTests {
    @Test func strategiesNeverSeeTheFuture() throws {
        let trades = syntheticTrades(count: 20_000)
        var c = BacktestConfig()
        c.latencyMs = 250
        c.window = WindowConfig(windowMs: 30_000, hopMs: 5_000, allowedLatenessMs: 0, idleGraceMs: 0)
        var engine = try BacktestEngine(strategy: Recorder(latency: 250, tape: trades), config: c)
        for t in trades { engine.process(t) }
        let r = engine.strategy
        #expect(r.violations.isEmpty, "\(r.violations.prefix(5))")
        #expect(r.seen == trades)
        #expect(r.windows > 100 && r.fills > 100)
    }

    /// `StrategyContext.slot` numbers symbols densely from 0 in order of first appearance and gives each
    /// trade, window and fill its symbol's number; the built-in strategies keyed by it report what they
    /// report in an engine that numbered the symbols in another order.
    @Test func contextSlotNumbersSymbols() throws {
        struct Slots: Strategy {
            var bySymbol: [String: Int] = [:]
            var violations: [String] = []
            var name: String { "slots" }
            mutating func check(_ symbol: String, _ ctx: StrategyContext, _ what: String) {
                if let known = bySymbol[symbol] {
                    if known != ctx.slot { violations.append("\(what) of \(symbol): slot \(ctx.slot), before \(known)") }
                } else if ctx.slot != bySymbol.count || bySymbol.values.contains(ctx.slot) {
                    violations.append("\(what) of new symbol \(symbol): slot \(ctx.slot) with \(bySymbol.count) known")
                } else { bySymbol[symbol] = ctx.slot }
            }
            mutating func onTrade(_ trade: Trade, _ ctx: StrategyContext) -> [Order] {
                check(trade.symbol, ctx, "trade")
                return bySymbol.count % 2 == 0 && Int(trade.timestamp) % 7 == 0 ? [.market(trade.symbol, .buy, 1)] : []
            }
            mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] { check(w.symbol, ctx, "window"); return [] }
            mutating func onFill(_ f: Fill, _ ctx: StrategyContext) -> [Order] { check(f.symbol, ctx, "fill"); return [] }
        }
        let symbols = (0..<12).map { "SYM\($0)" }
        let trades = syntheticTrades(count: 20_000, symbols: symbols)
        var engine = try BacktestEngine(strategy: Slots(), config: BacktestConfig())
        for t in trades { engine.process(t) }
        #expect(engine.strategy.violations.isEmpty, "\(engine.strategy.violations.prefix(3))")
        #expect(engine.strategy.bySymbol.count == 12)
        #expect(engine.report().fills > 0 && engine.report().windows > 0)

        // Per-symbol strategy state looked up by slot: a value moved to an engine that numbers the
        // symbols otherwise still finds each symbol's own state.
        var states = PerSymbol<String>()
        for s in symbols { _ = states.findOrAdd(s) { s } }
        for (slot, s) in symbols.enumerated() { #expect(states.find(s, slot: slot).map { states[$0] } == s) }
        for (slot, s) in symbols.reversed().enumerated() { #expect(states.find(s, slot: slot).map { states[$0] } == s) }
        #expect(states.find("ABSENT", slot: 0) == nil && states.find("SYM3", slot: -1).map { states[$0] } == "SYM3")
    }

    /// The equity curve is the last mark of each interval, the interval being the smallest of 1 s · 2^k
    /// that keeps it within `maxCurvePoints`, whatever coarsenings it went through on the way.
    @Test func equityCurveIsTheLastMarkOfEachInterval() throws {
        struct Marks: Strategy {
            var marks: [EquityPoint] = []
            var name: String { "marks" }
            mutating func onTrade(_ trade: Trade, _ ctx: StrategyContext) -> [Order] {
                marks.append(EquityPoint(time: ctx.now, equity: ctx.portfolio.equity))
                guard marks.count % 50 == 1 else { return [] }
                return [.market(trade.symbol, ctx.portfolio.position(trade.symbol) > 0 ? .sell : .buy, 1)]
            }
        }
        for maxPoints in [2, 7, 64, 5_000] {
            var c = BacktestConfig()
            c.maxCurvePoints = maxPoints
            var engine = try BacktestEngine(strategy: Marks(), config: c)
            for t in syntheticTrades(count: 6_000) { engine.process(t) }
            let marks = engine.strategy.marks
            func lastPerInterval(_ interval: Int64) -> [EquityPoint] {
                var out: [EquityPoint] = []
                for m in marks {
                    let bucket = { (t: Int64) in Int64((Double(t) / Double(interval)).rounded(.down)) }
                    if let last = out.last, bucket(last.time) == bucket(m.time) { out[out.count - 1] = m } else { out.append(m) }
                }
                return out
            }
            var interval: Int64 = 1000
            while lastPerInterval(interval).count > maxPoints { interval *= 2 }
            let curve = engine.report().curve
            #expect(curve == lastPerInterval(interval), "maxCurvePoints \(maxPoints)")
            #expect(Set(marks.map(\.equity)).count > 10)
        }
    }

    /// The recording path (plain, gzip, binary tape), the in-memory path and a second run give the same bytes.
    @Test func sameInputGivesByteIdenticalReports() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trades = syntheticTrades(count: 30_000)
        try writeRecording(trades, to: dir + "/s.jsonl")
        try writeRecording(trades, to: dir + "/s.jsonl.gz", perFrame: 7)
        let packed = try BinaryTape.pack(recording: dir + "/s.jsonl", to: dir + "/s.mstape")
        #expect(packed.trades == 30_000 && packed.verifiedTrades == 30_000)
        for name in Strategies.names {
            var c = BacktestConfig()
            c.feeBps = 7.5; c.latencyMs = 100
            let s = try Strategies.make(name, parameters: [])
            let a = try Backtest.run(path: dir + "/s.jsonl", strategy: s, config: c).report
            let b = try Backtest.run(path: dir + "/s.jsonl", strategy: try Strategies.make(name, parameters: []), config: c).report
            let g = try Backtest.run(path: dir + "/s.jsonl.gz", strategy: try Strategies.make(name, parameters: []), config: c).report
            let m = try Backtest.run(trades: trades, strategy: try Strategies.make(name, parameters: []), config: c).report
            let t = try Backtest.run(path: dir + "/s.mstape", strategy: try Strategies.make(name, parameters: []), config: c).report
            #expect(a.jsonBytes() == b.jsonBytes() && a.svg() == b.svg() && a.html() == b.html())
            #expect(a == g && a == m)
            #expect(a.jsonBytes() == t.jsonBytes(), "the tape gives the recording's report (\(name))")
            // Frames decoded on the engine's thread in every other turn, and none: the same report as
            // whatever split the threads' speeds gave above.
            for turns in [TapeReader.RawTurns.everyOther, .never] {
                let r = try Backtest.runFile(dir + "/s.jsonl", .auto, try Strategies.make(name, parameters: []), c, false, rawTurns: turns).report
                #expect(r.jsonBytes() == a.jsonBytes(), "\(name), \(turns)")
            }
            #expect(a.trades == 30_000 && a.fills > 0, "\(name)")
            let json = try JSONSerialization.jsonObject(with: Data(a.jsonBytes())) as! [String: Any]
            #expect(json["strategy"] as? String == name && (json["equity_curve"] as? [Any])?.isEmpty == false)
            #expect(a.curve.count <= c.maxCurvePoints && a.curve.map(\.time) == a.curve.map(\.time).sorted())
        }
        // A symbol filter keeps the same trades of the tape (by its symbol indexes) as of the recording (by text).
        var f = BacktestConfig()
        f.symbols = [trades[0].symbol, trades[1].symbol]
        let fj = try Backtest.run(path: dir + "/s.jsonl", strategy: try Strategies.make("breakout", parameters: []), config: f).report
        let ft = try Backtest.run(path: dir + "/s.mstape", strategy: try Strategies.make("breakout", parameters: []), config: f).report
        #expect(fj.jsonBytes() == ft.jsonBytes())
        #expect(fj.trades > 0 && fj.trades < 30_000 && Set(ft.symbols.map(\.symbol)) == f.symbols)
    }

    /// A strategy is shown a tape's trades as they were recorded: symbol, values and condition list of
    /// each, whichever list the previous trade of its symbol carried, and trades fed by value between
    /// runs of records find their own books.
    @Test func tapeRecordsReachTheStrategyAsTheirTrades() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lists: [[String]?] = [nil, ["1"], ["1", "12"], ["T"], nil]
        let trades = syntheticTrades(count: 5_000, symbols: ["AAPL", "MSFT", "BINANCE:BTCUSDT"]).enumerated().map { i, t in
            var t = t
            t.conditions = lists[(i * 7 + i / 3) % lists.count]
            return t
        }
        try writeRecording(trades, to: dir + "/c.jsonl")
        _ = try BinaryTape.pack(recording: dir + "/c.jsonl", to: dir + "/c.mstape")
        let tape = try BinaryTape(path: dir + "/c.mstape")
        var engine = try BacktestEngine(strategy: Recorder(latency: 0, tape: []), config: BacktestConfig())
        var expected: [Trade] = []
        var runs = 0
        try tape.forEachRecordRun(runSize: 64) { run in
            engine.process(run, of: tape)
            expected += run.map { tape.trade($0) }
            runs += 1
            if runs % 3 == 0 {
                let byValue = Trade(symbol: runs % 2 == 0 ? "MSFT" : "NFLX", price: 50, timestamp: expected.last!.timestamp, volume: 1, conditions: ["V"])
                engine.process(byValue)
                expected.append(byValue)
            }
        }
        #expect(runs > 10)
        #expect(engine.strategy.seen == expected)
        #expect(engine.strategy.seen.filter { $0.symbol != "NFLX" && !($0.symbol == "MSFT" && $0.conditions == ["V"]) } == trades)
        #expect(Set(trades.map { $0.conditions }).count == 4, "the recording holds every condition list")
    }

    @Test func symbolFilterAndFailures() throws {
        let trades = syntheticTrades(count: 1000)
        var c = BacktestConfig()
        c.symbols = ["AAPL"]
        let r = try Backtest.run(trades: trades, strategy: BuyAndHold(), config: c).report
        #expect(r.trades == trades.filter { $0.symbol == "AAPL" }.count)
        #expect(r.symbols.map(\.symbol) == ["AAPL"])
        #expect(throws: BacktestFailure("/nonexistent/x.jsonl: no such file")) {
            try Backtest.run(path: "/nonexistent/x.jsonl", strategy: BuyAndHold())
        }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not a header\n".utf8).write(to: URL(fileURLWithPath: dir + "/bad.jsonl"))
        #expect(throws: BacktestFailure.self) { try Backtest.run(path: dir + "/bad.jsonl", strategy: BuyAndHold()) }
    }

    /// Buy-and-hold: one fill at the first trade after the first, equity follows the last price.
    @Test func buyAndHoldBaseline() throws {
        let tape = [trade(1, 100, 1000), trade(2, 100, 1000), trade(3, 110, 1)]
        let r = try Backtest.run(trades: tape, strategy: BuyAndHold(), config: config(cash: 1000, feeBps: 10)).report
        let q = 1000 / (100 * 1.001)
        #expect(r.fills == 1 && close(r.symbols[0].position, q))
        #expect(close(r.finalEquity, 1000 - q * 100 * 0.001 + q * 10))
        #expect(r.roundTrips == 0 && r.winRate == nil && r.exposure == 0.5)
    }
}

/// A feed that delivers fixed trade frames, then ends.
struct FixedFeed: Feed {
    let frames: [[Trade]]
    init(_ frames: [[Trade]]) { self.frames = frames }
    var source: String { "test://" }
    func run(frames _: Bool, deliver: (FeedEvent) throws -> Void) async throws {
        try deliver(.connected(url: "test://"))
        for f in frames { try deliver(.trades(f)) }
    }
}

extension EngineTests {
    @Test func anyFeedRunsTheSameAsItsTrades() async throws {
        let trades = syntheticTrades(count: 5000)
        let frames = stride(from: 0, to: trades.count, by: 10).map { Array(trades[$0..<min($0 + 10, trades.count)]) }
        let live = try await Backtest.run(feed: FixedFeed(frames), strategy: Breakout(lookback: 2), config: config(feeBps: 1))
        let offline = try Backtest.run(trades: trades, strategy: Breakout(lookback: 2), config: config(feeBps: 1))
        #expect(live.report == offline.report && live.report.trades == 5000)
    }

    /// Built-in strategies typed as `any Strategy` take the specialized path and give the same report.
    @Test func existentialStrategiesRunLikeConcreteOnes() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeRecording(syntheticTrades(count: 5000), to: dir + "/s.jsonl")
        let any: any Strategy = try Strategies.make("vwap-reversion", parameters: ["entry-bps=10"])
        let a = try Backtest.run(path: dir + "/s.jsonl", strategy: any).report
        let b = try Backtest.run(path: dir + "/s.jsonl", strategy: VWAPReversion(entryBps: 10)).report
        #expect(a == b && a.fills > 0)
    }
}

extension EngineTests {
    /// Frames that do not decode fail the run naming their line, or are skipped and counted with `skipBad`,
    /// whichever thread decodes them.
    @Test func badFramesAnywhereInTheFile() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trades = syntheticTrades(count: 20_000, symbols: ["X"])
        let header = RecordingHeader(source: "tests", symbols: ["X"], startNs: 0, createdBy: "tests")
        let w = try RecordingWriter(path: dir + "/bad.jsonl", header: header)
        for (i, t) in trades.enumerated() {
            if i == 100 || i == 10_000 { try w.append(recvNs: t.timestamp * 1_000_000, frame: #"{"type":"trade","data":[{"s":"X"}]}"#) }
            try w.append(recvNs: t.timestamp * 1_000_000, frame: FinnhubCodec.encodeTrades([t]))
        }
        try w.close()
        #expect(throws: BacktestFailure.self) { try Backtest.run(path: dir + "/bad.jsonl", strategy: BuyAndHold()) }
        do {
            _ = try Backtest.run(path: dir + "/bad.jsonl", strategy: BuyAndHold())
        } catch {
            #expect(error.message.hasPrefix("bad.jsonl:102: frame does not decode"))
        }
        let r = try Backtest.run(path: dir + "/bad.jsonl", strategy: BuyAndHold(), skipBad: true)
        #expect(r.skipped == 2 && r.report.trades == 20_000)
        #expect(r.report == (try Backtest.run(trades: trades, strategy: BuyAndHold())).report)

        try w.close()
        var text = try String(contentsOfFile: dir + "/bad.jsonl", encoding: .utf8).split(separator: "\n")
        text.remove(at: 101)
        try (text.joined(separator: "\n") + "\n").write(toFile: dir + "/late.jsonl", atomically: true, encoding: .utf8)
        do {
            _ = try Backtest.run(path: dir + "/late.jsonl", strategy: BuyAndHold())
            Issue.record("a bad frame in the engine-decoded part did not fail the run")
        } catch {
            #expect(error.message.hasPrefix("late.jsonl:10002: frame does not decode"), "\(error)")
        }
    }
}
