import Pipeline
import Kafka
import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

/// A stream into one raw topic made by the real executables, as a user would: real recorded
/// sessions replayed by `replay` (the Tardis BTCUSDT session from ../shared/data/real when present,
/// and recordings/aapl.jsonl), and `sim-exchange`'s seeded market for GOOGL, TSLA and NVDA ingested
/// by `pipeline produce`, so that every partition of the topic has trades. Each source lasts about
/// `seconds` of wall time; event times are historical, so the idle rule never fires.
final class CrashTestStream: @unchecked Sendable {
    let config: KafkaConfig
    let bootstrap: String
    let raw: String
    let dir: String
    let usesRealData: Bool
    private var replays: [ChildProcess] = []
    private var live: [ChildProcess] = []

    init(_ name: String) throws {
        config = try TestBroker.config()
        bootstrap = config.bootstrapServers
        raw = TestBroker.unique("\(name)-raw")
        dir = NSTemporaryDirectory() + "/" + TestBroker.unique(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        usesRealData = realDataDir() != nil
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: raw, partitions: 3)])
    }

    var log: String { dir + "/processes.log" }

    func start(seconds: Double = 30) async throws {
        var sessions: [(String, String)] = [(packageRoot() + "/recordings/aapl.jsonl", "\(180 / seconds)x")]
        if let real = realDataDir() {
            let imported = dir + "/tardis-btcusdt.jsonl"
            let importer = try ChildProcess("replay", ["import", "tardis", real + "/tardis_binance-futures_BTCUSDT_trades_2020-02-22.csv", "--out", imported], log: log)
            #expect(await importer.waitForExit() == 0, "replay import tardis failed; see \(log)")
            sessions.append((imported, "\(7545 / seconds)x"))
        }
        let port = try LocalBroker.freePort()
        live.append(try ChildProcess("sim-exchange", ["--port", "\(port)", "--seed", "7", "--start-time", "1700000000000", "--rate", "150", "--log-level", "warning"], log: log))
        try await Task.sleep(for: .milliseconds(500))
        live.append(try ChildProcess("pipeline", ["produce", "--bootstrap-servers", bootstrap, "--topic", raw, "--url", "ws://127.0.0.1:\(port)/?token=t",
                                                 "--symbols", "GOOGL,TSLA,NVDA", "--metrics-port", "0", "--log-level", "warning"], log: log))
        for (file, speed) in sessions {
            replays.append(try ChildProcess("replay", [file, "--speed", speed, "--topic", raw, "--bootstrap-servers", bootstrap, "--quiet"], log: log))
        }
    }

    /// Waits for the replays to finish, then stops the live ingest gracefully.
    func finish(seconds: Double = 30) async throws {
        for r in replays { #expect(await r.waitForExit(timeout: .seconds(seconds * 3)) == 0, "a replay failed; see \(log)") }
        for p in live.reversed() {
            p.terminate()
            #expect(await p.waitForExit() == 0, "\(p.name) did not stop cleanly; see \(log)")
        }
    }

    func readAll(_ topic: String) throws -> [KafkaMessage] { try readTopic(topic, config: config) }
}

/// One aggregator group writing to its own output topics.
struct AggregatorGroup {
    static let rules = "BINANCE:BTCUSDT:above:9680,BINANCE:BTCUSDT:below:9665,AAPL:above:482.5,AAPL:below:482.2,*:change:0.05"
    let stream: CrashTestStream
    let group: String
    let metrics: String
    let alerts: String

    init(_ stream: CrashTestStream, _ name: String) throws {
        self.stream = stream
        group = TestBroker.unique(name)
        metrics = group + "-metrics"
        alerts = group + "-alerts"
        try KafkaAdmin(config: stream.config).ensureTopics([TopicSpec(name: metrics, partitions: 3), TopicSpec(name: alerts, partitions: 2)])
    }

    /// Starts one member (the real `pipeline aggregator`); crash detection in about 2 s.
    func member() throws -> ChildProcess {
        try ChildProcess("pipeline", [
            "aggregator", "--bootstrap-servers", stream.bootstrap, "--topic", stream.raw, "--group", group,
            "--metrics-topic", metrics, "--alerts-topic", alerts, "--window", "10", "--hop", "2", "--lateness", "1",
            "--alerts", Self.rules, "--metrics-port", "0", "-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=500",
        ], log: stream.dir + "/\(group).log")
    }

