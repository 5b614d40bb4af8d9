import Kafka
import Aggregation
import MarketData
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import Synchronization

/// Watches a running pipeline through Kafka alone and keeps the dashboard's state.
///
/// Every ``Options/interval`` it makes one pass (``poll()``):
/// - reads `aggregated-metrics`, `price-alerts` and `dead-letter-queue` onward from where the last
///   pass stopped (from their beginning on the first pass), at most ``Options/readLimit`` records per
///   partition per pass;
/// - reads the newest ``Options/tradeTail`` records of each `raw-market-data` partition (last prices);
/// - lists the consumer groups and their committed offsets through the admin API;
/// - learns every watched partition's end offset from the fetch responses.
///
/// It joins no group and commits nothing (a ``KafkaPartitionReader``), so any number of dashboards
/// can watch any cluster the other commands reach without changing what they see.
///
/// Lag in seconds is the age of the oldest unconsumed record: how long ago the end offset passed
/// the committed offset, interpolated between this monitor's samples of the end offset (records'
/// own timestamps are trade times, which a replay sets in the past). For a record older than the
/// first sample the age is a lower bound, flagged `lag_seconds_at_least`.
///
/// An unreachable broker sets ``Snapshot/kafkaError`` (one line) and the next pass retries; the
/// data from before stays on the page.
public final class DashboardMonitor: Service, Sendable {
    public struct Options: Sendable {
        public var kafka: KafkaConfig
        public var interval: Duration = .seconds(1)
        /// A replay's control endpoint (`replay --control-port`), e.g. `http://127.0.0.1:9100`.
        public var replayControl: URL?
        public var tradesTopic = Topics.rawMarketData
        public var metricsTopic = Topics.aggregatedMetrics
        public var alertsTopic = Topics.priceAlerts
        public var deadLetterTopic = Topics.deadLetterQueue
        public var tradeTail = 64
        public var readLimit = 5_000
        public var chartPoints = 720
        public var latestAlerts = 50
        public var latestDeadLetters = 20
        /// Samples of each partition's end offset kept for lag in seconds (one per pass that saw it move).
        public var endSamples = 3_600
        public init(kafka: KafkaConfig) { self.kafka = kafka }
    }

    public let options: Options
    private let admin: KafkaAdmin
    private let reader: KafkaPartitionReader
    private let model = Mutex(Model())
    private let queue = DispatchQueue(label: "dashboard-monitor")
    private let logger = Logger(label: "dashboard")

    public init(options: Options) throws(KafkaError) {
        self.options = options
        admin = try KafkaAdmin(config: options.kafka)
        var readerConfig = options.kafka
        readerConfig.properties["auto.offset.reset"] = "earliest"
        readerConfig.properties["max.partition.fetch.bytes"] = readerConfig.properties["max.partition.fetch.bytes"] ?? "262144"
        reader = try KafkaPartitionReader(config: readerConfig)
    }

