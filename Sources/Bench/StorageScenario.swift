import Pipeline
import PostgresSink
import Kafka
import MarketData
import Foundation
import Logging

/// The storage consumer's sinks over the same topic in one run: crash-safe files, then PostgreSQL
/// (rows and offsets in one transaction per batch) on a local server started for the run.
public struct StorageScenario: Sendable {
    public var config: KafkaConfig
    public var trades: Int

    public init(config: KafkaConfig, trades: Int) { self.config = config; self.trades = trades }

    public func run() async throws -> [BenchResult] {
        let topic = "bench-store-\(UInt32.random(in: 0...UInt32.max))"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 3), TopicSpec(name: Topics.deadLetterQueue, partitions: 1)])
        let symbols = (0..<50).map { "SYM\($0)" }
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "bench")
        var i = 0
        while i < trades {
            var chunk: [Trade] = []
            for k in i..<min(i + 1000, trades) {
                let price = 100 + Double(k % 997) / 100
                let time: Int64 = 1_700_000_000_000 + Int64(k)
                chunk.append(Trade(symbol: symbols[k % 50], price: price, timestamp: time, volume: Double(1 + k % 300), conditions: ["1"]))
            }
            try publisher.publish(chunk)
            i += 1000
        }
        try publisher.producer.close(timeout: .seconds(120))
        let bytes = TradeMessage.encode(Trade(symbol: "SYM1", price: 100.5, timestamp: 1_700_000_000_000, volume: 10, conditions: ["1"])).count
        var logger = Logger(label: "bench")
        logger.logLevel = .error

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-store-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var fileOptions = StorageService.Options(dataDir: dir)
        fileOptions.batchSize = 5000
        fileOptions.batchInterval = .seconds(1)
        try StorageService.prepareFolder(fileOptions, topic: topic)
        let files = try StorageService(service: try consumer(topic, "bench-files", logger), options: fileOptions)
        let fileRow = try await measure("storage sink: files", bytes: bytes, service: files.service) { try await files.run() } stored: { files.service.processed }

        guard LocalPostgres.binaries != nil else {
            return [fileRow, BenchResult(scenario: "storage sink: PostgreSQL", messages: 0, messageBytes: bytes, seconds: 0, cpuSeconds: 0,
                                         note: "skipped: PostgreSQL is not installed (scripts/setup.sh installs it)")]
        }
        let server = try LocalPostgres(port: try LocalBroker.freePort())
        defer { server.stop() }
        let pg = try await PostgresStorageService(service: try consumer(topic, "bench-pg", logger, batchSize: PostgresStorageService.batchSize),
                                                  options: .init(target: try PostgresTarget(url: server.url), records: .trades))
        var pgRow = try await measure("storage sink: PostgreSQL", bytes: bytes, service: pg.service) { try await pg.run() } stored: { pg.stored }
        pgRow.ratioToFloor = pgRow.messagesPerSecond / fileRow.messagesPerSecond
        pgRow.note = "rows/s into a local PostgreSQL (fsync off); per batch one transaction per connection (3) with its partitions' offsets; ratio against the file sink in this run"
        return [fileRow, pgRow]
    }

    private func consumer(_ topic: String, _ group: String, _ logger: Logger, batchSize: Int = 1000) throws -> ConsumerService {
        var options = ConsumerService.Options(groupID: "\(group)-\(UInt32.random(in: 0...UInt32.max))")
        options.topic = topic
        options.batchSize = batchSize
        return try ConsumerService(config: config, options: options, logger: logger)
    }

    /// From the first record stored to all `trades` stored (and the service stopped cleanly).
    private func measure(_ name: String, bytes: Int, service: ConsumerService, run: @escaping @Sendable () async throws -> Void,
                         stored: @escaping @Sendable () -> Int) async throws -> BenchResult {
        let running = Task { try await run() }
        let cpu0 = processCPUSeconds()
        while stored() == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let start = ContinuousClock.now
        let deadline = start + .seconds(300)
        while stored() < trades, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        service.consumer.finish()
        try await running.value
        return BenchResult(scenario: name, messages: stored(), messageBytes: bytes, seconds: (ContinuousClock.now - start).inSeconds,
                           cpuSeconds: processCPUSeconds() - cpu0)
    }
}
