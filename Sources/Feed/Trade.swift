/// One executed trade, as Finnhub reports it.
///
/// `timestamp` is the trade time in Unix milliseconds (Finnhub's `t`). `volume` may be
/// fractional (crypto) and is `0` for price updates from venues that report no size.
/// `conditions` is `nil` where the venue sends `null` (crypto) and an array otherwise.
public struct Trade: Sendable, Hashable {
    public var symbol: String
    public var price: Double
    public var timestamp: Int64
    public var volume: Double
    public var conditions: [String]?

    public init(symbol: String, price: Double, timestamp: Int64, volume: Double, conditions: [String]? = nil) {
        self.symbol = symbol
        self.price = price
        self.timestamp = timestamp
        self.volume = volume
        self.conditions = conditions
    }
}