    /// Passes until graceful shutdown or cancellation.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await poll()
            do { try await Task.sleep(for: options.interval) } catch { return }
        }
    }

    /// One pass over Kafka (on the monitor's own thread) and the replay control endpoint.
    public func poll() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                self.pollKafka()
                done.resume()
            }
        }
        await pollReplay()
    }

    /// Asks the replay's control endpoint for its status (when one is given), without a Kafka pass.
    public func pollReplay() async {
        if let url = options.replayControl { await pollReplay(url) }
        model.withLock { $0.version += 1 }
    }

    /// Increases after every pass.
    public var version: Int { model.withLock { $0.version } }

    /// The current state as one JSON object (the page's and `/api/state`'s format), with the chart
    /// of `chartSymbol` (default: the first symbol).
    public func json(chartSymbol: String?) -> [UInt8] {
        model.withLock { $0.json(chartSymbol: chartSymbol, bootstrap: options.kafka.bootstrapServers, replayURL: options.replayControl) }
    }

    /// The current state, for code that wants values rather than JSON.
    public var snapshot: Snapshot { model.withLock { $0.snapshot() } }

    // MARK: - One pass

    private func pollKafka() {
        let now = Self.wallMs()
        do {
            let topics = try admin.topics(timeout: .seconds(5))
            var commits: [String: (state: String, offsets: [TopicPartitionOffset])] = [:]
            for group in try admin.consumerGroups(timeout: .seconds(5)) where !group.id.hasPrefix(KafkaPartitionReader.groupPrefix) {
                let offsets = try admin.committedOffsets(group: group.id, timeout: .seconds(5))
                if !offsets.isEmpty { commits[group.id] = (group.state, offsets) }
            }
            let followed = [options.metricsTopic, options.alertsTopic, options.deadLetterTopic]
            var tailed = Set(commits.values.flatMap { $0.offsets.map(\.topic) })
            tailed.insert(options.tradesTopic)
            tailed.subtract(followed)

            let (cursors, ends) = model.withLock { ($0.cursors, $0.ends) }
            var follow: [TopicPartitionOffset] = []
            for topic in followed { for p in 0..<Int32(topics[topic] ?? 0) {
                let tp = TopicPartition(topic: topic, partition: p)
                follow.append(TopicPartitionOffset(topic: topic, partition: p, offset: cursors[tp] ?? 0))
            } }
            var tail: [TopicPartitionOffset] = []
            for topic in tailed.sorted() { for p in 0..<Int32(topics[topic] ?? 0) {
                let tp = TopicPartition(topic: topic, partition: p)
                let back = topic == options.tradesTopic ? Int64(options.tradeTail) : 0
                tail.append(TopicPartitionOffset(topic: topic, partition: p, offset: max(0, (ends[tp] ?? 0) - back)))
            } }
            let followed_ = try reader.read(follow, limit: options.readLimit, timeout: .seconds(10))
            let tailed_ = try reader.read(tail, limit: max(1, options.tradeTail), timeout: .seconds(10))
            let options = options
            model.withLock { m in
                m.kafkaError = nil
                m.partitionCounts = topics
                m.apply(followed: followed_.messages, options: options)
                m.apply(tail: tailed_.messages, tradesTopic: options.tradesTopic)
                m.sample(ends: followed_.ends.merging(tailed_.ends) { max($0, $1) }, at: now, keep: options.endSamples)
                m.groups = commits.map { GroupCommits(id: $0.key, state: $0.value.state, offsets: $0.value.offsets) }.sorted { $0.id < $1.id }
                m.now = now
            }
        } catch {
            let line = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            let changed = model.withLock { m in
                defer { m.kafkaError = line; m.now = now }
                return m.kafkaError != line
            }
            if changed { logger.warning("Kafka unreachable at \(options.kafka.bootstrapServers): \(line); retrying every \(options.interval)") }
        }
    }

    private func pollReplay(_ url: URL) async {
        var request = URLRequest(url: url.appendingPathComponent("status"), timeoutInterval: 2)
        request.httpMethod = "GET"
        let result: Result<[UInt8], any Error>
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            let bytes = [UInt8](data)
            if status == 200, case .object = JSONValue.parse(bytes) { result = .success(bytes.filter { $0 != 0x0A }) }
            else { result = .failure(ReplayControlError(message: "GET /status answered \(status)")) }
        } catch {
            result = .failure(error)
        }
        model.withLock { m in
            switch result {
            case .success(let status): m.replayStatus = status; m.replayError = nil
            case .failure(let error):
                // A status from before would show a replay as playing that has ended or hangs.
                m.replayStatus = nil
                m.replayError = "replay control at \(url.absoluteString) unreachable (replay ended or not started?): \(error.localizedDescription)"
            }
        }
    }

    static func wallMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

struct ReplayControlError: Error, CustomStringConvertible, LocalizedError {
    var message: String
    var description: String { message }
    var errorDescription: String? { message }
}
