import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline

/// A failure the `backtest` command reports as one line (`backtest: <message>`) before exiting non-zero.
public struct BacktestFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Settings of the simulated exchange, the portfolio and the aggregator.
public struct BacktestConfig: Sendable {
    public var initialCash = 100_000.0
    /// Fee on every fill, in basis points of its notional.
    public var feeBps = 0.0
    /// An order submitted at event time t becomes active at t + latencyMs.
    public var latencyMs: Int64 = 0
    /// The pipeline aggregator's geometry; lateness 0 by default since a recording is replayed in order.
    public var window = WindowConfig(windowMs: 60_000, hopMs: 10_000, allowedLatenessMs: 0, idleGraceMs: 0)
    /// Only trades of these symbols reach the exchange, the aggregator and the strategy; nil means all.
    public var symbols: Set<String>?
    /// Windows come from outside (``BacktestEngine/receive(_:)``, e.g. the `aggregated-metrics` topic) instead of
    /// the engine's own aggregator.
    public var externalWindows = false
    /// Orders go to an outside exchange (``BacktestEngine/takeOutgoingOrders()``, e.g. `sim-exchange` over its
    /// WebSocket) and its fills come back through ``BacktestEngine/applyExternalFill(_:)``, instead of the
    /// in-process simulated exchange.
    public var externalFills = false
    /// The equity curve keeps at most this many points (sampling interval doubles when full).
    public var maxCurvePoints = 2048
    public init() {}
}

/// One point of the equity curve: the last equity of a sampling interval.
public struct EquityPoint: Sendable, Hashable {
    public var time: Int64
    public var equity: Double
    public init(time: Int64, equity: Double) { self.time = time; self.equity = equity }
}

/// The event-time loop shared by backtests and paper trading.
///
/// For each trade, in this order: the clock advances to max(now, trade time); the simulated exchange matches the
/// symbol's active orders against the trade and delivers the fills; the pipeline's ``WindowAggregator`` takes the
/// trade and the windows it closed are delivered; equity is marked to the trade's price; the strategy sees the
/// trade. Orders returned by any callback become active at now + latency, so they can never fill against the
/// trade being processed. Output depends only on the trade sequence.
public struct BacktestEngine<S: Strategy> {
    public private(set) var strategy: S
    public let config: BacktestConfig
    public let portfolio: Portfolio
    private var aggregator: WindowAggregator
    private var exchange: TapeMatcher
    private var nextOrderID = 1
    /// Event time now: the newest trade timestamp seen (ms).
    public private(set) var now: Int64 {
        get { context.now }
        set { context.now = newValue }
    }
    public private(set) var firstTime: Int64?
    public private(set) var tradesProcessed = 0
    public private(set) var ordersSubmitted = 0
    public private(set) var ordersRejected = 0
    public private(set) var windowsDelivered = 0
    private var exposedMs: Int64 = 0
    private var peak: Double
    private var maxDrawdown = 0.0
    private var maxDrawdownPct = 0.0
    /// The equity curve's points before the current bucket; the current bucket's point is `latest`,
    /// kept apart so that a mark within the bucket writes two numbers instead of changing the array.
    private var curve: [EquityPoint] = []
    private var latest: EquityPoint?
    private var curveInterval: Int64 = 1000
    /// The curve's last bucket and its event times `[bucketStart, bucketEnd)`, so a mark within it divides nothing.
    private var curveBucket: Int64 = .min, bucketStart: Int64 = .max, bucketEnd: Int64 = .min
    private var windowBuffer: [WindowMetrics] = []
    private var received: [WindowMetrics] = []
    private var outgoing: [(id: Int, order: Order)] = []
    private var fillBuffer: [Fill] = []
    private var lastSymbol = ""
    private var lastSlot = -1

    public init(strategy: S, config: BacktestConfig = BacktestConfig()) throws(BacktestFailure) {
        guard config.initialCash.isFinite, config.initialCash > 0 else { throw BacktestFailure("cash must be a positive number") }
        guard config.feeBps.isFinite, config.feeBps >= 0 else { throw BacktestFailure("fee must be a number of basis points >= 0") }
        guard config.latencyMs >= 0 else { throw BacktestFailure("latency must be >= 0 ms") }
        guard config.maxCurvePoints >= 2 else { throw BacktestFailure("the equity curve needs at least 2 points") }
        do { aggregator = try WindowAggregator(config: config.window) } catch { throw BacktestFailure("\(error)") }
        self.strategy = strategy
        self.config = config
        portfolio = Portfolio(cash: config.initialCash)
        exchange = TapeMatcher(feeBps: config.feeBps, latencyMs: config.latencyMs)
        peak = config.initialCash
        context = StrategyContext(now: .min, portfolio: portfolio, feeBps: config.feeBps)
    }

