@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
import Logging
import Testing

/// Plain recomputation of one window from the trades of one symbol in arrival order.
struct ExpectedWindow {
    var count = 0, volume = 0.0, pv = 0.0, sum = 0.0, min = Double.infinity, max = -Double.infinity, first = 0.0, last = 0.0
    init(_ trades: [Trade]) {
        for t in trades {
            if count == 0 { first = t.price }
            count += 1; volume += t.volume; pv += t.price * t.volume; sum += t.price
            min = Swift.min(min, t.price); max = Swift.max(max, t.price); last = t.price
        }
    }
}

func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * Swift.max(1, abs(a), abs(b)) }

func json(_ m: KafkaMessage) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(m.value))) as? [String: Any] ?? [:]
}

@Suite("Pipeline services against a real broker", .serialized)
struct PipelineServiceTests {
    let config: KafkaConfig
    init() throws { config = try TestBroker.config() }

    func topics(_ names: [String: Int]) throws {
        try KafkaAdmin(config: config).ensureTopics(names.map { TopicSpec(name: $0.key, partitions: $0.value) })
    }

    func readAll(_ topic: String, count: Int, timeout: Duration = .seconds(60)) async throws -> [KafkaMessage] {
        let consumer = try KafkaConsumer(config: config, groupID: TestBroker.unique("reader"), topics: [topic])
        defer { consumer.close() }
        return try await collect(consumer, count: count, timeout: timeout)
    }

    func consumerService(topic: String, group: String = TestBroker.unique("svc")) throws -> ConsumerService {
        var options = ConsumerService.Options(groupID: group)
        options.topic = topic
        options.checkpointInterval = .milliseconds(200)
        return try ConsumerService(config: config, options: options, logger: Logger(label: "test"))
    }

    @Test func simExchangeToProducerToAggregatorMatchesAPlainRecomputation() async throws {
        let raw = TestBroker.unique("raw"), metrics = TestBroker.unique("metrics"), alerts = TestBroker.unique("alerts")
        try topics([raw: 3, metrics: 3, alerts: 2])
        var sim = SimExchangeConfig()
        sim.port = 0
        sim.seed = 11
        sim.startMilliseconds = 1_700_000_000_000
        sim.tradesPerSecond = 2000
        let server = SimExchangeServer(config: sim)
        let port = try await server.start()
        defer { Task { await server.stop() } }

        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)/?token=t", symbols: ["AAPL", "MSFT", "BINANCE:BTCUSDT"])
        let ingest = IngestService(feed: feed, sink: TradePublisher(producer: try KafkaProducer(config: config), topic: raw, source: "test"), logger: Logger(label: "ingest"))
        let ingesting = Task { try await ingest.run() }
        try await Task.sleep(for: .seconds(3))
        await feed.stop()
        try await ingesting.value

        var options = AggregatorService.Options()
        options.window = WindowConfig(windowMs: 1000, hopMs: 250, allowedLatenessMs: 0)
        options.metricsTopic = metrics
        options.alertsTopic = alerts
        let aggregator = try AggregatorService(service: try consumerService(topic: raw), options: options)
        let aggregating = Task { try await aggregator.run() }

