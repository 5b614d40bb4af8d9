import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline

/// What a strategy may look at when called: the engine clock and the portfolio as of now.
public struct StrategyContext {
    /// Event time now (ms): the newest trade timestamp seen. Nothing later has been delivered.
    public internal(set) var now: Int64
    /// Positions, cash and open orders as of now.
    public let portfolio: Portfolio
    /// The simulated exchange's fee, so a strategy can size orders net of it.
    public let feeBps: Double
    /// The engine's number for the symbol of the trade, window or fill being delivered: 0, 1, 2… in
    /// order of first appearance (traded or ordered), the same for the whole run, so per-symbol state
    /// can be looked up by it instead of by the symbol's text; −1 for a window from outside whose
    /// symbol has not appeared yet.
    public internal(set) var slot: Int = 0

    /// Signed quantity held in the symbol of the trade, window or fill being delivered, as
    /// `portfolio.position(symbol)` gives it, found by ``slot`` instead of by the symbol's text
    /// (0 while the symbol has no book).
    @inline(__always) public var position: Double { portfolio.position(book: slot) }
}

/// A trading strategy: the engine calls it with trades, closed windows and fills, in event-time order, and it
/// answers with orders. It never sees a trade later than `context.now` nor a window whose end is past the
/// aggregator's watermark. Orders become active `latency` after `context.now`. The same strategy value runs in
/// backtests and paper trading.
///
/// ```swift
/// struct BuyTheDip: Strategy {
///     var name: String { "buy-the-dip" }
///     mutating func onWindow(_ w: WindowMetrics, _ ctx: StrategyContext) -> [Order] {
///         guard let change = w.changePct, change < -1, ctx.portfolio.position(w.symbol) == 0 else { return [] }
///         return [.market(w.symbol, .buy, 1)]
///     }
/// }
/// ```
public protocol Strategy {
    /// Name used in the report.
    var name: String { get }
    /// Parameters as `key=value` in a fixed order, for the report.
    var parameters: [(String, String)] { get }
    /// A trade, after it was matched against pending orders and after the windows it closed were delivered.
    mutating func onTrade(_ trade: Trade, _ context: StrategyContext) -> [Order]
    /// A closed window of the pipeline's ``WindowAggregator``.
    mutating func onWindow(_ window: WindowMetrics, _ context: StrategyContext) -> [Order]
    /// An execution of one of this strategy's orders, already applied to the portfolio.
    mutating func onFill(_ fill: Fill, _ context: StrategyContext) -> [Order]
}

extension Strategy {
    public var parameters: [(String, String)] { [] }
    public mutating func onTrade(_ trade: Trade, _ context: StrategyContext) -> [Order] { [] }
    public mutating func onWindow(_ window: WindowMetrics, _ context: StrategyContext) -> [Order] { [] }
    public mutating func onFill(_ fill: Fill, _ context: StrategyContext) -> [Order] { [] }
}
