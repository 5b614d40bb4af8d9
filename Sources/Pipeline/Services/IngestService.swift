import Feed
import Foundation
import Logging
import Metrics

/// The producer of the seed: every trade a ``Feed`` delivers goes to `raw-market-data`
/// through a ``TradePublisher``. Gaps, reconnects, malformed frames and server errors are
/// logged and counted; a fatal feed error (a rejected API key) ends ``run()`` with that error.
public final class IngestService: Sendable {
    public let feed: any Feed
    public let publisher: TradePublisher
    let logger: Logger
    private let tradesIn = Counter(label: "pipeline_trades_in_total")
    private let malformed = Counter(label: "pipeline_malformed_frames_total")
    private let gaps = Counter(label: "pipeline_feed_gaps_total")

    public init(feed: any Feed, publisher: TradePublisher, logger: Logger) {
        self.feed = feed
        self.publisher = publisher
        self.logger = logger
    }

    /// Runs until the feed stops (``Feed/stop()``, cancellation) or fails; flushes before returning.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [feed] in try await feed.run() }
            group.addTask { [self] in
                for await event in feed.events {
                    switch event {
                    case .trades(let trades):
                        try publisher.publish(trades)
                        tradesIn.increment(by: trades.count)
                    case .connected(let url): logger.info("connected to \(url)")
                    case .disconnected(let reason): logger.warning("disconnected: \(reason)")
                    case .gap(let gap):
                        gaps.increment()
                        logger.warning("gap in the feed: \(Double(gap.endMilliseconds - gap.startMilliseconds) / 1000) s without data, from \(Self.iso(gap.startMilliseconds)) to \(Self.iso(gap.endMilliseconds))")
                    case .error(let error): logger.error("\(error)")
                    case .serverError(let message): logger.error("server error: \(message)")
                    case .malformedFrame(let error, let frame):
                        malformed.increment()
                        logger.warning("malformed frame skipped (\(error)): \(frame.prefix(200))")
                    }
                }
            }
            defer { group.cancelAll() }
            try await group.waitForAll()
        }
        try publisher.flush()
    }

    static func iso(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601)
    }
}