        let rawMessages = try await readAll(raw, count: .max, timeout: .seconds(8))
        #expect(rawMessages.count > 1000)
        var bySymbol: [String: [Trade]] = [:]
        for m in rawMessages.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let trade = try m.value.withUnsafeBytes { try TradeMessage.decode($0) }
            #expect(String(decoding: m.key ?? [], as: UTF8.self) == trade.symbol)
            #expect(m.timestamp == trade.timestamp)
            bySymbol[trade.symbol, default: []].append(trade)
        }
        var expected: [String: ExpectedWindow] = [:]
        for (symbol, trades) in bySymbol {
            let newest = trades.map(\.timestamp).max()!
            let firstStart = (trades.map(\.timestamp).min()! / 250) * 250 - 750
            for start in stride(from: firstStart, through: newest, by: 250) where start + 1000 <= newest {
                let inside = trades.filter { $0.timestamp >= start && $0.timestamp < start + 1000 }
                if !inside.isEmpty { expected["\(symbol)@\(start)"] = ExpectedWindow(inside) }
            }
        }
        let emitted = try await readAll(metrics, count: expected.count, timeout: .seconds(30))
        aggregator.service.consumer.finish()
        try await aggregating.value
        #expect(emitted.count == expected.count)
        for m in emitted {
            let w = json(m)
            let symbol = w["symbol"] as? String ?? "?"
            let start = (w["window_start"] as? NSNumber)?.int64Value ?? -1
            guard let e = expected["\(symbol)@\(start)"] else { Issue.record("unexpected window \(symbol)@\(start)"); continue }
            #expect(String(decoding: m.key ?? [], as: UTF8.self) == symbol)
            #expect((w["window_end"] as? NSNumber)?.int64Value == start + 1000)
            #expect((w["trade_count"] as? NSNumber)?.intValue == e.count)
            #expect(close((w["volume"] as? NSNumber)?.doubleValue ?? .nan, e.volume))
            #expect(close((w["vwap"] as? NSNumber)?.doubleValue ?? .nan, e.pv / e.volume))
            #expect(close((w["average"] as? NSNumber)?.doubleValue ?? .nan, e.sum / Double(e.count)))
            #expect((w["min"] as? NSNumber)?.doubleValue == e.min)
            #expect((w["max"] as? NSNumber)?.doubleValue == e.max)
            #expect((w["first"] as? NSNumber)?.doubleValue == e.first)
            #expect((w["last"] as? NSNumber)?.doubleValue == e.last)
            #expect(close((w["change_pct"] as? NSNumber)?.doubleValue ?? .nan, (e.last - e.first) / e.first * 100))
        }
    }

    @Test func poisonMessagesGoToTheDeadLetterQueueAndValidOnesAreAllProcessed() async throws {
        let raw = TestBroker.unique("poison")
        try topics([raw: 3, Topics.deadLetterQueue: 1])
        let producer = try KafkaProducer(config: config)
        let poison: [(String, [UInt8])] = [
            ("not JSON", Array("hello".utf8)),
            ("missing field", Array(#"{"symbol":"AAPL","volume":1,"timestamp":1700000000000}"#.utf8)),
            ("wrong type", Array(#"{"symbol":"AAPL","price":"1","volume":1,"timestamp":1700000000000}"#.utf8)),
            ("NaN", Array(#"{"symbol":"AAPL","price":NaN,"volume":1,"timestamp":1700000000000}"#.utf8)),
            ("negative price", Array(#"{"symbol":"AAPL","price":-5,"volume":1,"timestamp":1700000000000}"#.utf8)),
            ("negative volume", Array(#"{"symbol":"AAPL","price":5,"volume":-1,"timestamp":1700000000000}"#.utf8)),
            ("empty", []),
        ]
        var valid = 0
        for i in 0..<4000 {
            if i % 4 == 3 {
                let (_, value) = poison[(i / 4) % poison.count]
                try producer.enqueue(topic: raw, key: Array("AAPL".utf8), value: value, headers: [KafkaHeader("seq", "\(i)")])
            } else {
                let trade = Trade(symbol: ["AAPL", "MSFT", "TSLA"][i % 3], price: 100 + Double(i), timestamp: 1_700_000_000_000 + Int64(i), volume: 1)
                try producer.enqueue(topic: raw, key: Array(trade.symbol.utf8), value: TradeMessage.encode(trade), timestamp: trade.timestamp)
                valid += 1
            }
        }
        try producer.close()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("store")).path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let group = TestBroker.unique("storage")
        var options = StorageService.Options(dataDir: dir)
        options.batchInterval = .milliseconds(300)
        let storage = try StorageService(service: try consumerService(topic: raw, group: group), options: options)
        let running = Task { try await storage.run() }
        #expect(try await eventually(timeout: .seconds(60)) { storedLines(dir).count == valid })
        storage.service.consumer.finish()
        try await running.value

        let dlq = try await readAll(Topics.deadLetterQueue, count: .max, timeout: .seconds(8))
            .filter { $0.header("dlq.consumer.group") == Array(group.utf8) }
        #expect(dlq.count == 1000)
        for m in dlq {
            #expect(m.header("dlq.source.topic") == Array(raw.utf8))
            #expect(m.header("dlq.source.partition") != nil && m.header("dlq.source.offset") != nil)
            #expect(!(m.header("dlq.reason") ?? []).isEmpty)
            #expect(m.header("seq") != nil)
        }
        let reasons = Set(dlq.compactMap { $0.header("dlq.reason").map { String(decoding: $0, as: UTF8.self) } })
        #expect(reasons.contains { $0.contains("price") && $0.contains("-5") })
        #expect(reasons.contains { $0.contains("missing") && $0.contains("price") })
        #expect(reasons.contains { $0.contains("volume") })
        let lines = storedLines(dir)
        #expect(Set(lines.map(\.offsetKey)).count == valid)
    }

    @Test func hostileSymbolsStayInsideTheDataFolder() async throws {
        let raw = TestBroker.unique("hostile")
        try topics([raw: 3])
        let symbols = ["../x", "../../etc/passwd", "/etc/passwd", "a b", "IC MARKETS:1", "BINANCE:BTCUSDT", "ünïcødé/..", String(repeating: "Å", count: 120), "..", ".", "CON", "%2e%2e"]
        let producer = try KafkaProducer(config: config)
        for (i, s) in symbols.enumerated() {
            let trade = Trade(symbol: s, price: 1 + Double(i), timestamp: 1_700_000_000_000 + Int64(i), volume: 1)
            try producer.enqueue(topic: raw, key: Array(s.utf8), value: TradeMessage.encode(trade), timestamp: trade.timestamp)
        }
        try producer.close()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("hostile")).path
        let dir = base + "/data"
        defer { try? FileManager.default.removeItem(atPath: base) }
        var options = StorageService.Options(dataDir: dir)
        options.batchInterval = .milliseconds(200)
        let storage = try StorageService(service: try consumerService(topic: raw), options: options)
        let running = Task { try await storage.run() }
        #expect(try await eventually(timeout: .seconds(30)) { storedLines(dir).count == symbols.count })
        storage.service.consumer.finish()
        try await running.value
        let everything = try FileManager.default.subpathsOfDirectory(atPath: base)
        #expect(everything.allSatisfy { $0.hasPrefix("data") })
        let stored = storedLines(dir)
        let folders = Set(stored.map(\.folder))
        #expect(folders.count == symbols.count)
        for line in stored {
            #expect(URL(fileURLWithPath: line.path).standardizedFileURL.path.hasPrefix(URL(fileURLWithPath: dir).standardizedFileURL.path + "/"))
        }
    }
}

struct StoredLine {
    var path: String
    var folder: String
    var partition: Int
    var offset: Int
    var offsetKey: String { "\(partition)@\(offset)" }
}

/// Every record line in the batch files under `dir`.
func storedLines(_ dir: String) -> [StoredLine] {
    var out: [StoredLine] = []
    for (path, _) in StoredOffsets.batchFiles(under: dir) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
        for line in text.split(separator: "\n") {
            let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
            out.append(StoredLine(path: path, folder: (path as NSString).deletingLastPathComponent,
                                  partition: (obj["partition"] as? Int) ?? -1, offset: (obj["offset"] as? Int) ?? -1))
        }
    }
    return out
}
