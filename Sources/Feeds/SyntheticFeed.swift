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

/// Several feeds as one session.
///
/// When every member is a ``RecordingFeed``, the result is one recording session over all their
/// files: frames in receive-time order, a tie going to the feed named first (then the earlier
/// file and line), paced and filtered by the first member's options. Otherwise the members run
/// side by side and their events are delivered in arrival order; the run ends when every member
/// has ended, and the first member error ends it for all.
public struct MergedFeed: Feed {
    public let feeds: [any Feed]
    public init(_ feeds: [any Feed]) { self.feeds = feeds }

    public var source: String { feeds.map(\.source).joined(separator: "+") }

    /// The single recording session the members make, when they are all recordings.
    public var recording: RecordingFeed? {
        let recordings = feeds.compactMap { $0 as? RecordingFeed }
        guard let first = recordings.first, recordings.count == feeds.count else { return nil }
        return RecordingFeed(paths: recordings.flatMap(\.paths), options: first.options, onProgress: first.onProgress,
                             beforeRelease: first.beforeRelease)
    }

    public func run(frames: Bool, deliver: (FeedEvent) throws -> Void) async throws {
        if let recording { return try await recording.run(frames: frames, deliver: deliver) }
        let (stream, continuation) = AsyncStream.makeStream(of: FeedEvent.self)
        let feeds = feeds
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.finish() }
                try await withThrowingTaskGroup(of: Void.self) { members in
                    for feed in feeds { members.addTask { try await feed.run(frames: frames) { continuation.yield($0) } } }
                    try await members.waitForAll()
                }
            }
            do {
                for await event in stream { try deliver(event) }
            } catch {
                group.cancelAll()
                throw error
            }
            try await group.waitForAll()
        }
    }
}
