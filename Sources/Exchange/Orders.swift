import MarketData
/// Buy or sell.
public enum Side: String, Sendable, Hashable {
    case buy, sell
    /// +1 for buy, −1 for sell.
    public var sign: Double { self == .buy ? 1 : -1 }
}

/// How an order may fill; see docs/BACKTEST.md for the fill model.
public enum OrderType: Sendable, Hashable {
    /// Fills at the prices of the next trades once active, walking their volume.
    case market
    /// Buy fills only at trades strictly below the limit, sell strictly above; always at the limit price.
    case limit(Double)
}

/// An order a strategy returns. `quantity` must be finite and > 0; invalid orders are rejected and counted.
public struct Order: Sendable, Hashable {
    public var symbol: String
    public var side: Side
    public var quantity: Double
    public var type: OrderType

    public init(symbol: String, side: Side, quantity: Double, type: OrderType = .market) {
        self.symbol = symbol; self.side = side; self.quantity = quantity; self.type = type
    }

    public static func market(_ symbol: String, _ side: Side, _ quantity: Double) -> Order {
        Order(symbol: symbol, side: side, quantity: quantity, type: .market)
    }

    public static func limit(_ symbol: String, _ side: Side, _ quantity: Double, at price: Double) -> Order {
        Order(symbol: symbol, side: side, quantity: quantity, type: .limit(price))
    }
}

/// One execution against one trade of the tape.
public struct Fill: Sendable, Hashable {
    /// The engine's id of the order (1, 2, … in submission order).
    public var orderID: Int
    public var symbol: String
    public var side: Side
    public var quantity: Double
    public var price: Double
    /// quantity × price × feeBps / 10 000, paid in cash.
    public var fee: Double
    /// Event time of the trade that filled it (ms).
    public var timestamp: Int64
    /// Quantity of the order still open after this fill; 0 when the order is done.
    public var remaining: Double

    public init(orderID: Int, symbol: String, side: Side, quantity: Double, price: Double, fee: Double, timestamp: Int64, remaining: Double) {
        self.orderID = orderID; self.symbol = symbol; self.side = side; self.quantity = quantity
        self.price = price; self.fee = fee; self.timestamp = timestamp; self.remaining = remaining
    }
}

/// The simulated exchange's fill model (docs/BACKTEST.md), shared by the backtest engine and `sim-exchange`:
/// orders wait per symbol, become active `latencyMs` after submission, and fill against the tape.
///
/// - Market orders fill at the prices of the next trades of their symbol with time ≥ activation, consuming each
///   trade's volume ("walking the tape"); a trade with volume 0 fills the rest.
/// - Limit orders fill only at trades strictly through the limit (buy below, sell above), at the limit price,
///   for at most the trade's volume.
/// - Orders share a trade's volume in submission order. Fees: quantity × price × feeBps / 10 000.
public struct TapeMatcher: Sendable {
    struct Pending: Sendable {
        var id: Int
        var side: Side
        var type: OrderType
        var quantity: Double
        var remaining: Double
        var activeAt: Int64
    }

    public let feeBps: Double
    public let latencyMs: Int64
    private var pending: [[Pending]] = []
    private var index: [String: Int] = [:]
    private var lastSymbol = ""
    private var last = -1
    /// Orders submitted and not completely filled.
    public private(set) var openOrders = 0

    public init(feeBps: Double = 0, latencyMs: Int64 = 0) { self.feeBps = feeBps; self.latencyMs = latencyMs }

    /// Whether `order` has a positive finite quantity (and a positive finite limit).
    public static func isValid(_ order: Order) -> Bool {
        guard order.quantity.isFinite, order.quantity > 0 else { return false }
        if case .limit(let p) = order.type { return p.isFinite && p > 0 }
        return true
    }

    @inline(__always) private mutating func slot(_ symbol: String, create: Bool) -> Int? {
        if last >= 0, symbol == lastSymbol { return last }
        if let i = index[symbol] { last = i; lastSymbol = symbol; return i }
        guard create else { return nil }
        pending.append([]); index[symbol] = pending.count - 1
        return pending.count - 1
    }

    /// Queues a valid order under `id`, active from `now + latencyMs`; false (and nothing queued) for an invalid one.
    @discardableResult
    public mutating func submit(_ order: Order, id: Int, now: Int64) -> Bool {
        guard Self.isValid(order), let s = slot(order.symbol, create: true) else { return false }
        pending[s].append(Pending(id: id, side: order.side, type: order.type, quantity: order.quantity, remaining: order.quantity,
                                  activeAt: now &+ latencyMs))
        openOrders += 1
        return true
    }

    /// Matches `trade` against its symbol's active orders, appending the fills to `fills` in submission order.
    @inline(__always)
    public mutating func match(_ trade: Trade, into fills: inout [Fill]) {
        guard openOrders > 0, let s = slot(trade.symbol, create: false), !pending[s].isEmpty else { return }
        var available = trade.volume > 0 ? trade.volume : .infinity
        var k = 0
        while k < pending[s].count, available > 0 {
            let o = pending[s][k]
            guard o.activeAt <= trade.timestamp else { k += 1; continue }
            let price: Double
            switch o.type {
            case .market: price = trade.price
            case .limit(let limit):
                guard o.side == .buy ? trade.price < limit : trade.price > limit else { k += 1; continue }
                price = limit
            }
            let q = Swift.min(o.remaining, available)
            available -= q
            var remaining = o.remaining - q
            if remaining <= o.quantity * 1e-12 { remaining = 0 }
            fills.append(Fill(orderID: o.id, symbol: trade.symbol, side: o.side, quantity: q, price: price,
                              fee: q * price * feeBps / 10_000, timestamp: trade.timestamp, remaining: remaining))
            if remaining == 0 {
                pending[s].remove(at: k)
                openOrders -= 1
            } else {
                pending[s][k].remaining = remaining; k += 1
            }
        }
    }
}
