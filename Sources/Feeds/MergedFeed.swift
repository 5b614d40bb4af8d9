import MarketData

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
