import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline

/// Cash, per-symbol positions and the round-trip statistics of one run.
///
/// Contracts: cash changes only by fills (−signed quantity × price − fee). A position's average cost is the
/// volume-weighted price of the fills that opened or increased it; reducing fills realize
/// (price − average cost) × closed quantity × sign(position). A round trip runs from a flat position to the
/// next flat one (a fill that crosses zero closes one and opens the next at the fill price); its PnL is
/// realized PnL minus every fee paid during it, the crossing fill's fee going to the trip it closes.
/// There are no cash or margin checks: cash may go negative and positions may go short.
///
/// Only the engine that owns it mutates it, from the one thread running the engine, and no method
/// calls out while it modifies a property; its stored properties are therefore exempt from Swift's
/// dynamic exclusivity checks (`@exclusivity(unchecked)`), which cost more than the updates themselves
/// on the per-trade path.
public final class Portfolio {
    struct Book {
        var symbol: String
        var position = 0.0
        var averageCost = 0.0
        var realized = 0.0
        var fees = 0.0
        var fills = 0
        var bought = 0.0
        var sold = 0.0
        var lastPrice = 0.0
        var tripPnL = 0.0
        var openOrders = 0
    }

    public let initialCash: Double
    @exclusivity(unchecked) public private(set) var cash: Double
    @exclusivity(unchecked) var books: [Book] = []
    @exclusivity(unchecked) var index = SymbolIndex()
    /// Indices of books with a non-zero position, in opening order.
    @exclusivity(unchecked) private(set) var open: [Int] = []
    @exclusivity(unchecked) public private(set) var roundTrips = 0
    @exclusivity(unchecked) public private(set) var winningTrips = 0
    @exclusivity(unchecked) public private(set) var totalFees = 0.0
    @exclusivity(unchecked) public private(set) var fillCount = 0

    init(cash: Double) { initialCash = cash; self.cash = cash }

    @inline(__always) func slot(_ symbol: String) -> Int {
        let (i, isNew) = index.insert(symbol)
        if isNew { books.append(Book(symbol: symbol)) }
        return i
    }

    /// The book of the symbol traded last: lookups of it skip hashing.
    @exclusivity(unchecked) var current = -1

    @inline(__always) private func find(_ symbol: String) -> Int? {
        if current >= 0, books[current].symbol == symbol { return current }
        return index.index(of: symbol)
    }

    /// Signed quantity held in `symbol` (0 when never traded).
    public func position(_ symbol: String) -> Double { find(symbol).map { books[$0].position } ?? 0 }
    /// Signed quantity held in book `i` (0 when `i` names no book).
    @inline(__always) func position(book i: Int) -> Double { books.indices.contains(i) ? books[i].position : 0 }
    /// Average cost of the open position in `symbol` (0 when flat).
    public func averageCost(_ symbol: String) -> Double { find(symbol).map { books[$0].averageCost } ?? 0 }
    /// Last traded price seen for `symbol` (0 before its first trade).
    public func lastPrice(_ symbol: String) -> Double { find(symbol).map { books[$0].lastPrice } ?? 0 }
    /// Orders of `symbol` submitted and not yet completely filled.
    public func openOrders(_ symbol: String) -> Int { find(symbol).map { books[$0].openOrders } ?? 0 }
    /// Cash plus every position marked at its last traded price.
    public var equity: Double {
        if !equityCache.isNaN { return equityCache }
        var e = cash
        for i in open { e += books[i].position * books[i].lastPrice }
        equityCache = e
        return e
    }

    /// ``equity`` as last computed, or NaN once a fill or a new price of an open position changed it:
    /// the same sum, not a running one, so it is exact.
    @exclusivity(unchecked) private var equityCache = Double.nan

    /// Records the last traded price of book `i`.
    @inline(__always) func setLastPrice(_ price: Double, book i: Int) {
        if books[i].position != 0, books[i].lastPrice != price { equityCache = .nan }
        books[i].lastPrice = price
    }
    /// Whether any position is non-zero.
    public var isExposed: Bool { !open.isEmpty }

    func apply(_ fill: Fill, book i: Int) {
        equityCache = .nan
        let q = fill.side.sign * fill.quantity
        cash -= q * fill.price + fill.fee
        totalFees += fill.fee; fillCount += 1
        books[i].fees += fill.fee; books[i].fills += 1
        if fill.side == .buy { books[i].bought += fill.quantity } else { books[i].sold += fill.quantity }
        let p = books[i].position
        let scale = Swift.max(abs(p), abs(q))
        if p == 0 || (p > 0) == (q > 0) {
            if p == 0 { books[i].tripPnL = 0; open.append(i) }
            books[i].averageCost = (abs(p) * books[i].averageCost + abs(q) * fill.price) / (abs(p) + abs(q))
            books[i].position = p + q
            books[i].tripPnL -= fill.fee
            return
        }
        let closed = Swift.min(abs(q), abs(p))
        let pnl = closed * (fill.price - books[i].averageCost) * (p > 0 ? 1 : -1)
        books[i].realized += pnl
        books[i].tripPnL += pnl - fill.fee
        var newPosition = p + q
        if abs(newPosition) <= scale * 1e-12 { newPosition = 0 }
        books[i].position = newPosition
        if newPosition == 0 || (newPosition > 0) != (p > 0) {
            roundTrips += 1
            if books[i].tripPnL > 0 { winningTrips += 1 }
            books[i].tripPnL = 0
            if newPosition == 0 {
                books[i].averageCost = 0
                open.removeAll { $0 == i }
            } else {
                books[i].averageCost = fill.price
            }
        }
    }
}
