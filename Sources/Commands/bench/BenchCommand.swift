import ArgumentParser
import Bench
import Feed
import Foundation
import Pipeline

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Throughput and latency of every stage, with the librdkafka C API as the floor.",
        discussion: """
        Starts its own Tansu broker unless --bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS with \
        --use-env) names one. Build with `swift build -c release` for meaningful numbers.
        Scenarios: codec, kafka (produce and consume, Swift layer vs C floor), aggregator (from Kafka vs raw consume; window update in-process).
        """)

    @Flag(help: "Small counts: finishes in well under a minute.") var quick = false
    @Option(help: "Messages per Kafka scenario.") var messages: Int?
    @Option(help: "Trades for the codec scenarios.") var trades: Int?
    @Option(help: "Comma-separated scenarios to run (codec, kafka, aggregator).") var scenarios: String = "codec,kafka,aggregator"
    @Option(help: "Kafka to use instead of a broker of bench's own.") var bootstrapServers: String?
    @Flag(help: "Read KAFKA_BOOTSTRAP_SERVERS (environment or .env) instead of starting a broker.") var useEnv = false
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Compare against an earlier --json report and flag regressions.") var baseline: String?

    func run() async throws {
        let selected = Set(scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let unknown = selected.subtracting(["codec", "kafka", "aggregator"])
        guard unknown.isEmpty else { throw ValidationError("unknown scenario(s): \(unknown.sorted().joined(separator: ", ")); choose from codec, kafka, aggregator") }
        var broker: LocalBroker?
        var config: KafkaConfig
        if let bootstrapServers {
            config = KafkaConfig(bootstrapServers: bootstrapServers)
        } else if useEnv {
            config = KafkaConfig.from(settings: .load())
        } else {
            let local = try LocalBroker()
            broker = local
            config = KafkaConfig(bootstrapServers: local.bootstrapServers)
        }
        defer { broker?.stop() }

        var results: [BenchResult] = []
        if selected.contains("codec") { results += CodecScenarios.run(trades: trades ?? (quick ? 200_000 : 2_000_000)) }
        if selected.contains("kafka") { results += try await KafkaScenarios(config: config, messages: messages ?? (quick ? 50_000 : 1_000_000)).run() }
        if selected.contains("aggregator") { results += try await AggregatorScenario(config: config, trades: messages ?? (quick ? 50_000 : 1_000_000)).run() }

        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        let report = BenchReport(
            date: ISO8601DateFormatter().string(from: Date()), cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryGB: Double(ProcessInfo.processInfo.physicalMemory) / 1e9, librdkafka: KafkaAdmin.librdkafkaVersion,
            broker: broker != nil ? "Tansu (local, in memory)" : config.bootstrapServers, build: build, results: results)
        print(report.table())
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
        }
        if let baseline {
            let old = try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: baseline)))
            print(report.compare(to: old).text)
        }
    }
}
