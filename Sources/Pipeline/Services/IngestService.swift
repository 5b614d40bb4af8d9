import Feeds
import MarketData
import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Where ingested trades go: Kafka (``PipelinedPublisher``, ``TradePublisher``) or JSON lines
/// (``TradeLineWriter``, for `replay --dry-run`).
public protocol TradeSink: Sendable {
    /// Takes the trades of one frame, in order; may block while the sink is full.
    func publish(_ trades: [Trade]) throws
    /// Returns once everything taken so far has been written (acknowledged, for Kafka).
    func flush() throws
}

extension TradePublisher: TradeSink {
    public func flush() throws { try flush(timeout: .seconds(30)) }
}

extension PipelinedPublisher: TradeSink {
    public func flush() throws { try flush(timeout: .seconds(30)) }
}

/// The one ingest path: every trade any ``Feed`` delivers (live Finnhub, `sim-exchange`, a recording
/// at N×, the synthetic market) goes to a ``TradeSink``, in order. Live ingest and replay both run it,
/// so `raw-market-data` gets the same messages from both.
///
/// Contract:
/// - Connects, gaps, disconnects and server errors are logged; malformed frames are counted and the
///   first ten logged; nothing the feed delivers is dropped here.
/// - ``run()`` returns when the feed ends, or at graceful shutdown (the feed is cancelled), after the
///   sink is flushed. A fatal feed error or a sink failure is thrown (after flushing what can be).
public final class IngestService: Service, Sendable {
    public let feed: any Feed
    public let sink: any TradeSink
    let logger: Logger
    private let tradesIn = Counter(label: "pipeline_trades_in_total")
    private let malformed = Counter(label: "pipeline_malformed_frames_total")
    private let gaps = Counter(label: "pipeline_feed_gaps_total")

    public init(feed: any Feed, sink: any TradeSink, logger: Logger = Logger(label: "ingest")) {
        self.feed = feed
        self.sink = sink
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [self] in
                var malformedSeen = 0
                // Trades are counted into the metric every 64 frames and at the end, not per frame.
                var uncounted = 0, frames = 0
                defer { if uncounted > 0 { tradesIn.increment(by: uncounted) } }
                try await feed.run(frames: false) { event in
                    switch event {
                    case .trades(let trades):
                        try sink.publish(trades)
                        uncounted &+= trades.count
                        frames &+= 1
                        if frames & 63 == 0 { tradesIn.increment(by: uncounted); uncounted = 0 }
                    case .frame: break
                    case .connected(let url): logger.info("connected to \(url)")
                    case .disconnected(let reason): logger.warning("disconnected: \(reason)")
                    case .gap(let gap):
                        gaps.increment()
                        logger.warning("gap in the feed: \(Double(gap.endMilliseconds - gap.startMilliseconds) / 1000) s without data, from \(Self.iso(gap.startMilliseconds)) to \(Self.iso(gap.endMilliseconds))")
                    case .error(let error): logger.error("\(error)")
                    case .serverError(let message): logger.error("server error: \(message)")
                    case .malformedFrame(let error, let frame):
                        malformed.increment()
                        malformedSeen += 1
                        if malformedSeen <= 10 { logger.warning("malformed frame skipped (\(error)): \(String(frame.prefix(200)).escapingControlCharacters)") }
                    }
                }
            }
        } catch {
            try? sink.flush()
            throw error
        }
        try sink.flush()
    }

    static func iso(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601)
    }
}
