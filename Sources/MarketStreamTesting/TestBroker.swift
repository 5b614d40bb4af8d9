import Kafka
import Pipeline
import Feeds
import MarketData
import SimExchange
import Foundation

/// One Tansu broker for the whole test process, started on first use on a free port and
/// stopped when the process ends. `KAFKA_TEST_BOOTSTRAP_SERVERS` points the tests at an
/// existing cluster instead.
public enum TestBroker {
    private static let shared: Result<(LocalBroker?, String), any Error> = Result {
        if let external = ProcessInfo.processInfo.environment["KAFKA_TEST_BOOTSTRAP_SERVERS"] { return (nil, external) }
        let broker = try LocalBroker()
        return (broker, broker.bootstrapServers)
    }

    public static func bootstrapServers() throws -> String { try shared.get().1 }

    public static func config() throws -> KafkaConfig { KafkaConfig(bootstrapServers: try bootstrapServers()) }

    /// A name no other test uses, so tests can share the broker and run in parallel.
    public static func unique(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    }
}

/// Reads from `consumer` until `count` records arrived or `timeout` passed, and returns
/// what arrived (storing each record's offset when `store`).
public func collect(_ consumer: KafkaConsumer, count: Int, timeout: Duration = .seconds(30), store: Bool = true) async throws -> [KafkaMessage] {
    let deadline = ContinuousClock.now + timeout
    var out: [KafkaMessage] = []
    while out.count < count, ContinuousClock.now < deadline {
        guard let batch = try await consumer.nextBatch(timeout: min(.milliseconds(200), deadline - .now)) else { break }
        for m in batch where out.count < count {
            out.append(m)
            if store { try consumer.store(m) }
        }
    }
    return out
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

