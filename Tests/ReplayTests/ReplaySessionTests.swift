@testable import Feeds
@testable import Recording
import MarketData
import Pipeline
import Kafka
import SimExchange
import MarketStreamTesting
import Foundation
import Synchronization
import Testing

/// Trades of every frame of a recording, in order.
func recordedTrades(_ path: String) throws -> [Trade] {
    var out: [Trade] = []
    for f in try RecordingReader(path: path).readAll() {
        if case .trades(let t) = try FinnhubCodec.decode(f.frame) { out += t }
    }
    return out
}

func byKey(_ trades: [Trade]) -> [String: [Trade]] { Dictionary(grouping: trades, by: \.symbol) }

/// A recording of `count` one-trade frames `stepNs` apart.
func makeRecording(_ path: String, count: Int, stepNs: Int64, start: Int64 = 1_700_000_000_000_000_000) throws {
    let w = try RecordingWriter(path: path, header: RecordingHeader(source: "test", symbols: ["AAPL"], startNs: start, createdBy: "tests"))
    for i in 0..<count {
        try w.append(recvNs: start + Int64(i) * stepNs,
                     frame: FinnhubCodec.encodeTrades([Trade(symbol: i % 3 == 0 ? "MSFT" : "AAPL", price: 100 + Double(i) / 100,
                                                             timestamp: 1_700_000_000_000 + Int64(i), volume: 1, conditions: ["1"])]))
        if i % 50 == 7 { try w.append(recvNs: start + Int64(i) * stepNs, frame: #"{"type":"ping"}"#) }
    }
    try w.close()
}

/// Records `server` (already started) for `seconds`.
func capture(port: Int, symbols: [String], seconds: Double, to path: String) async throws -> RecordSummary {
    var o = RecordOptions(output: path, symbols: symbols)
    o.duration = .milliseconds(Int64(seconds * 1000))
    let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)/?token=t", symbols: symbols, reconnect: Backoff(maxAttempts: 1))
    return try await FeedRecorder(feed: feed, options: o).run()
}

@Suite(.serialized) struct ReplaySessionTests {
    @Test func roundTripSimExchangeRecordReplayKafka() async throws {
        var config = SimExchangeConfig()
        config.port = 0
        config.seed = 99
        config.startMilliseconds = 1_732_545_000_000
        config.tradesPerSecond = 300
        config.frameIntervalMilliseconds = 50
        config.pingInterval = 0.5
        let server = SimExchangeServer(config: config)
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let path = tempDir() + "/capture.jsonl"
        let rec = try await capture(port: port, symbols: ["AAPL", "BINANCE:BTCUSDT", "MSFT"], seconds: 2, to: path)
        #expect(rec.trades > 100 && rec.pings >= 2, "\(rec)")
        let expected = try recordedTrades(path)
        #expect(expected.count == rec.trades)
        #expect(Set(expected.map(\.symbol)) == ["AAPL", "BINANCE:BTCUSDT", "MSFT"])

        let kafka = try TestBroker.config()
        let topic = TestBroker.unique("replay-rt")
        try KafkaAdmin(config: kafka).ensureTopics([TopicSpec(name: topic, partitions: 3)])
        let session = RecordingFeed(path: path, options: ReplayOptions(speed: .max))
        let publisher = ReplayKafka.pipeline(try ReplayKafka.connect(config: kafka, fileName: session.fileName, topic: topic, ensureTopics: false, headers: true),
                                             speed: .max)
        let summary = try await session.replay { try publisher.publish($0) }
        try publisher.flush()
        publisher.close()
        #expect(summary.trades == expected.count)
        #expect(summary.skippedLines == 0)

        let consumer = try KafkaConsumer(config: kafka, groupID: TestBroker.unique("g"), topics: [topic])
        defer { consumer.close() }
        let messages = try await collect(consumer, count: expected.count, timeout: .seconds(60))
        #expect(messages.count == expected.count)
        #expect(messages.allSatisfy { $0.header("source") == Array("replay:capture.jsonl".utf8) })
        let got = try messages.map { m in try m.value.withUnsafeBytes { try TradeMessage.decode($0) } }
        #expect(messages.allSatisfy { String(decoding: $0.key ?? [], as: UTF8.self) == (try? $0.value.withUnsafeBytes { try TradeMessage.decode($0) })?.symbol })
        #expect(byKey(got) == byKey(expected))
    }

    @Test(arguments: [10.0, 100.0])
    func pacingIsDriftFree(speed: Double) async throws {
        let path = tempDir() + "/pace.jsonl"
        try makeRecording(path, count: 601, stepNs: 100_000_000)  // 60 s of recorded time
        let session = RecordingFeed(path: path, options: ReplayOptions(speed: .factor(speed)))
        let t0 = ContinuousClock.now
        var n = 0
        let summary = try await session.replay { n += $0.count }
        let wall = ContinuousClock.now - t0
        let scheduled = 60.0 / speed
        #expect(n == 601 && summary.trades == 601)
        #expect(summary.scheduledNs == UInt64(scheduled * 1e9))
        #expect(abs(summary.driftNs) < 50_000_000, "drift \(Double(summary.driftNs) / 1e6) ms")
        #expect(abs(Double(summary.wallNs) / 1e9 - scheduled) < 0.05)
        #expect(wall >= .milliseconds(Int64(scheduled * 1000) - 1) && wall < .milliseconds(Int64(scheduled * 1000) + 500))
        print("pacing at \(speed)x: schedule \(scheduled) s, drift \(Double(summary.driftNs) / 1e6) ms, max lag \(Double(summary.maxLagNs) / 1e6) ms")
    }

    @Test func windowSymbolsAndLoop() async throws {
        let path = tempDir() + "/w.jsonl"
        let start: Int64 = 1_700_000_000_000_000_000
        try makeRecording(path, count: 100, stepNs: 1_000_000, start: start)
        var o = ReplayOptions(speed: .max)
        o.fromNs = start + 10_000_000
        o.toNs = start + 19_000_000
        o.symbols = ["AAPL"]
        var got: [Trade] = []
        let s = try await RecordingFeed(path: path, options: o).replay { got += $0 }
        let all = try recordedTrades(path)
        #expect(got == Array(all[10...19]).filter { $0.symbol == "AAPL" })
        #expect(s.framesRead == 10 + 0)
        var loop = ReplayOptions(speed: .factor(1000))
        loop.loop = true
        loop.maxPasses = 3
        var count = 0
        let ls = try await RecordingFeed(path: path, options: loop).replay { count += $0.count }
        #expect(count == 300 && ls.passes == 3)
        #expect(abs(ls.driftNs) < 50_000_000)
    }

    @Test func cancellationStopsAndSummarizes() async throws {
        let path = tempDir() + "/c.jsonl"
        try makeRecording(path, count: 100, stepNs: 1_000_000_000)
        let task = Task { try await RecordingFeed(path: path, options: ReplayOptions(speed: .factor(1))).replay { _ in } }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let s = try await task.value
        #expect(s.interrupted && s.trades == 1)
        #expect(s.description.hasPrefix("Interrupted"))
    }

    @Test func dryRunWriterMatchesKafkaValues() throws {
        let dir = tempDir()
        let fd = open(dir + "/out.jsonl", O_WRONLY | O_CREAT, 0o644)
        let trades = [Trade(symbol: "AAPL", price: 1.5, timestamp: 7, volume: 100, conditions: ["1"]),
                      Trade(symbol: "BINANCE:BTCUSDT", price: 60000.01, timestamp: 8, volume: 0.5)]
        do {
            let w = TradeLineWriter(fd: fd)
            w.write(trades)
            w.flush()
        }
        let text = try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8)
        #expect(text == trades.map { String(decoding: TradeMessage.encode($0), as: UTF8.self) + "\n" }.joined())
    }

    @Test func dryRunWriterKeepsOrderAcrossManyChunksAndFlushes() throws {
        let dir = tempDir()
        let fd = open(dir + "/many.jsonl", O_WRONLY | O_CREAT, 0o644)
        let trades = (0..<25_000).map { (i: Int) -> Trade in
            let price: Double = 1 + Double(i) / 100
            return Trade(symbol: "S\(i % 7)", price: price, timestamp: Int64(i + 1), volume: Double(i % 13))
        }
        let w = TradeLineWriter(fd: fd, chunkSize: 1000, maxPendingChunks: 2)
        for i in stride(from: 0, to: trades.count, by: 37) { w.write(Array(trades[i..<min(i + 37, trades.count)])) }
        w.flush()
        let lines = try String(contentsOfFile: dir + "/many.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == trades.count, "flush returns once every trade is written")
        #expect(lines.map { String($0) } == trades.map { String(decoding: TradeMessage.encode($0), as: UTF8.self) })
    }

    @Test func replayAddsHeadersOnlyWhenAskedAndTheMessagesAreOtherwiseTheSame() async throws {
        let path = tempDir() + "/nh.jsonl"
        try makeRecording(path, count: 200, stepNs: 1_000_000)
        let kafka = try TestBroker.config()
        let topic = TestBroker.unique("replay-nh")
        try KafkaAdmin(config: kafka).ensureTopics([TopicSpec(name: topic, partitions: 1)])
        let session = RecordingFeed(path: path, options: ReplayOptions(speed: .max))
        for headers in [true, nil] {
            let publisher = try headers.map { try ReplayKafka.connect(config: kafka, fileName: session.fileName, topic: topic, ensureTopics: false, headers: $0) }
                ?? ReplayKafka.connect(config: kafka, fileName: session.fileName, topic: topic, ensureTopics: false)
            _ = try await session.replay { try publisher.publish($0) }
            try publisher.flush()
        }
        let consumer = try KafkaConsumer(config: kafka, groupID: TestBroker.unique("g"), topics: [topic])
        defer { consumer.close() }
        let messages = try await collect(consumer, count: 400, timeout: .seconds(60)).sorted { $0.offset < $1.offset }
        #expect(messages.count == 400)
        #expect(messages[..<200].allSatisfy { $0.headers.map(\.key) == ["source", "ingest_time"] })
        #expect(messages[200...].allSatisfy { $0.headers.isEmpty })
        #expect(messages[..<200].map(\.value) == messages[200...].map(\.value))
    }

    @Test func importedRecordingReplaysLikeACapturedOne() async throws {
        let dir = tempDir()
        let csv = dir + "/t.csv"
        writeText(csv, """
            exchange,symbol,timestamp,local_timestamp,id,side,price,amount
            binance-futures,BTCUSDT,1582329602000000,1582329602100000,1,buy,9700.5,0.1
            binance-futures,BTCUSDT,1582329602001000,1582329602100000,2,sell,9700.25,0.2
            binance-futures,BTCUSDT,1582329603000000,1582329603200000,3,buy,9701,1

            """)
        let out = dir + "/t.jsonl"
        let stats = try TardisTradesImporter(path: csv).convert(to: out)
        #expect(stats.tradesWritten == 3 && stats.framesWritten == 2)
        var got: [Trade] = []
        let s = try await RecordingFeed(path: out, options: ReplayOptions(speed: .factor(10))).replay { got += $0 }
        #expect(got == (try recordedTrades(out)))
        #expect(got.map(\.symbol) == Array(repeating: "BINANCE:BTCUSDT", count: 3))
        #expect(got.map(\.price) == [9700.5, 9700.25, 9701])
        #expect(s.frames == 2 && s.scheduledNs == 110_000_000)
    }

    @Test(.enabled(if: realDataDir() != nil, "needs ../shared/data/real (or MARKET_DATA_REAL_DIR)"))
    func realTardisSessionReplaysInFull() async throws {
        let real = try #require(realDataDir())
        let dir = tempDir()
        let realOut = dir + "/tardis.jsonl.gz"
        let rs = try TardisTradesImporter(path: real + "/tardis_binance-futures_BTCUSDT_trades_2020-02-22.csv").convert(to: realOut)
        var n = 0, first: Trade?, last: Trade?
        let summary = try await RecordingFeed(path: realOut, options: ReplayOptions(speed: .max)).replay { t in
            n += t.count; if first == nil { first = t.first }; last = t.last
        }
        #expect(n == rs.tradesWritten && n == 9_999 && summary.skippedLines == 0)
        #expect(first?.price == (try recordedTrades(realOut)).first?.price)
        #expect(last?.symbol == "BINANCE:BTCUSDT")
    }

    // MARK: bad input

    func runExpectingFailure(_ path: String, skipBad: Bool = false) async -> ReplayFailure? {
        var o = ReplayOptions(speed: .max)
        o.skipBad = skipBad
        do { _ = try await RecordingFeed(path: path, options: o).replay { _ in }; return nil } catch {
            return error as? ReplayFailure
        }
    }

    @Test func malformedLineNamesFileAndLineAndSkipBadCounts() async throws {
        let path = tempDir() + "/bad.jsonl"
        let good = #"{"recv_ns":5,"frame":{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1,"c":[]}]}}"#
        writeText(path, [headerLine, good, #"{"recv_ns":"x","frame":{}}"#, good,
                         #"{"recv_ns":5,"frame":{"type":"trade","data":[{"s":"AAPL","p":"oops","t":1,"v":1}]}}"#,
                         #"{"recv_ns":4,"frame":{"type":"ping"}}"#, good].joined(separator: "\n") + "\n")
        let e = await runExpectingFailure(path)
        #expect(e?.description == "bad.jsonl:3: recv_ns is not an integer")
        var o = ReplayOptions(speed: .max)
        o.skipBad = true
        var n = 0
        let s = try await RecordingFeed(path: path, options: o).replay { n += $0.count }
        #expect(n == 3 && s.skippedLines == 3, "\(s.problems)")
        #expect(s.problems.contains { $0.hasPrefix("bad.jsonl:5: frame does not decode") })
        #expect(s.problems.contains { $0.hasPrefix("bad.jsonl:6: recv_ns 4 is earlier") })
    }

    @Test func undecodableFrameFailsWithoutSkipBad() async {
        let path = tempDir() + "/f.jsonl"
        writeText(path, headerLine + "\n" + #"{"recv_ns":6,"frame":{"type":"trade","data":[{"s":"AAPL","p":"oops","t":1,"v":1}]}}"# + "\n")
        let e = await runExpectingFailure(path)
        #expect(e?.description.hasPrefix("f.jsonl:2: frame does not decode: data[0].p") == true, "\(String(describing: e))")
    }

    @Test func unknownVersion() async {
        let path = tempDir() + "/v7.jsonl"
        writeText(path, headerLine.replacingOccurrences(of: #""version":1"#, with: #""version":7"#) + "\n")
        let e = await runExpectingFailure(path)
        #expect(e?.description == "v7.jsonl:1: unsupported recording version 7, this build reads version 1")
        #expect(throws: ReplayFailure.self) { try RecordingFeed(path: path, options: ReplayOptions()).check() }
    }

    @Test func truncatedGzipNamesFileAndLine() async throws {
        let dir = tempDir(), full = dir + "/full.jsonl.gz", cut = dir + "/cut.jsonl.gz"
        let w = try RecordingWriter(path: full, header: testHeader)
        for i in 0..<2000 {
            try w.append(recvNs: Int64(i), frame: FinnhubCodec.encodeTrades([Trade(symbol: "AAPL", price: Double(i) + 0.37 * Double(i % 7), timestamp: Int64(i) * 13, volume: Double(i % 100))]))
        }
        try w.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: full))
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: cut))
        let e = await runExpectingFailure(cut)
        let text = e?.description ?? ""
        #expect(text.hasPrefix("cut.jsonl.gz: unexpected end of gzip data after line "), "\(text)")
        var o = ReplayOptions(speed: .max)
        o.skipBad = true
        var n = 0
        let s = try await RecordingFeed(path: cut, options: o).replay { n += $0.count }
        #expect(n > 100 && n < 2000 && s.skippedLines == 1)
    }

    @Test func missingFileAndUnreachableBrokerAreOneLine() async throws {
        let e = #expect(throws: ReplayFailure.self) { try RecordingFeed(path: "/nonexistent/x.jsonl", options: ReplayOptions()).check() }
        #expect(e?.description == "/nonexistent/x.jsonl: no such file")
        let t0 = ContinuousClock.now
        let k = #expect(throws: ReplayFailure.self) {
            try ReplayKafka.checkBroker(config: KafkaConfig(bootstrapServers: "127.0.0.1:1"), timeout: .seconds(1))
        }
        #expect(ContinuousClock.now - t0 < .seconds(10))
        let msg = k?.description ?? ""
        #expect(msg.contains("127.0.0.1:1") && !msg.contains("\n"), "\(msg)")
        #expect(throws: ReplayFailure.self) { try ReplayKafka.connect(config: KafkaConfig(bootstrapServers: "127.0.0.1:1"), fileName: "x", timeout: .seconds(1)) }
        #expect((try? Speed.parse("fast")) == nil)
        #expect(try ReplayTime.parse("1700000000123") == 1_700_000_000_123_000_000)
        #expect(try ReplayTime.parse("2024-08-08T23:55:00Z") == 1_723_161_300_000_000_000)
        #expect(try ReplayTime.parse("2024-08-08T23:55:00.5") == 1_723_161_300_500_000_000)
        #expect(throws: ReplayFailure.self) { try ReplayTime.parse("yesterday") }
    }

    // MARK: sim-exchange --replay

    @Test func simExchangeServesARecording() async throws {
        let path = tempDir() + "/serve.jsonl"
        try makeRecording(path, count: 400, stepNs: 10_000_000)  // 4 s recorded
        let tape = try RecordedTradeSource.Tape(path: path)
        #expect(tape.tradeCount == 400)
        var config = SimExchangeConfig()
        config.port = 0
        config.frameIntervalMilliseconds = 20
        config.tradeSource = { _, start in RecordedTradeSource(tape: tape, speed: 4, startMilliseconds: start) }
        let server = SimExchangeServer(config: config)
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let out = tempDir() + "/served.jsonl"
        let rec = try await capture(port: port, symbols: ["AAPL", "MSFT"], seconds: 2, to: out)
        #expect(rec.trades == 400, "\(rec)")
        #expect(try recordedTrades(out) == (try recordedTrades(path)))
    }

    @Test func recordedTradeSourceAdvancesByVirtualTime() throws {
        let path = tempDir() + "/s.jsonl"
        try makeRecording(path, count: 10, stepNs: 100_000_000)  // frames at 0, 0.1 … 0.9 s
        var src = RecordedTradeSource(tape: try RecordedTradeSource.Tape(path: path), speed: 2, startMilliseconds: 1000)
        #expect(src.advance(byMilliseconds: 0).count == 1)
        #expect(src.advance(byMilliseconds: 100).count == 2)  // up to 0.2 s
        #expect(src.now == 1100)
        #expect(src.advance(byMilliseconds: 1000).count == 7 && src.finished)
        var looping = RecordedTradeSource(tape: src.tape, speed: 1, startMilliseconds: 0, loop: true)
        #expect(looping.advance(byMilliseconds: 2000).count == 21)  // two passes (0.9 s + 0.1 s gap each) and the first frame of the third
    }
}
