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

@Suite("Storage survives kill -9 and SIGTERM", .serialized)
struct StorageCrashTests {
    @Test func killedTwentyTimesAndStoppedWithSIGTERMDuringTheStreamStoresEveryRecordOnce() async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("crash")
        let group = TestBroker.unique("storage")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3)])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("crash")).path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let markerDir = dir + "/" + SafeFileName.component(for: topic) + "/_offsets"
        // What every storage process said, kept when the test fails.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.unique("storage-crash") + ".log").path
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let total = 200_000

        /// Starts a storage member. The short session (2 s) makes the group notice a killed member in
        /// about 3 s instead of 6.
        func start() throws -> ChildProcess {
            try ChildProcess("pipeline", ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", topic, "--group", group,
                                          "--data-dir", dir, "--batch-size", "2000", "--batch-seconds", "1", "--metrics-port", "0",
                                          "-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=500"], log: log)
        }

        // The stream lasts through the kills: 2,000 trades every 800 ms.
        let producing = Task.detached {
            let producer = try KafkaProducer(config: config)
            let symbols = ["AAPL", "MSFT", "TSLA", "GOOGL", "BINANCE:BTCUSDT"]
            for i in 0..<total {
                let t = Trade(symbol: symbols[i % 5], price: 100 + Double(i % 1000) / 100, timestamp: 1_700_000_000_000 + Int64(i), volume: 1)
                try producer.enqueue(topic: topic, key: Array(t.symbol.utf8), value: TradeMessage.encode(t), timestamp: t.timestamp)
                if i % 2_000 == 1_999 { try await Task.sleep(for: .milliseconds(800)) }
            }
            try producer.close()
        }
        var process = try start()
        var kills = 0, terms = 0, killedWhileStoring = 0
        while kills < 20 {
            // Each member is killed while it owns partitions, so every kill can land in a batch being written.
            let joined = try await eventually(timeout: .seconds(60)) { process.logged("] assigned ") }
            #expect(joined, "storage member \(kills + terms + 1) was not given partitions within 60 s; the log: \(log)")
            let before = try StorageService.readMarkers(markerDir)
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...1200)))
            let graceful = (kills + terms) % 6 == 5
            if graceful { process.terminate() } else { process.kill9() }
            let status = await process.waitForExit()
            if graceful {
                terms += 1
                #expect(status == 0, "SIGTERM mid-stream must exit cleanly")
            } else {
                kills += 1
                if try StorageService.readMarkers(markerDir) != before { killedWhileStoring += 1 }
            }
            process = try start()
        }
        // Most kills hit a member that had just stored a batch (its marker moved while it owned partitions).
        #expect(killedWhileStoring >= 10, "only \(killedWhileStoring) of 20 kills came after the member stored a batch")
        #expect(terms >= 3)
        try await producing.value
        #expect(try await eventually(timeout: .seconds(120)) { storedLines(dir).count >= total }, "the storage processes' log: \(log)")
        process.terminate()
        #expect(await process.waitForExit() == 0)

        let lines = storedLines(dir)
        #expect(lines.count == total)
        #expect(Set(lines.map(\.offsetKey)).count == total)

        let markers = try StorageService.readMarkers(markerDir)
        let probe = try KafkaConsumer(config: config, groupID: group, topics: [], commitPolicy: .manual)
        let committed = try probe.committed((0..<3).map { TopicPartition(topic: topic, partition: Int32($0)) })
        probe.close()
        #expect(committed.map(\.offset).reduce(0, +) == Int64(total))
        for c in committed { #expect(markers[c.partition].map { $0 + 1 } == c.offset) }

        let again = try start()
        try await Task.sleep(for: .seconds(4))
        again.terminate()
        #expect(await again.waitForExit() == 0)
        #expect(storedLines(dir).count == total)
    }
}
