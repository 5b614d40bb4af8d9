import Feed

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