    /// What the group wrote: each window's values by symbol and start, and each alert's count.
    func outputs() throws -> GroupOutputs {
        var out = GroupOutputs()
        for m in try stream.readAll(metrics) {
            let w = json(m)
            out.windows["\(w["symbol"] as? String ?? "?")@\((w["window_start"] as? NSNumber)?.int64Value ?? -1)", default: []].append(m.value)
        }
        for m in try stream.readAll(alerts) { out.alerts[String(decoding: m.value, as: UTF8.self), default: 0] += 1 }
        return out
    }
}

struct GroupOutputs: Equatable {
    var windows: [String: [[UInt8]]] = [:]
    var alerts: [String: Int] = [:]
    var windowCount: Int { windows.values.reduce(0) { $0 + $1.count } }
    var alertCount: Int { alerts.values.reduce(0, +) }
    var repeatedWindows: Int { windows.values.reduce(0) { $0 + $1.count - 1 } }
    var repeatedAlerts: Int { alerts.values.reduce(0) { $0 + $1 - 1 } }
}

/// Waits until the reference group's output has stopped growing and `group` has as many distinct
/// outputs, then returns both.
func converge(reference: AggregatorGroup, _ group: AggregatorGroup, timeout: Duration = .seconds(120)) async throws -> (GroupOutputs, GroupOutputs) {
    let deadline = ContinuousClock.now + timeout
    var last = (-1, -1), stableSince = ContinuousClock.now
    while true {
        let ref = try reference.outputs(), got = try group.outputs()
        let counts = (ref.windowCount, ref.alertCount)
        if counts != last { last = counts; stableSince = .now }
        let caughtUp = got.windows.count >= ref.windows.count && got.alerts.count >= ref.alerts.count
        if (caughtUp && ContinuousClock.now - stableSince >= .seconds(4)) || ContinuousClock.now > deadline { return (ref, got) }
        try await Task.sleep(for: .seconds(1))
    }
}

