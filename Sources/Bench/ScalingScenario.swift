import Kafka

/// Cost per trade as the number of symbols grows (10, 1,000, 10,000: the window update in-process
/// and the aggregator from Kafka against the C floor on the same topic; each symbol trades every
/// ``symbolIntervalMs`` of event time at every count, so each row closes the same windows per trade), and produce / consume as the
/// number of partitions grows (3, 12, 48: the Swift layer against the C floor).
public struct ScalingScenario: Sendable {
    public var config: KafkaConfig
    public var trades: Int
    public var symbolCounts = [10, 1_000, 10_000]
    public var partitionCounts = [3, 12, 48]
    /// Event time between two trades of one symbol at every symbol count (``AggregatorScenario/symbolIntervalMs``):
    /// the rows then differ only in how many symbols' state the trades spread over, not in windows per trade.
    public var symbolIntervalMs: Int64 = 1_000

    public init(config: KafkaConfig, trades: Int) { self.config = config; self.trades = trades }

    public func run(log: (String) -> Void) async throws -> [BenchResult] {
        var results: [BenchResult] = []
        for count in symbolCounts {
            log("scaling: \(count) symbols…")
            var aggregator = AggregatorScenario(config: config, trades: trades)
            aggregator.symbols = count
            aggregator.symbolIntervalMs = symbolIntervalMs
            results += try await aggregator.scaling()
        }
        for count in partitionCounts {
            log("scaling: \(count) partitions…")
            var kafka = KafkaScenarios(config: config, messages: trades)
            kafka.partitions = count
            kafka.label = " · \(count) partitions"
            results += try await kafka.run()
        }
        return results
    }
}
