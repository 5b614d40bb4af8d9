import Pipeline
import Kafka
import Feeds
import Recording
import MarketData
import SimExchange
import MarketStreamTesting
import Foundation
import Logging
import Testing

/// Every Feed conformer goes through the one ingest path (``IngestService`` with the pipelined
/// publisher) into the real broker, and the messages are the same whatever the source.
@Suite(.serialized) struct FeedIngestTests {
    static let symbols = ["AAPL", "BINANCE:BTCUSDT"]
    static let start: Int64 = 1_732_000_000_000
    static let seed: UInt64 = 17
    static let rate = 400.0
    static let count = 3000

    func synthetic(_ symbols: [String] = FeedIngestTests.symbols, trades: Int? = FeedIngestTests.count, rate: Double = FeedIngestTests.rate) -> SyntheticFeed {
        var o = SyntheticFeed.Options()
        o.symbols = symbols
        o.seed = Self.seed
        o.startMilliseconds = Self.start
        o.tradesPerSecond = rate
        o.asFastAsPossible = true
        o.maxTrades = trades
        return SyntheticFeed(options: o)
    }

    /// Runs `feed` through the ingest service into a new one-partition topic and returns the topic's messages.
    func ingest(_ feed: any Feed, until limit: Int? = nil) async throws -> [KafkaMessage] {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("feed-ingest")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 1)])
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: feed.source)
        let sink = PipelinedPublisher(publisher, coalesce: 64)
        let service = IngestService(feed: feed, sink: sink, logger: Logger(label: "test"))
        if let limit {
            let running = Task { try await service.run() }
            #expect(try await eventually(timeout: .seconds(30)) { publisher.producer.statistics.enqueued >= limit })
            running.cancel()
            try await running.value
        } else {
            try await service.run()
        }
        sink.close()
        return try readTopic(topic, config: config)
    }

    /// Each symbol's messages (key, value, timestamp) in partition order.
    func bySymbol(_ messages: [KafkaMessage], first n: Int? = nil) -> [String: [[UInt8]]] {
        var out: [String: [[UInt8]]] = [:]
        for m in messages.sorted(by: { $0.offset < $1.offset }) {
            let key = String(decoding: m.key ?? [], as: UTF8.self)
            out[key, default: []].append(m.value + Array("@\(m.timestamp ?? -1)".utf8))
        }
        if let n { for k in out.keys { out[k] = Array(out[k]!.prefix(n)) } }
        return out
    }

    @Test func everyFeedGivesTheSameMessagesThroughTheOneIngestPath() async throws {
        let dir = tempDir("feed-ingest")
        // The reference: the seeded market's trades, as `sim-exchange` serves them.
        var market = SyntheticMarket(seed: Self.seed, symbols: Self.symbols, startMilliseconds: Self.start, tradesPerSecond: Self.rate)
        var expected: [Trade] = []
        while expected.count < Self.count { expected += market.advance(byMilliseconds: 100) }
        expected = Array(expected.prefix(Self.count))
        let reference = Dictionary(grouping: expected, by: \.symbol).mapValues { $0.map { TradeMessage.encode($0) + Array("@\($0.timestamp)".utf8) } }

        // 1. The in-process synthetic feed.
        let fromSynthetic = bySymbol(try await ingest(synthetic()))
        #expect(fromSynthetic == reference)

        // 2. A recording of that feed, replayed at max speed.
        let recording = dir + "/synthetic.jsonl"
        var o = RecordOptions(output: recording, symbols: Self.symbols)
        o.flushInterval = .milliseconds(100)
        let recorded = try await FeedRecorder(feed: synthetic(), options: o).run()
        #expect(recorded.trades == Self.count)
        let fromRecording = bySymbol(try await ingest(RecordingFeed(path: recording, options: ReplayOptions(speed: .max))))
        #expect(fromRecording == reference)

        // 3. Two recordings, one per symbol, merged into one session.
        var perSymbol: [any Feed] = []
        for (i, symbol) in Self.symbols.enumerated() {
            let path = dir + "/part\(i).jsonl"
            let n = expected.filter { $0.symbol == symbol }.count
            _ = try await FeedRecorder(feed: synthetic([symbol], trades: n, rate: Self.rate / Double(Self.symbols.count)),
                                       options: RecordOptions(output: path, symbols: [symbol])).run()
            perSymbol.append(RecordingFeed(path: path, options: ReplayOptions(speed: .max)))
        }
        let fromMerged = bySymbol(try await ingest(MergedFeed(perSymbol)))
        #expect(fromMerged == reference)

        // 4. sim-exchange over a real socket, through the WebSocket feed.
        var sim = SimExchangeConfig()
        sim.port = 0
        sim.seed = Self.seed
        sim.startMilliseconds = Self.start
        sim.tradesPerSecond = Self.rate
        sim.setMaxRate()
        sim.tradesPerSecond = Self.rate
        let server = SimExchangeServer(config: sim)
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let socket = WebSocketFeed(url: "ws://127.0.0.1:\(port)/?token=t", symbols: Self.symbols, reconnect: Backoff(maxAttempts: 1))
        let fromSocket = try await ingest(socket, until: Self.count)
        let shortest = reference.values.map(\.count).min()!
        #expect(fromSocket.count >= Self.count)
        #expect(bySymbol(fromSocket, first: shortest) == reference.mapValues { Array($0.prefix(shortest)) })
    }

    @Test func mergedRecordingsComeInTimeOrderWithTiesToTheFirstNamed() async throws {
        let dir = tempDir("merge")
        func write(_ path: String, _ frames: [(Int64, String, Double)]) throws {
            let w = try RecordingWriter(path: path, header: RecordingHeader(source: "test", symbols: [], startNs: 0, createdBy: "tests"))
            for (ns, symbol, price) in frames {
                try w.append(recvNs: ns, frame: FinnhubCodec.encodeTrades([Trade(symbol: symbol, price: price, timestamp: ns / 1_000_000, volume: 1)]))
            }
            try w.close()
        }
        try write(dir + "/a.jsonl", [(1_000_000, "A", 1), (3_000_000, "A", 3), (3_000_000, "A", 4), (6_000_000, "A", 6)])
        try write(dir + "/b.jsonl", [(2_000_000, "B", 2), (3_000_000, "B", 3.5), (5_000_000, "B", 5), (7_000_000, "B", 7)])
        let feed = MergedFeed([RecordingFeed(path: dir + "/a.jsonl", options: ReplayOptions(speed: .max)),
                               RecordingFeed(path: dir + "/b.jsonl", options: ReplayOptions(speed: .max))])
        var prices: [Double] = []
        var frameTimes: [Int64] = []
        try await feed.run(frames: true) { event in
            switch event {
            case .trades(let t): prices += t.map(\.price)
            case .frame(let f): frameTimes.append(f.receivedNs)
            default: break
            }
        }
        #expect(prices == [1, 2, 3, 4, 3.5, 5, 6, 7])
        #expect(frameTimes == frameTimes.sorted() && frameTimes.count == 8)
        // The replay command takes the same files as one session.
        let viaPaths = RecordingFeed(paths: [dir + "/a.jsonl", dir + "/b.jsonl"], options: ReplayOptions(speed: .max))
        var again: [Double] = []
        let summary = try await viaPaths.replay { again += $0.map(\.price) }
        #expect(again == prices && summary.trades == 8 && summary.file == "a.jsonl+b.jsonl")
    }

    @Test func recordingAReplayReproducesTheRecordingsFrames() async throws {
        let original = packageRoot() + "/recordings/btc.jsonl"
        let copy = tempDir("rerecord") + "/copy.jsonl"
        let summary = try await FeedRecorder(feed: RecordingFeed(path: original, options: ReplayOptions(speed: .max)),
                                             options: RecordOptions(output: copy, symbols: ["BINANCE:BTCUSDT"])).run()
        let want = try RecordingReader(path: original).readAll()
        let got = try RecordingReader(path: copy).readAll()
        #expect(summary.frames == want.count && want.count > 100)
        #expect(got.map(\.frame) == want.map(\.frame))
        #expect(got.map(\.recvNs) == want.map(\.recvNs))
    }
}
