import Bench
import Pipeline
import Kafka
import MarketData
import CLI
import ArgumentParser
import Foundation

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Throughput and latency of every stage, with the librdkafka C API as the floor.",
        discussion: """
        Starts its own Tansu broker unless --bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS with \
        --use-env) names one. Build with `swift build -c release` for meaningful numbers.

        Scenarios (--scenarios, comma-separated; default all):
          codec       Finnhub frame and Kafka message encode/decode, in-process
          kafka       produce and consume at max rate: Swift layer vs librdkafka C API (the floor)
          aggregator  the aggregator consuming from Kafka vs the raw consume, also with a dashboard attached; window update in-process
          storage     the storage consumer's sinks over one topic: files, then PostgreSQL (a local server started for the run)
          websocket   sim-exchange --rate max → the Feed's WebSocket client; the in-process synthetic feed
          replay      replay --dry-run (also steerable) and --speed max into Kafka (vs C floor); pacing at 10× and 100×
          seek        seeks through the index in a 10M-trade recording, plain and gzip (--quick: 200k)
          e2e         trade → producer → Kafka → aggregator at --rates, HDR latency percentiles,
                      next to the C floor's produce → consume at the same rates; publish delay
          scaling     10 / 1,000 / 10,000 symbols (window update, aggregator vs C floor) and
                      3 / 12 / 48 partitions (produce and consume vs C floor)
          memory      (only when named) RSS over a 100M-trade replay --dry-run (--quick: 2M)

        Examples:
          swift build -c release --product bench && .build/release/bench
          .build/release/bench --scenarios codec,aggregator --json bench.json
          .build/release/bench --scenarios memory
        """)

    @Flag(help: "Small counts: finishes in well under a minute.") var quick = false
    @Option(help: "Messages per Kafka throughput and replay scenario (default 1,000,000; --quick 50,000).") var messages: Int?
    @Option(help: "Trades for the codec and websocket scenarios (default 2,000,000; --quick 200,000 and 100,000).") var trades: Int?
    @Option(help: "Comma-separated scenarios: \((BenchOptions.allScenarios + BenchOptions.optionalScenarios).joined(separator: ", ")).") var scenarios: String = BenchOptions.allScenarios.joined(separator: ",")
    @Option(help: "Offered end-to-end rates, messages/s (default 1k,10k,20k,50k; --quick 1k,20k).") var rates: String?
    @Option(help: "Seconds of traffic per end-to-end rate (default 10; --quick 1).") var duration: SecondsArgument?
    @OptionGroup var kafka: KafkaFlags
    @Flag(help: "Read KAFKA_BOOTSTRAP_SERVERS (environment or .env) instead of starting a broker.") var useEnv = false
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Write a self-contained HTML report with plots to this file.") var html: String?
    @Option(help: "Compare against an earlier --json report and flag regressions.") var baseline: String?

    func validate() throws {
        _ = try BenchOptions.parseScenarios(scenarios)
        if let rates { _ = try BenchOptions.parseRates(rates) }
        if let messages, messages < 1 { throw ValidationError("--messages must be at least 1") }
        if let trades, trades < 10 { throw ValidationError("--trades must be at least 10") }
    }

    func run() async throws {
        var options = BenchOptions()
        options.scenarios = try BenchOptions.parseScenarios(scenarios)
        options.quick = quick
        options.messages = messages
        options.trades = trades
        options.rates = try rates.map(BenchOptions.parseRates)
        options.seconds = duration?.seconds
        var broker: LocalBroker?
        var config: KafkaConfig
        if let bootstrapServers = kafka.bootstrapServers {
            config = KafkaConfig(bootstrapServers: bootstrapServers)
        } else if useEnv {
            config = KafkaConfig.from(settings: .load())
        } else {
            let local = try LocalBroker()
            broker = local
            config = KafkaConfig(bootstrapServers: local.bootstrapServers)
        }
        defer { broker?.stop() }
        for p in kafka.properties { try config.set(p) }

        let results = try await BenchRunner.run(options, config: config) { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }

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
        if let html { try Data(report.html().utf8).write(to: URL(fileURLWithPath: html)) }
        if let baseline {
            let old = try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: baseline)))
            print(report.compare(to: old).text)
        }
    }
}
