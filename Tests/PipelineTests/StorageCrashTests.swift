@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

/// The `pipeline` executable built next to the tests.
func pipelineBinary() -> String? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    return [".build/debug/pipeline", ".build/release/pipeline"].map { root + "/" + $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

@Suite("Storage survives kill -9 and SIGTERM", .serialized)
struct StorageCrashTests {
    @Test func killedTwentyTimesAndStoppedWithSIGTERMDuringTheStreamStoresEveryRecordOnce() async throws {
        guard let binary = pipelineBinary() else {
            Issue.record("the pipeline executable is not built; run swift build --build-tests")
            return
        }
        let config = try TestBroker.config()
        let topic = TestBroker.unique("crash")
        let group = TestBroker.unique("storage")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("crash")).path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // What every storage process said, kept when the test fails.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("storage-crash") + ".log").path
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let total = 200_000

        func start() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", topic, "--group", group,
                           "--data-dir", dir, "--batch-size", "2000", "--batch-seconds", "1", "--metrics-port", "0"]
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            out.seekToEndOfFile()
            out.write(Data("--- storage started\n".utf8))
            p.standardOutput = out
            p.standardError = out
            try p.run()
            return p
        }

        let producing = Task.detached {
            let producer = try KafkaProducer(config: config)
            let symbols = ["AAPL", "MSFT", "TSLA", "GOOGL", "BINANCE:BTCUSDT"]
            for i in 0..<total {
                let t = Trade(symbol: symbols[i % 5], price: 100 + Double(i % 1000) / 100, timestamp: 1_700_000_000_000 + Int64(i), volume: 1)
                try producer.enqueue(topic: topic, key: Array(t.symbol.utf8), value: TradeMessage.encode(t), timestamp: t.timestamp)
                if i % 20_000 == 19_999 { try await Task.sleep(for: .milliseconds(700)) }
            }
            try producer.close()
        }
        var process = try start()
        var kills = 0, terms = 0
        while kills < 20 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...1200)))
            let graceful = (kills + terms) % 6 == 5
            kill(process.processIdentifier, graceful ? SIGTERM : SIGKILL)
            process.waitUntilExit()
            if graceful {
                terms += 1
                #expect(process.terminationReason == .exit && process.terminationStatus == 0, "SIGTERM mid-stream must exit cleanly")
            } else {
                kills += 1
            }
            process = try start()
        }
        #expect(terms >= 3)
        try await producing.value
        #expect(try await eventually(timeout: .seconds(120)) { storedLines(dir).count >= total }, "the storage processes' log: \(log)")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        let lines = storedLines(dir)
        #expect(lines.count == total)
        #expect(Set(lines.map(\.offsetKey)).count == total)

        let markers = try StorageService.readMarkers(dir + "/" + SafeFileName.component(for: topic) + "/_offsets")
        let probe = try KafkaConsumer(config: config, groupID: group, topics: [], commitPolicy: .manual)
        let committed = try probe.committed((0..<3).map { TopicPartition(topic: topic, partition: Int32($0)) })
        probe.close()
        #expect(committed.map(\.offset).reduce(0, +) == Int64(total))
        for c in committed { #expect(markers[c.partition].map { $0 + 1 } == c.offset) }

        let again = try start()
        try await Task.sleep(for: .seconds(4))
        kill(again.processIdentifier, SIGTERM)
        again.waitUntilExit()
        #expect(storedLines(dir).count == total)
    }
}