    /// What the strategy is handed; it holds the clock (`now`), so a call borrows it instead of building one.
    private var context: StrategyContext

    /// Feeds trades in order; see the type's contract.
    public mutating func process(_ trades: [Trade]) {
        trades.withUnsafeBufferPointer { buffer in for i in buffer.indices { process(buffer[i]) } }
    }

    /// Feeds the trades of `records` (of `tape`, their indexes checked) in order, as ``process(_:)-([Trade])``
    /// does. A record's symbol index names the same symbol throughout the tape, so it maps straight to
    /// the symbol's portfolio slot instead of the symbol being looked up by its text.
    public mutating func process(_ records: [BinaryTape.Record], of tape: BinaryTape) {
        // The tables are read once, not once per record (each read of a class's array retains it).
        let symbols = tape.symbols, conditionLists = tape.conditionLists
        if slotTape !== tape { slotTape = tape; slotByID.removeAll(); tradeByID.removeAll() }
        // Each symbol's trade is built once and its fields overwritten in place, record by record,
        // instead of a trade being built and destroyed per record. The array leaves `self` for the
        // loop, so that the loop can write its elements while the per-trade step changes `self` (the
        // step still gets each trade as a copy: its symbol and conditions retained for the call).
        var trades = tradeByID
        tradeByID = []
        defer { tradeByID = trades }
        // Here the book is set by slot; ``process(_:)-(Trade)`` finds its own again by the symbol.
        lastSlot = -1
        while trades.count < symbols.count { trades.append((Trade(symbol: symbols[trades.count], price: 0, timestamp: 0, volume: 0), 0)) }
        trades.withUnsafeMutableBufferPointer { trades in
            records.withUnsafeBufferPointer { buffer in
                for r in buffer {
                    guard r.price.isFinite, r.price > 0 else { continue }
                    let id = Int(r.symbol)
                    if id >= slotByID.count { slotByID.append(contentsOf: repeatElement(Self.unknownSlot, count: id + 1 - slotByID.count)) }
                    var s = slotByID[id]
                    if s == Self.unknownSlot {
                        s = admittedSlot(symbols[id]) ?? Self.filteredOut
                        slotByID[id] = s
                    }
                    guard s >= 0 else { continue }
                    if trades[id].conditions != r.conditions {
                        trades[id].conditions = r.conditions
                        trades[id].trade.conditions = conditionLists[Int(r.conditions)]
                    }
                    trades[id].trade.price = r.price
                    trades[id].trade.timestamp = r.timestamp
                    trades[id].trade.volume = r.volume
                    portfolio.current = s
                    process(trades[id].trade, slot: s)
                }
            }
        }
    }

    /// ``process(_:of:)``'s trade of each symbol index, with the index of its condition list (0: none).
    private var tradeByID: [(trade: Trade, conditions: UInt32)] = []
    /// ``process(_:of:)``'s map from a tape's symbol indexes to portfolio slots.
    private var slotByID: [Int] = []
    /// The tape `slotByID` is of.
    private var slotTape: BinaryTape?
    private static var unknownSlot: Int { -1 }
    private static var filteredOut: Int { -2 }

    /// Feeds one trade; see the type's contract. Trades with a non-finite or non-positive price are ignored.
    public mutating func process(_ trade: Trade) {
        guard trade.price.isFinite, trade.price > 0 else { return }
        let s: Int
        if lastSlot >= 0, trade.symbol == lastSymbol { s = lastSlot } else {
            guard let admitted = admittedSlot(trade.symbol) else { return }
            s = admitted
            lastSymbol = trade.symbol; lastSlot = s
            portfolio.current = s
        }
        process(trade, slot: s)
    }

    /// The portfolio slot of `symbol` (created at its first trade), or nil when the symbol filter leaves it out.
    private func admittedSlot(_ symbol: String) -> Int? {
        if let wanted = config.symbols, !wanted.contains(symbol) { return nil }
        return portfolio.slot(symbol)
    }