/// Checks `got` against the uninterrupted reference (same messages, none repeated) and both
/// against a plain recomputation from the raw topic.
func expectSameAsUninterrupted(_ ref: GroupOutputs, _ got: GroupOutputs, stream: CrashTestStream, _ what: String) throws {
    print("\(what): the uninterrupted run wrote \(ref.windowCount) windows and \(ref.alertCount) alerts; this one \(got.windowCount) and \(got.alertCount)")
    // With the Tardis session: about 3,800 windows; recordings/aapl.jsonl and sim-exchange alone: about 130.
    #expect(ref.windowCount > (stream.usesRealData ? 1000 : 80), "the reference emitted only \(ref.windowCount) windows")
    #expect(ref.alertCount > (stream.usesRealData ? 20 : 5), "the reference emitted only \(ref.alertCount) alerts")
    #expect(ref.repeatedWindows == 0 && ref.repeatedAlerts == 0)
    #expect(got.repeatedWindows == 0, "\(what): \(got.repeatedWindows) windows written more than once")
    #expect(got.repeatedAlerts == 0, "\(what): \(got.repeatedAlerts) alerts written more than once")
    let missing = Set(ref.windows.keys).subtracting(got.windows.keys), extra = Set(got.windows.keys).subtracting(ref.windows.keys)
    #expect(missing.isEmpty, "\(what): \(missing.count) windows missing, e.g. \(missing.sorted().prefix(3))")
    #expect(extra.isEmpty, "\(what): \(extra.count) windows the uninterrupted run does not have, e.g. \(extra.sorted().prefix(3))")
    let differing = ref.windows.filter { key, values in got.windows[key].map { $0.first != values.first } ?? false }.keys
    #expect(differing.isEmpty, "\(what): \(differing.count) windows with other numbers, e.g. \(differing.sorted().prefix(2).map { "\($0): uninterrupted \(String(decoding: ref.windows[$0]![0], as: UTF8.self)), got \(String(decoding: got.windows[$0]![0], as: UTF8.self))" })")
    let missingAlerts = Set(ref.alerts.keys).subtracting(got.alerts.keys), extraAlerts = Set(got.alerts.keys).subtracting(ref.alerts.keys)
    #expect(missingAlerts.isEmpty, "\(what): \(missingAlerts.count) alerts missing, e.g. \(missingAlerts.sorted().prefix(2))")
    #expect(extraAlerts.isEmpty, "\(what): \(extraAlerts.count) extra alerts, e.g. \(extraAlerts.sorted().prefix(2))")

    // Plain recomputation: trades arrive in time order per symbol, so nothing is late and every
    // window with trades that ends by (newest − lateness) is emitted.
    let window: Int64 = 10_000, hop: Int64 = 2_000, lateness: Int64 = 1_000
    var bySymbol: [String: [Trade]] = [:]
    for m in try stream.readAll(stream.raw).sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
        let trade = try m.value.withUnsafeBytes { try TradeMessage.decode($0) }
        bySymbol[trade.symbol, default: []].append(trade)
    }
    #expect(bySymbol.count == (stream.usesRealData ? 5 : 4), "symbols in the stream: \(bySymbol.keys.sorted())")
    var expected: [String: ExpectedWindow] = [:]
    var crossings: [String: Int] = [:]
    let rules = try AlertRules.parse(AggregatorGroup.rules)
    for (symbol, trades) in bySymbol {
        #expect(zip(trades, trades.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp }, "\(symbol) out of time order")
        let watermark = trades.last!.timestamp - lateness
        var members: [Int64: [Trade]] = [:]
        for t in trades {
            var k = (t.timestamp - window) / hop + 1
            while k * hop <= t.timestamp { members[k, default: []].append(t); k += 1 }
        }
        for (k, inside) in members where k * hop + window <= watermark { expected["\(symbol)@\(k * hop)"] = ExpectedWindow(inside) }
        for rule in rules where rule.symbol == symbol {
            var side: Bool?
            for t in trades {
                let now: Bool
                switch rule.condition {
                case .priceAbove(let l): now = t.price > l
                case .priceBelow(let l): now = t.price < l
                case .changeBeyond: continue
                }
                if now, side == false { crossings["\(symbol) \(rule.condition.name)", default: 0] += 1 }
                side = now
            }
        }
    }
    #expect(Set(expected.keys) == Set(ref.windows.keys), "windows of the recomputation: \(expected.count), of the run: \(ref.windows.count)")
    var wrong: [String] = []
    for (key, values) in got.windows {
        guard let e = expected[key], let v = values.first,
              let w = (try? JSONSerialization.jsonObject(with: Data(v))) as? [String: Any] else { continue }
        let ok = (w["trade_count"] as? NSNumber)?.intValue == e.count && close((w["volume"] as? NSNumber)?.doubleValue ?? .nan, e.volume)
            && close((w["vwap"] as? NSNumber)?.doubleValue ?? .nan, e.pv / e.volume) && (w["min"] as? NSNumber)?.doubleValue == e.min
            && (w["max"] as? NSNumber)?.doubleValue == e.max && (w["first"] as? NSNumber)?.doubleValue == e.first
            && (w["last"] as? NSNumber)?.doubleValue == e.last && close((w["average"] as? NSNumber)?.doubleValue ?? .nan, e.sum / Double(e.count))
        if !ok { wrong.append(key) }
    }
    #expect(wrong.isEmpty, "\(what): \(wrong.count) windows differ from the recomputation, e.g. \(wrong.sorted().prefix(3))")
    var gotCrossings: [String: Int] = [:], gotChanges = 0
    for (text, n) in got.alerts {
        let a = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        let rule = a["rule"] as? String ?? "?"
        if rule == "change" { gotChanges += n } else { gotCrossings["\(a["symbol"] as? String ?? "?") \(rule)", default: 0] += n }
    }
    #expect(gotCrossings == crossings, "\(what): price alerts per symbol and rule \(gotCrossings), recomputed \(crossings)")
    let changes = expected.values.filter { abs(($0.last - $0.first) / $0.first * 100) >= 0.05 }.count
    #expect(gotChanges == changes, "\(what): \(gotChanges) change alerts, recomputed \(changes)")
}

