import Testing
import Kafka
import Pipeline
import PostgresSink
import Aggregation
import MarketData
import MarketStreamTesting
import Foundation

/// `pipeline storage --sink postgres://…` as real processes against a real PostgreSQL server and
/// the real broker: killed, restarted, rebalanced, the database restarted; and `pipeline dlq`.
@Suite("PostgreSQL storage and dead-letter tools", .serialized, .enabled(if: TestPostgres.available))
struct PostgresStorageTests {
    static let trades = 200_000

    /// Produces `count` trades over 3 partitions in chunks of `chunk`, `pause` apart (a stream, not one burst).
    static func stream(_ count: Int, to topic: String, config: KafkaConfig, chunk chunkSize: Int = 10_000, pause: Duration = .milliseconds(150)) async throws {
        let producer = try KafkaProducer(config: config)
        let symbols = ["AAPL", "MSFT", "BINANCE:BTCUSDT", "TSLA", "GOOGL", "NVDA"]
        var sent = 0
        while sent < count {
            let chunk = min(chunkSize, count - sent)
            for i in sent..<(sent + chunk) {
                let trade = Trade(symbol: symbols[i % symbols.count], price: 100 + Double(i % 1000) / 100, timestamp: 1_700_000_000_000 + Int64(i),
                                  volume: Double(1 + i % 50), conditions: i % 3 == 0 ? ["1", "12"] : nil)
                try producer.enqueue(topic: topic, key: Array(trade.symbol.utf8), value: TradeMessage.encode(trade), timestamp: trade.timestamp)
            }
            sent += chunk
            try producer.flush(timeout: .seconds(60))
            try await Task.sleep(for: pause)
        }
        try producer.close()
    }