    /// ``process(_:)-(Trade)`` for a trade with a finite positive price once its portfolio slot `s` is
    /// known (and is the current one).
    @inline(__always) private mutating func process(_ trade: Trade, slot s: Int) {
        tradesProcessed += 1
        if firstTime == nil { firstTime = trade.timestamp; now = trade.timestamp }
        if trade.timestamp > now {
            if portfolio.isExposed { exposedMs += trade.timestamp - now }
            now = trade.timestamp
        }
        if exchange.openOrders > 0, portfolio.books[s].openOrders > 0 { match(trade, s) }
        if !config.externalWindows { aggregator.add(trade, callerSlot: s, into: &windowBuffer) } else if !received.isEmpty { releaseReceived() }
        if !windowBuffer.isEmpty {
            for w in windowBuffer {
                windowsDelivered += 1
                context.slot = w.symbol == trade.symbol ? s : knownSlot(w.symbol)
                let orders = strategy.onWindow(w, context)
                if !orders.isEmpty { submit(orders) }
            }
            windowBuffer.removeAll(keepingCapacity: true)
        }
        portfolio.setLastPrice(trade.price, book: s)
        mark()
        context.slot = s
        let orders = strategy.onTrade(trade, context)
        if !orders.isEmpty { submit(orders) }
    }

    /// Takes a window computed elsewhere (with ``BacktestConfig/externalWindows``). A window whose end the clock
    /// has reached is delivered at once; a later one is held back until a trade moves the clock to its end, and
    /// delivered before the strategy sees that trade (windows due together by (end, symbol)).
    public mutating func receive(_ window: WindowMetrics) {
        guard window.windowEnd <= now, firstTime != nil else { received.append(window); return }
        windowsDelivered += 1
        context.slot = knownSlot(window.symbol)
        let orders = strategy.onWindow(window, context)
        if !orders.isEmpty { submit(orders) }
    }

    private mutating func releaseReceived() {
        var due: [WindowMetrics] = []
        let now = now
        received.removeAll { w in
            guard w.windowEnd <= now else { return false }
            due.append(w)
            return true
        }
        windowBuffer = due.sorted { $0.windowEnd != $1.windowEnd ? $0.windowEnd < $1.windowEnd : $0.symbol < $1.symbol }
    }

    /// With ``BacktestConfig/externalFills``: the orders submitted since the last call, with their ids, in order.
    public mutating func takeOutgoingOrders() -> [(id: Int, order: Order)] {
        defer { outgoing.removeAll() }
        return outgoing
    }

    /// With ``BacktestConfig/externalFills``: applies a fill reported by the outside exchange (its `orderID` one
    /// of ours) to the portfolio and delivers it to the strategy.
    public mutating func applyExternalFill(_ fill: Fill) {
        let s = portfolio.slot(fill.symbol)
        if portfolio.books[s].lastPrice == 0 { portfolio.setLastPrice(fill.price, book: s) }
        portfolio.apply(fill, book: s)
        if fill.remaining == 0 { portfolio.books[s].openOrders -= 1 }
        if firstTime != nil { mark() }
        context.slot = s
        let orders = strategy.onFill(fill, context)
        if !orders.isEmpty { submit(orders) }
    }

    /// Live mode: closes windows by the wall clock (``WindowAggregator/closeIdle(nowMs:)``) and delivers them.
    public mutating func closeIdle(wallMs: Int64) {
        guard !config.externalWindows else { return }
        for w in aggregator.closeIdle(nowMs: wallMs) {
            windowsDelivered += 1
            context.slot = knownSlot(w.symbol)
            let orders = strategy.onWindow(w, context)
            if !orders.isEmpty { submit(orders) }
        }
    }

    /// The portfolio's slot of `symbol`, or −1 while it has no book (a window from outside).
    private func knownSlot(_ symbol: String) -> Int { portfolio.index.index(of: symbol) ?? -1 }