@Suite("Crash safety with real processes: kill -9, SIGTERM, members joining and leaving", .serialized)
struct CrashSafetyTests {
    /// The aggregator executable killed with SIGKILL at random moments and restarted at once;
    /// an uninterrupted aggregator in another group reads the same stream.
    @Test func aggregatorKilledTenTimesGivesTheOutputOfAnUninterruptedRun() async throws {
        let stream = try CrashTestStream("kill")
        if !stream.usesRealData { print("note: ../shared/data/real is absent; this run uses recordings/aapl.jsonl and sim-exchange only") }
        let reference = try AggregatorGroup(stream, "reference"), killed = try AggregatorGroup(stream, "killed")
        let uninterrupted = try reference.member()
        var member = try killed.member()
        try await stream.start()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 1500...3500, using: &rng)))
            member.kill9()
            _ = await member.waitForExit()
            member = try killed.member()
        }
        try await stream.finish()
        let (ref, got) = try await converge(reference: reference, killed)
        member.terminate(); uninterrupted.terminate()
        #expect(await member.waitForExit() == 0)
        #expect(await uninterrupted.waitForExit() == 0)
        try expectSameAsUninterrupted(ref, got, stream: stream, "after 10 SIGKILLs")
    }

    /// Graceful stops in the middle of the stream: each exits 0 after its final checkpoint and
    /// the restarted member continues without repeating or losing anything.
    @Test func aggregatorStoppedWithSigtermAndRestartedGivesTheSameOutput() async throws {
        let stream = try CrashTestStream("sigterm")
        let reference = try AggregatorGroup(stream, "reference"), stopped = try AggregatorGroup(stream, "stopped")
        let uninterrupted = try reference.member()
        var member = try stopped.member()
        try await stream.start(seconds: 24)
        for wait in [7, 8] {
            try await Task.sleep(for: .seconds(wait))
            member.terminate()
            #expect(await member.waitForExit() == 0, "SIGTERM did not stop the aggregator cleanly")
            member = try stopped.member()
        }
        try await stream.finish(seconds: 24)
        let (ref, got) = try await converge(reference: reference, stopped)
        member.terminate(); uninterrupted.terminate()
        _ = await member.waitForExit(); _ = await uninterrupted.waitForExit()
        try expectSameAsUninterrupted(ref, got, stream: stream, "after 2 SIGTERM restarts")
    }

    /// Up to three members (one per partition) joining and leaving mid-stream, by SIGTERM and by
    /// SIGKILL, so partitions move between live members and from dead ones.
    @Test func threeAggregatorsJoiningAndLeavingGiveTheOutputOfOne() async throws {
        let stream = try CrashTestStream("scale")
        let reference = try AggregatorGroup(stream, "reference"), scaled = try AggregatorGroup(stream, "scaled")
        let uninterrupted = try reference.member()
        var a = try scaled.member()
        try await stream.start()
        try await Task.sleep(for: .seconds(3))
        var b = try scaled.member()
        try await Task.sleep(for: .seconds(3))
        let c = try scaled.member()
        try await Task.sleep(for: .seconds(4))
        b.terminate()
        #expect(await b.waitForExit() == 0)
        try await Task.sleep(for: .seconds(2))
        b = try scaled.member()
        try await Task.sleep(for: .seconds(3))
        a.kill9()
        _ = await a.waitForExit()
        try await Task.sleep(for: .seconds(3))
        a = try scaled.member()
        try await Task.sleep(for: .seconds(3))
        c.terminate()
        #expect(await c.waitForExit() == 0)
        try await stream.finish()
        let (ref, got) = try await converge(reference: reference, scaled)
        for p in [a, b, uninterrupted] { p.terminate() }
        for p in [a, b, uninterrupted] { _ = await p.waitForExit() }
        try expectSameAsUninterrupted(ref, got, stream: stream, "with members joining and leaving")
    }

    /// Three `pipeline storage` instances sharing one data folder, killed and restarted at random:
    /// every produced record is stored exactly once.
    @Test func threeStorageInstancesKilledAtRandomStoreEveryRecordOnce() async throws {
        let stream = try CrashTestStream("storage")
        let data = stream.dir + "/data", group = TestBroker.unique("storage")
        func member() throws -> ChildProcess {
            try ChildProcess("pipeline", ["storage", "--bootstrap-servers", stream.bootstrap, "--topic", stream.raw, "--group", group,
                                          "--data-dir", data, "--batch-size", "200", "--batch-seconds", "1", "--metrics-port", "0",
                                          "-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=500"], log: stream.dir + "/storage.log")
        }
        var members = try (0..<3).map { _ in try member() }
        try await stream.start()
        var rng = SystemRandomNumberGenerator()
        var kills = 0
        for _ in 0..<10 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 1500...3000, using: &rng)))
            let i = Int.random(in: 0..<3, using: &rng)
            members[i].kill9()
            _ = await members[i].waitForExit()
            kills += 1
            members[i] = try member()
        }
        try await stream.finish()
        let produced = try stream.readAll(stream.raw)
        #expect(produced.count > 10_000)
        let deadline = ContinuousClock.now + .seconds(90)
        var stored = storedLines(data)
        while Set(stored.map(\.offsetKey)).count < produced.count && ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(1))
            stored = storedLines(data)
        }
        for m in members { m.terminate() }
        for m in members { #expect(await m.waitForExit() == 0) }
        stored = storedLines(data)
        let expected = Set(produced.map { "\($0.partition)@\($0.offset)" })
        var seen: [String: Int] = [:]
        for line in stored { seen[line.offsetKey, default: 0] += 1 }
        let repeated = seen.filter { $0.value > 1 }
        #expect(kills == 10)
        #expect(repeated.isEmpty, "\(repeated.count) records stored more than once, e.g. \(repeated.keys.sorted().prefix(3))")
        #expect(Set(seen.keys) == expected, "stored \(seen.count) distinct records of \(expected.count) produced; missing e.g. \(expected.subtracting(seen.keys).sorted().prefix(3))")
    }
}
