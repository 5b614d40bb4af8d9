import Feeds
import Exchange
import MarketData

/// Everything `sim-exchange` can be told. Durations are seconds unless named otherwise.
public struct SimExchangeConfig: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (see `SimExchangeServer.start()`).
    public var port = 9001
    /// When set, upgrades without this `?token=` get HTTP 401; when `nil` any token is accepted.
    public var token: String?
    public var maxSymbols = 50
    /// Symbols answered with `Invalid symbol` although well-formed.
    public var invalidSymbols: Set<String> = []
    public var pingInterval = 60.0
    public var seed: UInt64 = 42
    /// Virtual start (Unix ms); `nil` uses the wall clock at a connection's first subscription.
    public var startMilliseconds: Int64?
    public var tradesPerSecond = 20.0
    /// Frames go out as fast as the client reads (with backpressure) instead of following wall time.
    public var asFastAsPossible = false
    public var frameIntervalMilliseconds: Int64 = 100
    public var maxTradesPerFrame = 100
    public var dropAfterFrames: Int?
    public var dropAfterSeconds: Double?
    /// Every Nth frame (counting all sent frames) is replaced by truncated JSON.
    public var malformedEvery: Int?
    public var stallEverySeconds: Double?
    public var stallForSeconds = 0.0
    /// Upgrades are refused with 503 for this long after start.
    public var refuseForSeconds: Double?
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Bytes a connection may have queued (its write-buffer high watermark). In paced mode a frame
    /// due while the queue is over budget is dropped and counted; as fast as possible waits instead.
    public var outboundBudgetBytes = 1 << 20
    /// Orders over the WebSocket (``OrderProtocol``): fee in basis points of notional, and the delay (ms of
    /// the connection's trade time) before an order can fill.
    public var orderFeeBps = 0.0
    public var orderLatencyMilliseconds: Int64 = 0
    /// Replaces the synthetic market (e.g. with a recording); `nil` uses `SyntheticMarket`.
    public var tradeSource: TradeSourceFactory?

    public init() {}

    /// `--rate max`: as fast as possible, and exactly one full frame of trades per frame interval.
    public mutating func setMaxRate() {
        asFastAsPossible = true
        tradesPerSecond = Double(maxTradesPerFrame) * 1000 / Double(frameIntervalMilliseconds)
    }

    func makeSource(symbols: [String], start: Int64) -> any TradeSource {
        if let tradeSource { return tradeSource(symbols, start) }
        return SyntheticMarket(seed: seed, symbols: symbols, startMilliseconds: start, tradesPerSecond: tradesPerSecond)
    }

    /// Finnhub-like symbol rule: 1–64 characters from `A-Z a-z 0-9 . : _ - / space ^ =`, not in `invalidSymbols`.
    public func isValid(symbol: String) -> Bool {
        guard !symbol.isEmpty, symbol.utf8.count <= 64, !invalidSymbols.contains(symbol) else { return false }
        return symbol.unicodeScalars.allSatisfy { c in
            (c.isASCII && (("A"..."Z").contains(c) || ("a"..."z").contains(c) || ("0"..."9").contains(c))) || ".:_-/ ^=".unicodeScalars.contains(c)
        }
    }
}
