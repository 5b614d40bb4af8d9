import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline

/// `key=value` strategy parameters; every key must be read by the strategy, so typos fail loudly.
public struct StrategyParameters: Sendable {
    private var values: [String: String] = [:]
    private var read: Set<String> = []

    /// Parses `key=value` assignments; a repeated key keeps the last value.
    public init(_ assignments: [String]) throws(BacktestFailure) {
        for a in assignments {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else { throw BacktestFailure("parameter \"\(a)\" is not key=value") }
            values[String(a[..<eq])] = String(a[a.index(after: eq)...])
        }
    }

    /// The value of `key` as a finite number, or `fallback` when absent.
    public mutating func double(_ key: String, _ fallback: Double) throws(BacktestFailure) -> Double {
        try optionalDouble(key) ?? fallback
    }

    public mutating func optionalDouble(_ key: String) throws(BacktestFailure) -> Double? {
        read.insert(key)
        guard let text = values[key] else { return nil }
        guard let v = Double(text), v.isFinite else { throw BacktestFailure("parameter \(key)=\(text) is not a number") }
        return v
    }

    /// Throws for keys no strategy read, naming the ones it accepts.
    public func finish(_ strategy: String) throws(BacktestFailure) {
        let unknown = values.keys.filter { !read.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw BacktestFailure("\(strategy) has no parameter \(unknown.joined(separator: ", ")) (it takes \(read.sorted().joined(separator: ", ")))")
        }
    }
}

/// The built-in strategies by name.
public enum Strategies {
    public static let names = ["buy-and-hold", "vwap-reversion", "breakout"]

    /// A built-in strategy configured from `key=value` parameters.
    public static func make(_ name: String, parameters: [String]) throws(BacktestFailure) -> any Strategy {
        var p = try StrategyParameters(parameters)
        let s: any Strategy
        switch name {
        case "buy-and-hold": s = try BuyAndHold(&p)
        case "vwap-reversion": s = try VWAPReversion(&p)
        case "breakout": s = try Breakout(&p)
        default: throw BacktestFailure("unknown strategy \"\(name)\" (built in: \(names.joined(separator: ", ")))")
        }
        try p.finish(name)
        return s
    }
}

/// Per-symbol strategy state; looking up the symbol of the previous call skips hashing.
struct PerSymbol<State> {
    private var index = SymbolIndex()
    private var states: [State] = []
    private var lastSymbol = ""
    private var last = -1

    @inline(__always) mutating func find(_ symbol: String) -> Int? {
        if last >= 0, symbol == lastSymbol { return last }
        guard let i = index.index(of: symbol) else { return nil }
        last = i; lastSymbol = symbol
        return i
    }

    mutating func findOrAdd(_ symbol: String, _ make: () -> State) -> Int {
        if let i = find(symbol) { return i }
        states.append(make()); return index.insert(symbol).index
    }

    /// ``find(_:)`` by the engine's slot of `symbol` (``StrategyContext/slot``), which spares hashing
    /// the symbol after its first time (``SymbolIndex/index(of:slot:)``: a strategy value moved to
    /// another engine, which numbers symbols its own way, still finds the right state).
    @inline(__always) mutating func find(_ symbol: String, slot: Int) -> Int? { index.index(of: symbol, slot: slot) }

    /// Reads borrow the state in place: a copy would retain and release every array it holds.
    subscript(i: Int) -> State {
        _read { yield states[i] }
        _modify { yield &states[i] }
    }
}

/// Order size: `quantity` when set, else `fraction` of cash net of the fee at `price`; nil when not positive.
@inline(__always) func orderSize(quantity: Double?, fraction: Double, price: Double, _ ctx: StrategyContext) -> Double? {
    let q = quantity ?? ctx.portfolio.cash * fraction / (price * (1 + ctx.feeBps / 10_000))
    return q.isFinite && q > 0 ? q : nil
}

/// Baseline: one market buy at the first trade (of the first symbol seen), held to the end.
/// Parameters: `fraction` of cash (default 1, net of fees), or a fixed `qty`.
public struct BuyAndHold: Strategy {
    public var fraction: Double
    public var quantity: Double?
    private var done = false

    public init(fraction: Double = 1, quantity: Double? = nil) { self.fraction = fraction; self.quantity = quantity }

    init(_ p: inout StrategyParameters) throws(BacktestFailure) {
        self.init(fraction: try p.double("fraction", 1), quantity: try p.optionalDouble("qty"))
    }

    public var name: String { "buy-and-hold" }
    public var parameters: [(String, String)] {
        quantity.map { [("qty", JSONOutput.number($0))] } ?? [("fraction", JSONOutput.number(fraction))]
    }

    public mutating func onTrade(_ trade: Trade, _ ctx: StrategyContext) -> [Order] {
        if done { return [] }
        done = true
        guard let q = orderSize(quantity: quantity, fraction: fraction, price: trade.price, ctx) else { return [] }
        return [.market(trade.symbol, .buy, q)]
    }
}

/// VWAP mean reversion on the latest closed window of each symbol: when flat, buy (market) once a trade prints at or
/// below VWAP × (1 − `entry-bps`/10⁴); when long, sell everything once a trade prints at or above
/// VWAP × (1 + `exit-bps`/10⁴), or at or below entry × (1 − `stop-bps`/10⁴) when `stop-bps` > 0.
/// Parameters: `entry-bps` (default 20), `exit-bps` (0), `stop-bps` (0 = none), `fraction` (1) or `qty`.
public struct VWAPReversion: Strategy {
    struct State { var vwap: Double?; var busy = false; var entry = 0.0 }
    public var entryBps: Double, exitBps: Double, stopBps: Double, fraction: Double
    public var quantity: Double?
    private var states = PerSymbol<State>()