    private mutating func match(_ trade: Trade, _ s: Int) {
        exchange.match(trade, into: &fillBuffer)
        guard !fillBuffer.isEmpty else { return }
        let fills = fillBuffer
        fillBuffer.removeAll(keepingCapacity: true)
        portfolio.setLastPrice(trade.price, book: s)
        for f in fills {
            portfolio.apply(f, book: s)
            if f.remaining == 0 { portfolio.books[s].openOrders -= 1 }
            context.slot = s
            let orders = strategy.onFill(f, context)
            if !orders.isEmpty { submit(orders) }
        }
    }

    private mutating func submit(_ orders: [Order]) {
        for o in orders {
            if config.externalFills {
                guard TapeMatcher.isValid(o) else { ordersRejected += 1; continue }
                outgoing.append((nextOrderID, o))
            } else {
                guard exchange.submit(o, id: nextOrderID, now: now) else { ordersRejected += 1; continue }
            }
            portfolio.books[portfolio.slot(o.symbol)].openOrders += 1
            nextOrderID += 1; ordersSubmitted += 1
        }
    }

    private mutating func mark() {
        let equity = portfolio.equity
        if equity > peak { peak = equity }
        let dd = peak - equity
        if dd > maxDrawdown { maxDrawdown = dd }
        if peak > 0, dd / peak > maxDrawdownPct { maxDrawdownPct = dd / peak }
        var sameBucket = now >= bucketStart && now < bucketEnd
        if !sameBucket {
            let bucket = Self.floorDiv(now, curveInterval)
            sameBucket = bucket == curveBucket
            setBucket(bucket)
        }
        let point = EquityPoint(time: now, equity: equity)
        if sameBucket, latest != nil {
            latest = point
            return
        }
        if let done = latest { curve.append(done) }
        latest = point
        if curve.count + 1 > config.maxCurvePoints {
            curve.append(point)
            coarsen()
            latest = curve.removeLast()
        }
    }

    /// Doubles the sampling interval, keeping the last point of each new interval.
    private mutating func coarsen() {
        curveInterval *= 2
        var out: [EquityPoint] = []
        out.reserveCapacity(curve.count / 2 + 1)
        for p in curve {
            if let last = out.last, Self.floorDiv(last.time, curveInterval) == Self.floorDiv(p.time, curveInterval) {
                out[out.count - 1] = p
            } else { out.append(p) }
        }
        curve = out
        setBucket(Self.floorDiv(now, curveInterval))
    }

    private mutating func setBucket(_ bucket: Int64) {
        curveBucket = bucket
        // Wrapping arithmetic: a bucket at the ends of Int64 gets an empty range and is divided for each mark.
        bucketStart = bucket &* curveInterval
        bucketEnd = bucketStart &+ curveInterval
    }

    @inline(__always) static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The report as of now. Deterministic: depends only on the trades processed and the configuration.
    public func report() -> BacktestReport {
        let equity = portfolio.equity
        let first = firstTime ?? 0
        let span = firstTime == nil ? 0 : now - first
        var symbols: [SymbolReport] = []
        for b in portfolio.books {
            symbols.append(SymbolReport(symbol: b.symbol, position: b.position, averageCost: b.averageCost, lastPrice: b.lastPrice,
                                        realizedPnL: b.realized, unrealizedPnL: b.position * (b.lastPrice - b.averageCost),
                                        fees: b.fees, fills: b.fills, bought: b.bought, sold: b.sold, openOrders: b.openOrders))
        }
        symbols.sort { $0.symbol < $1.symbol }
        return BacktestReport(
            strategy: strategy.name, parameters: strategy.parameters.map { "\($0.0)=\($0.1)" },
            initialCash: portfolio.initialCash, feeBps: config.feeBps, latencyMs: config.latencyMs,
            windowMs: config.window.windowMs, hopMs: config.window.hopMs,
            trades: tradesProcessed, firstTime: first, lastTime: firstTime == nil ? 0 : now, spanMs: span,
            windows: windowsDelivered, orders: ordersSubmitted, rejectedOrders: ordersRejected,
            fills: portfolio.fillCount, roundTrips: portfolio.roundTrips, winningTrips: portfolio.winningTrips,
            finalEquity: equity, cash: portfolio.cash, fees: portfolio.totalFees,
            maxDrawdown: maxDrawdown, maxDrawdownPct: maxDrawdownPct * 100,
            exposure: span > 0 ? Double(exposedMs) / Double(span) : 0,
            symbols: symbols, curve: latest.map { curve + [$0] } ?? curve)
    }
}
