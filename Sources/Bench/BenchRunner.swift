import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import Foundation

/// What `bench` runs: scenario selection and sizes.
public struct BenchOptions: Sendable {
    public static let allScenarios = ["codec", "kafka", "aggregator", "storage", "e2e", "websocket", "replay", "backtest", "seek", "scaling"]
    /// Run only when named: `memory` replays 100 million trades (a 7 GB recording written for it).
    public static let optionalScenarios = ["memory"]
    public static let defaultRates: [Double] = [1_000, 10_000, 20_000, 50_000]
    public static let quickRates: [Double] = [1_000, 20_000]

    public var scenarios: Set<String> = Set(allScenarios)
    /// Small counts: the whole run finishes in well under a minute.
    public var quick = false
    /// Messages per Kafka throughput scenario.
    public var messages: Int?
    /// Trades for the in-process codec scenarios and the WebSocket scenario.
    public var trades: Int?
    /// Offered rates of the end-to-end scenario, messages/s.
    public var rates: [Double]?
    /// Seconds of traffic per end-to-end rate.
    public var seconds: Double?

    public init() {}

    public struct Invalid: Error, CustomStringConvertible { public var description: String }

    /// Parses `codec,kafka,...`; unknown names are an error that lists the valid ones.
    public static func parseScenarios(_ text: String) throws(Invalid) -> Set<String> {
        let names = Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let unknown = names.subtracting(allScenarios + optionalScenarios)
        guard unknown.isEmpty, !names.isEmpty else {
            throw Invalid(description: "unknown scenario(s) \(unknown.sorted().joined(separator: ", ")); choose from \((allScenarios + optionalScenarios).joined(separator: ", "))")
        }
        return names
    }

    /// Parses `1000,10k,20k`: positive rates, `k` meaning thousands.
    public static func parseRates(_ text: String) throws(Invalid) -> [Double] {
        var rates: [Double] = []
        for part in text.split(separator: ",") {
            var t = part.trimmingCharacters(in: .whitespaces).lowercased()
            var scale = 1.0
            if t.hasSuffix("k") { scale = 1000; t.removeLast() }
            guard let v = Double(t), v.isFinite, v * scale >= 1 else { throw Invalid(description: "invalid rate \"\(part)\": use messages per second like 1000 or 20k") }
            rates.append(v * scale)
        }
        guard !rates.isEmpty else { throw Invalid(description: "--rates needs at least one rate") }
        return rates
    }
}

/// Runs the selected scenarios in a fixed order against one broker.
public enum BenchRunner {
    public static func run(_ o: BenchOptions, config: KafkaConfig, log: (String) -> Void = { _ in }) async throws -> [BenchResult] {
        let kafkaMessages = o.messages ?? (o.quick ? 50_000 : 1_000_000)
        var results: [BenchResult] = []
        if o.scenarios.contains("codec") {
            log("codec…")
            results += CodecScenarios.run(trades: o.trades ?? (o.quick ? 200_000 : 2_000_000))
        }
        if o.scenarios.contains("kafka") {
            log("kafka produce/consume…")
            results += try await KafkaScenarios(config: config, messages: kafkaMessages).run()
        }
        if o.scenarios.contains("aggregator") {
            log("aggregator…")
            results += try await AggregatorScenario(config: config, trades: kafkaMessages).run()
        }
        if o.scenarios.contains("storage") {
            log("storage sinks…")
            results += try await StorageScenario(config: config, trades: kafkaMessages).run()
        }
        if o.scenarios.contains("websocket") {
            log("sim-exchange → WebSocket client…")
            results += try await WebSocketScenario(trades: o.trades ?? (o.quick ? 100_000 : 2_000_000)).run()
        }
        if o.scenarios.contains("replay") {
            log("replay…")
            var replay = ReplayScenarios(config: config, trades: kafkaMessages, pacingSpan: o.quick ? 1 : 10)
            if o.quick { replay.rounds = 1 }
            results += try await replay.run(includeKafka: true)
        }
        if o.scenarios.contains("backtest") {
            let n = o.trades ?? (o.quick ? 200_000 : 5_000_000)
            log("backtest over a \(n)-trade recording and its tape…")
            var backtest = BacktestScenario(trades: n)
            if o.quick { backtest.rounds = 1 }
            results += try backtest.run()
        }
        if o.scenarios.contains("e2e") {
            let rates = o.rates ?? (o.quick ? BenchOptions.quickRates : BenchOptions.defaultRates)
            log("end-to-end latency at \(rates.map(EndToEndScenario.label).joined(separator: ", "))…")
            var e2e = EndToEndScenario(config: config, rates: rates, seconds: o.seconds ?? (o.quick ? 1 : 10))
            if o.quick { e2e.rounds = 2 }
            results += try await e2e.run()
        }
        if o.scenarios.contains("seek") {
            let n = o.quick ? 200_000 : 10_000_000
            log("seek in \(n)-trade recordings…")
            results += try await SeekScenario(trades: n).run()
        }
        if o.scenarios.contains("scaling") {
            results += try await ScalingScenario(config: config, trades: kafkaMessages).run(log: log)
        }
        if o.scenarios.contains("memory") {
            results += try await MemoryScenario(trades: o.quick ? 2_000_000 : 100_000_000).run(log: log)
        }
        return results
    }
}