    public init(entryBps: Double = 20, exitBps: Double = 0, stopBps: Double = 0, fraction: Double = 1, quantity: Double? = nil) {
        self.entryBps = entryBps; self.exitBps = exitBps; self.stopBps = stopBps; self.fraction = fraction; self.quantity = quantity
    }

    init(_ p: inout StrategyParameters) throws(BacktestFailure) {
        self.init(entryBps: try p.double("entry-bps", 20), exitBps: try p.double("exit-bps", 0), stopBps: try p.double("stop-bps", 0),
                  fraction: try p.double("fraction", 1), quantity: try p.optionalDouble("qty"))
    }

    public var name: String { "vwap-reversion" }
    public var parameters: [(String, String)] {
        [("entry-bps", JSONOutput.number(entryBps)), ("exit-bps", JSONOutput.number(exitBps)), ("stop-bps", JSONOutput.number(stopBps))]
            + (quantity.map { [("qty", JSONOutput.number($0))] } ?? [("fraction", JSONOutput.number(fraction))])
    }

    public mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] {
        guard let v = w.vwap else { return [] }
        let i = states.findOrAdd(w.symbol) { State() }
        states[i].vwap = v
        return []
    }

    public mutating func onFill(_ fill: Fill, _ ctx: StrategyContext) -> [Order] {
        guard let i = states.find(fill.symbol) else { return [] }
        if fill.remaining == 0 { states[i].busy = false }
        if fill.side == .buy { states[i].entry = fill.price }
        return []
    }

    public mutating func onTrade(_ trade: Trade, _ ctx: StrategyContext) -> [Order] {
        guard let i = states.find(trade.symbol, slot: ctx.slot), let vwap = states[i].vwap, !states[i].busy else { return [] }
        let position = ctx.position
        if position == 0 {
            guard trade.price <= vwap * (1 - entryBps / 10_000),
                  let q = orderSize(quantity: quantity, fraction: fraction, price: trade.price, ctx) else { return [] }
            states[i].busy = true
            return [.market(trade.symbol, .buy, q)]
        }
        guard position > 0 else { return [] }
        let stop = stopBps > 0 && trade.price <= states[i].entry * (1 - stopBps / 10_000)
        guard stop || trade.price >= vwap * (1 + exitBps / 10_000) else { return [] }
        states[i].busy = true
        return [.market(trade.symbol, .sell, position)]
    }
}

/// Momentum breakout (Donchian channel over closed windows): when flat, buy (market) once a trade prints above the
/// highest price of the last `lookback` closed windows and the latest window's change is ≥ `min-change-pct`; when
/// long, sell everything once a trade prints below the lowest price of those windows.
/// Parameters: `lookback` windows (default 6), `min-change-pct` (0), `fraction` (1) or `qty`.
public struct Breakout: Strategy {
    struct State { var highs: [Double] = []; var lows: [Double] = []; var high = 0.0; var low = 0.0; var change = 0.0; var busy = false }
    public var lookback: Int, minChangePct: Double, fraction: Double
    public var quantity: Double?
    private var states = PerSymbol<State>()

    public init(lookback: Int = 6, minChangePct: Double = 0, fraction: Double = 1, quantity: Double? = nil) {
        self.lookback = max(1, lookback); self.minChangePct = minChangePct; self.fraction = fraction; self.quantity = quantity
    }

    init(_ p: inout StrategyParameters) throws(BacktestFailure) {
        let n = try p.double("lookback", 6)
        guard n >= 1, n <= 10_000, n == n.rounded() else { throw BacktestFailure("lookback must be a whole number of windows, 1…10000") }
        self.init(lookback: Int(n), minChangePct: try p.double("min-change-pct", 0), fraction: try p.double("fraction", 1),
                  quantity: try p.optionalDouble("qty"))
    }

    public var name: String { "breakout" }
    public var parameters: [(String, String)] {
        [("lookback", String(lookback)), ("min-change-pct", JSONOutput.number(minChangePct))]
            + (quantity.map { [("qty", JSONOutput.number($0))] } ?? [("fraction", JSONOutput.number(fraction))])
    }

    public mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] {
        let i = states.findOrAdd(w.symbol) { State() }
        states[i].highs.append(w.max); states[i].lows.append(w.min)
        if states[i].highs.count > lookback { states[i].highs.removeFirst(); states[i].lows.removeFirst() }
        states[i].high = states[i].highs.max()!; states[i].low = states[i].lows.min()!
        states[i].change = w.changePct ?? 0
        return []
    }

    public mutating func onFill(_ fill: Fill, _ ctx: StrategyContext) -> [Order] {
        if fill.remaining == 0, let i = states.find(fill.symbol) { states[i].busy = false }
        return []
    }

    public mutating func onTrade(_ trade: Trade, _ ctx: StrategyContext) -> [Order] {
        guard let i = states.find(trade.symbol, slot: ctx.slot), states[i].highs.count >= lookback, !states[i].busy else { return [] }
        let position = ctx.position
        if position == 0 {
            guard trade.price > states[i].high, states[i].change >= minChangePct,
                  let q = orderSize(quantity: quantity, fraction: fraction, price: trade.price, ctx) else { return [] }
            states[i].busy = true
            return [.market(trade.symbol, .buy, q)]
        }
        guard position > 0, trade.price < states[i].low else { return [] }
        states[i].busy = true
        return [.market(trade.symbol, .sell, position)]
    }
}
