import MarketData
import Recording

/// Produces trades for one connection. `advance` returns the trades in the next
/// `milliseconds` of virtual time; the server still filters them by the connection's subscriptions.
public protocol TradeSource: Sendable {
    var now: Int64 { get }
    mutating func add(symbol: String)
    mutating func remove(symbol: String)
    mutating func advance(byMilliseconds milliseconds: Int64) -> [Trade]
}

/// Builds a connection's source at its first subscription: (subscribed symbols, start time in Unix ms).
public typealias TradeSourceFactory = @Sendable (_ symbols: [String], _ startMilliseconds: Int64) -> any TradeSource

extension SyntheticMarket: TradeSource {}
extension RecordedTradeSource: TradeSource {}
