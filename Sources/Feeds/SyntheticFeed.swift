import MarketData

/// The seeded market `sim-exchange` serves, in process: the same trades, framed the same way
/// (every `frameIntervalMilliseconds` of virtual time, at most `maxTradesPerFrame` per frame), without
/// a socket. For load tests and examples.
///
/// Paced (`asFastAsPossible == false`) a frame interval of virtual time takes as long on the wall
/// clock; otherwise frames follow each other as fast as `deliver` takes them. The run ends after
/// `maxTrades` trades (the frame that crosses the limit is cut), or at cancellation.
public struct SyntheticFeed: Feed {
    public struct Options: Sendable {
        public var symbols: [String] = WebSocketFeed.defaultSymbols
        public var seed: UInt64 = 42
        public var tradesPerSecond = 20.0
        /// Virtual start (Unix ms); nil: the wall clock when the run starts.
        public var startMilliseconds: Int64?
        public var frameIntervalMilliseconds: Int64 = 100
        public var maxTradesPerFrame = 100
        public var asFastAsPossible = false
        /// Stop after this many trades (nil: until cancelled).
        public var maxTrades: Int?
        public init() {}
    }

    public let options: Options
    public init(options: Options = Options()) { self.options = options }

    public var source: String { "synthetic:seed=\(options.seed)" }

    public func run(frames: Bool, deliver: (FeedEvent) throws -> Void) async throws {
        let o = options
        let start = o.startMilliseconds ?? realtimeNs() / 1_000_000
        var market = SyntheticMarket(seed: o.seed, symbols: o.symbols, startMilliseconds: start, tradesPerSecond: o.tradesPerSecond)
        let clock = ContinuousClock()
        let interval = Duration.milliseconds(o.frameIntervalMilliseconds)
        var due = clock.now
        var sent = 0
        var bytes: [UInt8] = []
        try deliver(.connected(url: source))
        do {
            while true {
                if o.asFastAsPossible {
                    try Task.checkCancellation()
                } else {
                    due += interval
                    try await Task.sleep(until: due, clock: clock)
                }
                let trades = market.advance(byMilliseconds: o.frameIntervalMilliseconds)
                var index = 0
                while index < trades.count {
                    var chunk = Array(trades[index..<min(index + o.maxTradesPerFrame, trades.count)])
                    index += chunk.count
                    if let limit = o.maxTrades, sent + chunk.count > limit { chunk.removeLast(sent + chunk.count - limit) }
                    if chunk.isEmpty { break }
                    if frames {
                        bytes.removeAll(keepingCapacity: true)
                        FinnhubCodec.encodeTrades(chunk, into: &bytes)
                        try deliver(.frame(FeedFrame(receivedNs: market.now * 1_000_000, text: String(decoding: bytes, as: UTF8.self))))
                    }
                    try deliver(.trades(chunk))
                    sent += chunk.count
                }
                if let limit = o.maxTrades, sent >= limit { return }
            }
        } catch is CancellationError {
            return
        }
    }
}
