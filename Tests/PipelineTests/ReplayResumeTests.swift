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

/// The trades of each line of a recording, read independently of the project's reader.
func tradesByLine(_ path: String) throws -> [Int: [String]] {
    var out: [Int: [String]] = [:]
    for (i, line) in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
              let frame = obj["frame"] as? [String: Any], frame["type"] as? String == "trade", let data = frame["data"] as? [[String: Any]] else { continue }
        out[i + 1] = data.map { t in "\(t["s"] as? String ?? "?") \((t["p"] as? NSNumber)?.doubleValue ?? .nan) \((t["t"] as? NSNumber)?.int64Value ?? 0) \((t["v"] as? NSNumber)?.doubleValue ?? .nan)" }
    }
    return out
}

/// The trades a topic holds, in the same form, with how often each occurs.
func topicTrades(_ messages: [KafkaMessage]) throws -> [String: Int] {
    var out: [String: Int] = [:]
    for m in messages {
        let t = try m.value.withUnsafeBytes { try TradeMessage.decode($0) }
        out["\(t.symbol) \(t.price) \(t.timestamp) \(t.volume)", default: 0] += 1
    }
    return out
}

@Suite("Replay into Kafka that stops midway says what is in Kafka and how to continue", .serialized)
struct ReplayResumeTests {
    /// A bad line mid-file: the error names it and the line to continue from; continuing from there
    /// publishes every trade exactly once.
    @Test func aReplayStoppedByABadLineContinuesWithoutDuplicates() async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("resume-raw")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)])
        let dir = NSTemporaryDirectory() + "/" + TestBroker.unique("resume")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lines = try String(contentsOfFile: packageRoot() + "/recordings/btc.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        lines.insert("this line is broken", at: 499)
        let path = dir + "/broken.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let args = [path, "--speed", "max", "--topic", topic, "--bootstrap-servers", config.bootstrapServers, "--quiet"]

        let first = try await runToEnd("replay", args, timeout: .seconds(60))
        #expect(first.status != nil && first.status != 0)
        #expect(first.output.contains("broken.jsonl:500"), "printed: \(first.output)")
        #expect(first.output.contains("every trade before line 500 is in Kafka"), "printed: \(first.output)")
        #expect(first.output.contains("skip it with --from-line 501"), "printed: \(first.output)")

        let second = try await runToEnd("replay", args + ["--from-line", "501"], timeout: .seconds(60))
        #expect(second.status == 0, "printed: \(second.output)")
        let expected = try tradesByLine(path).values.flatMap { $0 }
        let held = try topicTrades(readTopic(topic, config: config))
        #expect(held.values.reduce(0, +) == expected.count, "the topic holds \(held.values.reduce(0, +)) trades, the file has \(expected.count)")
        #expect(held.filter { $0.value > 1 }.isEmpty, "trades published twice: \(held.filter { $0.value > 1 }.count)")
        #expect(Set(held.keys) == Set(expected), "\(Set(expected).subtracting(held.keys).count) trades of the file are not in the topic")
    }

    /// The broker goes away mid-replay (librdkafka's mock cluster, so the topic can be read after):
    /// failures are reported as they happen, and the summary's counts and line match what the topic holds.
    @Test func aBrokerLostMidReplayIsReportedWithCountsAndTheLineToContinueFrom() async throws {
        let cluster = MockCluster(brokers: 1)
        cluster.createTopic("raw", partitions: 3, replication: 1)
        let recording = packageRoot() + "/recordings/btc.jsonl"
        let log = NSTemporaryDirectory() + "/" + TestBroker.unique("broker-loss") + ".log"
        // 4× over the first 60 s of the session: 15 s, frames 25 ms apart on average, a progress line every 5 s.
        let replay = try ChildProcess("replay", [recording, "--speed", "4x", "--to", "1795634987835", "--topic", "raw", "--bootstrap-servers", cluster.bootstrapServers,
                                                 "--ensure-topics", "false", "-X", "message.timeout.ms=3000"], log: log)
        try await Task.sleep(for: .seconds(4))
        cluster.setBrokerDown(1)
        let status = await replay.waitForExit(timeout: .seconds(90))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status != nil && status != 0, "printed: \(output)")
        #expect(output.contains("Kafka did not take a trade"), "failures are not reported as they happen: \(output.suffix(2000))")
        #expect(output.contains("FAILED"), "the progress line does not show failures: \(output.suffix(2000))")
        guard let summary = output.split(separator: "\n").first(where: { $0.contains("Kafka acknowledged") }).map(String.init) else {
            Issue.record("no summary of what reached Kafka: \(output.suffix(2000))"); return
        }
        func number(after prefix: String) -> Int? {
            guard let r = summary.range(of: prefix) else { return nil }
            return Int(summary[r.upperBound...].prefix { $0.isNumber || $0 == "," }.replacingOccurrences(of: ",", with: ""))
        }
        let acknowledged = try #require(number(after: "Kafka acknowledged "), "summary: \(summary)")
        let failed = try #require(number(after: "trades; "), "summary: \(summary)")
        let safe = try #require(number(after: "up to recording line "), "summary: \(summary)")
        #expect(failed > 0 && acknowledged > 0)

        cluster.setBrokerUp(1)
        let held = try topicTrades(readTopic("raw", config: KafkaConfig(bootstrapServers: cluster.bootstrapServers)))
        #expect(held.values.reduce(0, +) >= acknowledged, "the topic holds fewer trades than were acknowledged")
        let byLine = try tradesByLine(recording)
        let safeTrades = byLine.filter { $0.key <= safe }.values.flatMap { $0 }
        #expect(!safeTrades.isEmpty)
        #expect(safeTrades.allSatisfy { held[$0] != nil }, "a trade up to line \(safe) is missing from the topic")
        #expect(summary.contains("continue with --from-line \(safe + 1)"), "summary: \(summary)")
    }
}