    /// What the processes wrote to `log`, without the command lines the test harness writes there.
    static func output(_ log: String) throws -> String {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("--- ") }.joined(separator: "\n")
    }

    struct Stored { var rows: Int; var distinct: Int; var perPartition: [Int32: (count: Int, max: Int64)]; var offsets: [Int32: Int64] }

    static func stored(_ db: LocalPostgres, topic: String, group: String) throws -> Stored {
        let totals = try db.psql("SELECT count(*), count(DISTINCT (partition, \"offset\")) FROM marketstream.trades WHERE topic = '\(topic)'").split(separator: "|")
        var perPartition: [Int32: (Int, Int64)] = [:]
        for line in try db.psql("SELECT partition, count(*), max(\"offset\") FROM marketstream.trades WHERE topic = '\(topic)' GROUP BY 1").split(separator: "\n") {
            let f = line.split(separator: "|")
            perPartition[Int32(f[0])!] = (Int(f[1])!, Int64(f[2])!)
        }
        var offsets: [Int32: Int64] = [:]
        for line in try db.psql("SELECT partition, next_offset FROM marketstream.consumer_offsets WHERE topic = '\(topic)' AND consumer_group = '\(group)'").split(separator: "\n") {
            let f = line.split(separator: "|")
            offsets[Int32(f[0])!] = Int64(f[1])!
        }
        return Stored(rows: Int(totals[0].trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                      distinct: Int(totals[1].trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1, perPartition: perPartition, offsets: offsets)
    }

    /// Rows = produced records, none twice, each partition's rows are offsets 0…n-1 and the stored offset is n.
    static func checkExactlyOnce(_ db: LocalPostgres, topic: String, group: String, config: KafkaConfig) throws {
        var produced: [Int32: Int] = [:]
        var records: [String: Trade] = [:]
        for m in try readTopic(topic, config: config) {
            produced[m.partition, default: 0] += 1
            records["\(m.partition)|\(m.offset)"] = try m.value.withUnsafeBytes { try TradeMessage.decode($0) }
        }
        // Every row holds its record's values: the exact millisecond, prices and conditions.
        var mismatches = 0
        for line in try db.psql("SELECT partition, \"offset\", symbol, price, volume, (extract(epoch FROM traded_at) * 1000)::bigint, conditions FROM marketstream.trades WHERE topic = '\(topic)'").split(separator: "\n") {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 7, let t = records["\(f[0])|\(f[1])"] else { mismatches += 1; continue }
            let conditions = t.conditions.map { "{\($0.joined(separator: ","))}" } ?? ""
            if f[2] != t.symbol || Double(f[3]) != t.price || Double(f[4]) != t.volume || Int64(f[5]) != t.timestamp || f[6] != conditions { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) rows differ from their records")
        let s = try stored(db, topic: topic, group: group)
        #expect(s.rows == trades)
        #expect(s.distinct == trades)
        #expect(produced.values.reduce(0, +) == trades)
        for (p, n) in produced {
            #expect(s.perPartition[p]?.count == n, "partition \(p): \(s.perPartition[p]?.count ?? 0) rows of \(n)")
            #expect(s.perPartition[p]?.max == Int64(n - 1))
            #expect(s.offsets[p] == Int64(n), "partition \(p): stored offset \(s.offsets[p] ?? -1), last row \(s.perPartition[p]?.max ?? -1)")
        }
    }

    /// A `pipeline storage` member. `extra` adds client settings (`-X key=value` pairs).
    func storage(_ config: KafkaConfig, topic: String, group: String, url: String, log: String, extra: [String] = []) throws -> ChildProcess {
        try ChildProcess("pipeline", ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", topic, "--group", group,
                                      "--sink", url, "--metrics-port", "0"] + extra, log: log)
    }

    @Test("kill -9 ten times during a 200k-trade stream: every record stored once, stored offsets = last row + 1", .timeLimit(.minutes(5)))
    func killedTenTimes() async throws {
        let config = try TestBroker.config(), db = try TestPostgres.server()
        let topic = TestBroker.unique("pg-kill"), group = TestBroker.unique("pg-g")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)] + TopicSpec.pipelineTopics)
        let log = tempDir("pg-kill") + "/storage.log"
        // The stream lasts through the kills (2,000 trades every 800 ms); the short session (2 s) makes
        // the group notice a killed member in about 3 s.
        let producing = Task { try await Self.stream(Self.trades, to: topic, config: config, chunk: 2_000, pause: .milliseconds(800)) }
        var kills = 0, killedWhileStoring = 0
        while kills < 10 {
            let p = try storage(config, topic: topic, group: group, url: db.url, log: log,
                                extra: ["-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=500"])
            // Each member is killed while it owns partitions, after it has had time to store a batch.
            let joined = try await eventually(timeout: .seconds(60)) { p.logged("] assigned ") }
            #expect(joined, "storage member \(kills + 1) was not given partitions within 60 s; see \(log)")
            let before = try Self.stored(db, topic: topic, group: group).rows
            try await Task.sleep(for: .milliseconds(Int.random(in: 600...1_500)))
            p.kill9()
            _ = await p.waitForExit()
            kills += 1
            if try Self.stored(db, topic: topic, group: group).rows > before { killedWhileStoring += 1 }
        }
        #expect(killedWhileStoring >= 5, "only \(killedWhileStoring) of 10 kills came after the member stored rows")
        let beforeFinal = try Self.stored(db, topic: topic, group: group).rows
        #expect(beforeFinal < Self.trades, "the stream outlasts the kills (\(beforeFinal) rows stored before the last member)")
        try await producing.value
        let final = try storage(config, topic: topic, group: group, url: db.url, log: log)
        #expect(try await eventually(timeout: .seconds(120)) { ((try? Self.stored(db, topic: topic, group: group))?.rows ?? 0) >= Self.trades }, "see \(log)")
        final.terminate()
        #expect(await final.waitForExit() == 0)
        try Self.checkExactlyOnce(db, topic: topic, group: group, config: config)
    }

    @Test("three instances with members leaving, crashing and joining: every record stored once", .timeLimit(.minutes(5)))
    func threeInstancesRebalancing() async throws {
        let config = try TestBroker.config(), db = try TestPostgres.server()
        let topic = TestBroker.unique("pg-three"), group = TestBroker.unique("pg-g")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)] + TopicSpec.pipelineTopics)
        let log = tempDir("pg-three") + "/storage.log"
        let producing = Task { try await Self.stream(Self.trades, to: topic, config: config, pause: .milliseconds(300)) }
        var members = try (0..<3).map { _ in try storage(config, topic: topic, group: group, url: db.url, log: log) }
        try await Task.sleep(for: .seconds(4))
        members[1].terminate()
        #expect(await members[1].waitForExit() == 0)
        try await Task.sleep(for: .seconds(2))
        members[2].kill9()
        _ = await members[2].waitForExit()
        members[1] = try storage(config, topic: topic, group: group, url: db.url, log: log)
        try await Task.sleep(for: .seconds(3))
        members[2] = try storage(config, topic: topic, group: group, url: db.url, log: log)
        try await Task.sleep(for: .seconds(2))
        members[0].kill9()
        _ = await members[0].waitForExit()
        try await producing.value
        #expect(try await eventually(timeout: .seconds(120)) { ((try? Self.stored(db, topic: topic, group: group))?.rows ?? 0) >= Self.trades }, "see \(log)")
        try await Task.sleep(for: .seconds(2))
        for m in members.dropFirst() { m.terminate(); #expect(await m.waitForExit() == 0) }
        try Self.checkExactlyOnce(db, topic: topic, group: group, config: config)
    }

    /// Streams `trades` into a storage consumer over a database of its own, runs `outage` once
    /// 20,000 rows are stored, waits for every row, checks each is stored once, and returns the
    /// consumer's "not consuming" lines and its whole log.
    func storedThrough(_ name: String, password: Bool = false, outage: (LocalPostgres) async throws -> Void) async throws -> (down: [Substring], log: String) {
        let config = try TestBroker.config()
        let db = try LocalPostgres(port: try LocalBroker.freePort())
        defer { try? db.freeze(false); db.stop() }
        let topic = TestBroker.unique(name), group = TestBroker.unique("pg-g")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)] + TopicSpec.pipelineTopics)
        let log = tempDir(name) + "/storage.log"
        let url = password ? "postgres://postgres:Hunter2Secret@127.0.0.1:\(db.port)/postgres?sslmode=disable" : db.url
        let producing = Task { try await Self.stream(Self.trades, to: topic, config: config, pause: .milliseconds(300)) }
        let p = try storage(config, topic: topic, group: group, url: url, log: log)
        #expect(try await eventually(timeout: .seconds(60)) { ((try? Self.stored(db, topic: topic, group: group))?.rows ?? 0) > 20_000 })
        try await outage(db)
        try await producing.value
        #expect(try await eventually(timeout: .seconds(120)) { ((try? Self.stored(db, topic: topic, group: group))?.rows ?? 0) >= Self.trades }, "see \(log)")
        p.terminate()
        #expect(await p.waitForExit() == 0)
        try Self.checkExactlyOnce(db, topic: topic, group: group, config: config)
        let text = try Self.output(log)
        return (text.split(separator: "\n").filter { $0.contains("not consuming until it answers") }, text)
    }

    @Test("the database restarted mid-stream: the consumer waits, says so once, and loses nothing; no password in the log", .timeLimit(.minutes(5)))
    func databaseRestarted() async throws {
        let (down, text) = try await storedThrough("pg-restart", password: true) { db in
            db.stop(removing: false)
            try await Task.sleep(for: .seconds(4))
            try db.start()
        }
        #expect(down.count == 1, "one line while the database is down: \(down)")
        // The shutdown closes every connection, so the sink learns of it from the closed connection,
        // not by waiting out its 10 s deadline on a query that was in flight.
        #expect(!down.contains { $0.contains("no answer") }, "\(down)")
        #expect(text.contains("is back after"))
        #expect(!text.contains("Hunter2Secret"))
    }

    @Test("the database stopped answering mid-stream (processes frozen): the consumer gives up on the query after 10 s, says so once, and loses nothing", .timeLimit(.minutes(5)))
    func databaseFrozen() async throws {
        let (down, text) = try await storedThrough("pg-frozen") { db in
            try db.freeze(true)
            try await Task.sleep(for: .seconds(14))
            try db.freeze(false)
        }
        #expect(down.count == 1, "one line while the database does not answer: \(down)")
        // A statement in flight waits out the sink's 10 s deadline; a connection being opened, PostgresNIO's 5 s connect timeout.
        #expect(down.first.map { $0.contains("no answer within 10.0 seconds") || $0.contains("Connect timeout (5 s)") } == true, "\(down)")
        #expect(text.contains("is back after"))
    }

    @Test("a partition's first batch whose commit the sink gave up on, committed later: recognised as stored, not written twice", .timeLimit(.minutes(5)))
    func firstCommitLandingLate() async throws {
        let config = try TestBroker.config()
        let db = try LocalPostgres(port: try LocalBroker.freePort())
        defer { _ = try? db.psql("ALTER SYSTEM RESET synchronous_standby_names"); _ = try? db.psql("SELECT pg_reload_conf()"); db.stop() }
        let topic = TestBroker.unique("pg-late"), group = TestBroker.unique("pg-g")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)] + TopicSpec.pipelineTopics)
        let log = tempDir("pg-late") + "/storage.log"
        let p = try storage(config, topic: topic, group: group, url: db.url, log: log)
        #expect(try await eventually(timeout: .seconds(60)) { p.logged("(offsets stored in PostgreSQL)") }, "see \(log)")
        // A synchronous standby that never connects: every commit is written but waits, invisible to
        // others and holding its locks, until the setting is reset; the sink gives up on it after 10 s.
        try db.psql("ALTER SYSTEM SET synchronous_standby_names = 'absent_standby'")
        try db.psql("SELECT pg_reload_conf()")
        let producing = Task { try await Self.stream(Self.trades, to: topic, config: config, pause: .milliseconds(300)) }
        #expect(try await eventually(timeout: .seconds(60)) { p.logged("no answer within 10.0 seconds") }, "see \(log)")
        let waiting = try db.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(waiting) ?? 0) >= 1, "commits waiting: \(waiting)")
        #expect(try Self.stored(db, topic: topic, group: group).offsets.isEmpty, "no partition's offset is visible while its first commit waits")
        try await Task.sleep(for: .seconds(3))
        try db.psql("ALTER SYSTEM RESET synchronous_standby_names")
        try db.psql("SELECT pg_reload_conf()")
        try await producing.value
        #expect(try await eventually(timeout: .seconds(120)) { ((try? Self.stored(db, topic: topic, group: group))?.rows ?? 0) >= Self.trades }, "see \(log)")
        p.terminate()
        #expect(await p.waitForExit() == 0, "see \(log)")
        try Self.checkExactlyOnce(db, topic: topic, group: group, config: config)
        #expect(try Self.output(log).contains("is back after"))
    }

    @Test("bad connection strings and missing permissions: one line at start, no password", arguments: [
        ("mysql://u@h/db", "--sink: invalid PostgreSQL URL mysql://u@h/db", Int32(64)),
        ("postgres://u:Hunter2Secret@127.0.0.1/", "no database name", 64),
        ("postgres://nobody:Hunter2Secret@127.0.0.1:1/market", "connect to PostgreSQL at postgres://nobody@127.0.0.1:1/market", 1),
    ])
    func badSinks(url: String, expected: String, status: Int32) async throws {
        let config = try TestBroker.config()
        let log = tempDir("pg-bad") + "/storage.log"
        let p = try ChildProcess("pipeline", ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", TestBroker.unique("pg-bad"),
                                              "--sink", url, "--metrics-port", "0"], log: log)
        #expect(await p.waitForExit() == status)
        let text = try Self.output(log)
        #expect(text.contains(expected), "\(text)")
        #expect(!text.contains("Hunter2Secret"))
    }

    @Test("a role without the right to create tables gets one line naming the permission")
    func missingPermission() async throws {
        let config = try TestBroker.config(), db = try TestPostgres.server()
        let role = "limited_\(UInt32.random(in: 0...UInt32.max))"
        try db.psql("CREATE ROLE \(role) LOGIN PASSWORD 'Hunter2Secret'")
        let log = tempDir("pg-perm") + "/storage.log"
        let p = try ChildProcess("pipeline", ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", TestBroker.unique("pg-perm"),
                                              "--sink", "postgres://\(role):Hunter2Secret@127.0.0.1:\(db.port)/postgres?sslmode=disable", "--metrics-port", "0"], log: log)
        #expect(await p.waitForExit() == 1)
        let text = try Self.output(log)
        #expect(text.contains("permission denied"), "\(text)")
        #expect(text.split(separator: "\n").filter { $0.contains("Error:") || $0.contains("error") }.count == 1, "one line: \(text)")
        #expect(text.contains("postgres://\(role)@127.0.0.1:\(db.port)/postgres"))
        #expect(!text.contains("Hunter2Secret"))
    }

    @Test("windows are upserted by symbol and window start; alerts stored once")
    func windowsAndAlerts() async throws {
        let config = try TestBroker.config(), db = try TestPostgres.server()
        let metrics = TestBroker.unique("pg-metrics")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: metrics, partitions: 2)] + TopicSpec.pipelineTopics)
        let producer = try KafkaProducer(config: config)
        func window(_ start: Int64, vwap: Double) -> [UInt8] {
            WindowMetrics(symbol: "AAPL", windowStart: start, windowEnd: start + 60_000, tradeCount: 3, volume: 30, vwap: vwap, average: vwap,
                          min: vwap - 1, max: vwap + 1, first: vwap, last: vwap, changePct: 0.5).jsonBytes()
        }
        // The same window twice (a later version replaces it) and one more.
        for (start, vwap) in [(Int64(1_700_000_000_000), 100.0), (1_700_000_000_000, 101.5), (1_700_000_010_000, 102.0)] {
            try producer.enqueue(topic: metrics, key: Array("AAPL".utf8), value: window(start, vwap: vwap))
        }
        try producer.flush(timeout: .seconds(10))
        let log = tempDir("pg-windows") + "/storage.log"
        let p = try ChildProcess("pipeline", ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", metrics, "--records", "windows",
                                              "--sink", db.url, "--metrics-port", "0"], log: log)
        #expect(try await eventually(timeout: .seconds(60)) {
            (try? db.psql("SELECT count(*) FROM marketstream.windows WHERE topic = '\(metrics)'"))?.trimmingCharacters(in: .whitespacesAndNewlines) == "2"
        }, "see \(log)")
        try await Task.sleep(for: .seconds(2))
        p.terminate()
        #expect(await p.waitForExit() == 0)
        let rows = try db.psql("SELECT extract(epoch FROM window_start)::bigint, vwap FROM marketstream.windows WHERE topic = '\(metrics)' ORDER BY 1")
        #expect(rows.split(separator: "\n") == ["1700000000|101.5", "1700000010|102"])
    }

    @Test("pipeline dlq lists and counts poison records by reason; redriving a range twice sends each record once")
    func deadLetterTools() async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("dlq-src")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 1)] + TopicSpec.pipelineTopics)
        let producer = try KafkaProducer(config: config)
        let good = Trade(symbol: "AAPL", price: 1, timestamp: 1_700_000_000_000, volume: 1, conditions: nil)
        let encoded = String(decoding: TradeMessage.encode(good), as: UTF8.self)
        let poison: [(String, String)] = [
            ("{not json", "not valid JSON"), (#"{"x":1}"#, "missing field"),
            (encoded.replacingOccurrences(of: #""price":1"#, with: #""price":"high""#), "price"), ("{not json either", "not valid JSON"),
        ]
        #expect(poison[2].0 != encoded)
        try producer.enqueue(topic: topic, key: Array("AAPL".utf8), value: TradeMessage.encode(good))
        for (value, _) in poison { try producer.enqueue(topic: topic, key: Array("AAPL".utf8), value: Array(value.utf8)) }
        try producer.flush(timeout: .seconds(10))
        let dir = tempDir("dlq")
        let logger = try ChildProcess("pipeline", ["logger", "--quiet", "--bootstrap-servers", config.bootstrapServers, "--topic", topic,
                                                   "--group", TestBroker.unique("dlq-g"), "--metrics-port", "0"], log: dir + "/logger.log")
        func mine() throws -> [DeadLetter] { try DeadLetterTools(config: config).deadLetters().filter { $0.sourceTopic == topic } }
        #expect(try await eventually(timeout: .seconds(30)) { try mine().count == poison.count })
        logger.terminate()
        _ = await logger.waitForExit()
        let letters = try mine()
        for (d, (_, reason)) in zip(letters, poison) { #expect(d.reason.contains(reason), "\(d.reason) should mention \(reason)") }

        func dlq(_ arguments: [String]) async throws -> String {
            let log = dir + "/\(UUID().uuidString).log"
            let p = try ChildProcess("pipeline", ["dlq"] + arguments + ["--bootstrap-servers", config.bootstrapServers], log: log)
            #expect(await p.waitForExit() == 0, "\(arguments)")
            return try String(contentsOfFile: log, encoding: .utf8)
        }
        let counted = try await dlq(["count", "--by", "reason", "--source-topic", topic])
        #expect(counted.contains("4\ttotal"), "\(counted)")
        #expect(counted.split(separator: "\n").contains { $0.hasPrefix("2\t") && $0.contains("not valid JSON") }, "\(counted)")
        let listed = try await dlq(["list", "--source-topic", topic])
        #expect(listed.split(separator: "\n").filter { $0.contains("\t\(topic)[0]@") }.count == 4, "\(listed)")
        let shown = try await dlq(["show", String(letters[0].offset), "--partition", String(letters[0].partition)])
        #expect(shown.contains("header   dlq.reason: \(letters[0].reason)") && shown.contains("{not json"), "\(shown)")

        // Redrive the first three, twice: each comes back once.
        let range = ["--source-topic", topic, "--from-offset", String(letters[0].offset), "--to-offset", String(letters[2].offset)]
        let first = try await dlq(["redrive"] + range)
        #expect(first.contains("redrove 3, skipped 0"), "\(first)")
        let second = try await dlq(["redrive"] + range)
        #expect(second.contains("redrove 0, skipped 3"), "\(second)")
        let back = try readTopic(topic, config: config).compactMap { $0.header("dlq.redriven-from").map { String(decoding: $0, as: UTF8.self) } }
        #expect(back.sorted() == letters.prefix(3).map { $0.id(topic: Topics.deadLetterQueue) }.sorted())
    }
}
