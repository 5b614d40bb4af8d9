import Pipeline
import PostgresSink
import Kafka
import Feeds
import Aggregation
import MarketData
import CLI
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

@main
struct PipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "The Kafka side of the toolkit: ingest trades, the logger, aggregator and storage consumers, and the dashboard.",
        discussion: """
        Kafka is found through KAFKA_BOOTSTRAP_SERVERS (environment or .env; default 127.0.0.1:9092). \
        Every other KAFKA_<NAME> variable, and each -X key=value, is passed to librdkafka as property \
        <name> (KAFKA_SASL_MECHANISM=PLAIN → sasl.mechanism=PLAIN), so hosted clusters need no code.
        Each consumer type has its own group (market-logger, market-aggregator, market-storage): run more \
        instances of one type to split the partitions. Ctrl-C / SIGTERM finish the in-flight batch, \
        flush, commit and leave the group; a second signal exits at once.
        """,
        subcommands: [EnsureTopics.self, Produce.self, LoggerCommand.self, Aggregator.self, Storage.self, Consumers.self, DashboardCommand.self, DeadLetterCommand.self])
}

struct KafkaOptions: ParsableArguments {
    @OptionGroup var kafka: KafkaFlags
    @Option(help: "Prometheus /metrics port (0: none).") var metricsPort: Int?
    @Option(help: "Address the /metrics endpoint listens on.") var metricsHost = "127.0.0.1"
    @Option(help: "Log format: text or json.") var logFormat: LogFormat = .text
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = LogLevelArgument(.info)

    var settings: Settings { Settings.load() }

    func validate() throws {
        if let metricsPort, let reason = FlagCheck.port(metricsPort, flag: "--metrics-port") { throw ValidationError(reason) }
    }

    func kafkaConfig() throws -> KafkaConfig {
        var config = KafkaConfig.from(settings: settings)
        if let bootstrapServers = kafka.bootstrapServers { config.bootstrapServers = bootstrapServers }
        for p in kafka.properties { try config.set(p) }
        return config
    }

    /// The /metrics port `service` listens on (0: none).
    func metricsPort(for service: String) -> Int { metricsPort ?? ServiceDefaults.metricsPorts[service] ?? 0 }

    /// Checks that `service`'s /metrics port is free, then installs logging and the Prometheus
    /// metrics backend; call before connecting to anything or creating any service.
    func bootstrapLogging(service: String) throws {
        if let reason = FlagCheck.bindable(host: metricsHost, port: metricsPort(for: service), flag: "--metrics-port") {
            throw ValidationError(reason + " (another \(service) running? pass --metrics-port 0 for none, or another port)")
        }
        _ = MetricsEndpoint.registry
        let level = logLevel.level
        let format = logFormat
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Fails fast, in one line, when no broker answers; a signal while it waits ends the command (status 130).
    func checkReachable(_ config: KafkaConfig) async throws {
        _ = try await interruptible { try KafkaAdmin(config: config).topics(timeout: .seconds(10)) }
    }
}

enum LogFormat: String, ExpressibleByArgument { case text, json }

/// Runs the service `make` builds (connecting happens inside, so a signal while connecting ends the
/// command at once) beside the metrics endpoint, in one ``Lifecycle`` group.
func runServices(_ name: String, options: KafkaOptions, beside extra: [any Service] = [],
                 _ make: @escaping @Sendable () async throws -> any Service) async throws {
    let logger = Logger(label: name)
    var services: [any Service] = [ServiceBody(name: name) { try await make().run() }] + extra
    let port = options.metricsPort(for: name)
    if port > 0 {
        _ = MetricsEndpoint.registry
        services.append(MetricsEndpoint.application(host: options.metricsHost, port: port))
        logger.info("metrics on http://\(options.metricsHost):\(port)/metrics")
    }
    try await Lifecycle.run(services, logger: logger)
}

struct EnsureTopics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ensure-topics", abstract: "Create the pipeline's topics where missing (existing ones are left alone).")
    @OptionGroup var kafka: KafkaOptions
    func run() async throws {
        let config = try kafka.kafkaConfig()
        let result = Mutex<[TopicStatus]>([])
        try await Lifecycle.run("ensure-topics", logger: Logger(label: "ensure-topics")) {
            let got = try await interruptible { try KafkaAdmin(config: config).ensureTopics() }
            result.withLock { $0 = got }
        }
        let statuses = result.withLock { $0 }
        for s in statuses {
            switch s.outcome {
            case .created: print("created \(s.name)")
            case .existed(let n): print("exists  \(s.name) (\(n) partitions)")
            }
        }
    }
}

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move trades from any source into raw-market-data: live Finnhub, a Finnhub-compatible WebSocket, recordings, the synthetic market.",
        discussion: """
        The same ingest service as `replay`: one message per trade, keyed by symbol, the Kafka timestamp the trade time.
        Without a source flag: live Finnhub (wss://ws.finnhub.io) with FINNHUB_API_KEY from the environment or .env.

        Examples:
          pipeline produce                                              # live Finnhub
          pipeline produce --url ws://127.0.0.1:9001/?token=x           # sim-exchange
          pipeline produce --recording recordings/btc.jsonl --speed 10x # same as: replay recordings/btc.jsonl --speed 10x
          pipeline produce --synthetic --rate max --trades 1000000      # load test without sockets
        """)
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var source: SourceFlags
    @Option(help: "Kafka topic to write.") var topic = Topics.rawMarketData
    @Option(help: "Source name for the `source` header (with --headers).") var sourceName: String?
    @Flag(help: "Mark each message with the headers source and ingest_time (Unix ms); off by default, since librdkafka allocates every header per message.")
    var headers = false

    func run() async throws {
        try kafka.bootstrapLogging(service: "producer")
        let feed = try source.makeFeed(kafka.settings)
        let config = try kafka.kafkaConfig()
        let (topic, headers) = (topic, headers)
        let name = sourceName ?? (source.url == nil && source.recording.isEmpty && !source.synthetic ? "finnhub" : feed.source)
        let fast = (!source.recording.isEmpty && source.speed.speed == .max) || (source.synthetic && source.rate == "max")
        try await runServices("producer", options: kafka) {
            try await kafka.checkReachable(config)
            try await interruptible { _ = try KafkaAdmin(config: config).ensureTopics() }
            let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: name, headers: headers)
            let sink = ReplayKafka.pipeline(publisher, speed: fast ? .max : .factor(1))
            return IngestService(feed: feed, sink: sink, logger: Logger(label: "producer"))
        }
    }
}

struct ConsumerOptions: ParsableArguments {
    @Option(help: "Consumer group (default: the consumer type's own group).") var group: String?
    @Option(help: "Topic to read.") var topic = Topics.rawMarketData
}

func makeConsumerService(_ kind: String, kafka: KafkaOptions, consumer: ConsumerOptions, batchSize: Int = 1000) async throws -> ConsumerService {
    let config = try kafka.kafkaConfig()
    try await kafka.checkReachable(config)
    var options = ConsumerService.Options(groupID: consumer.group ?? ServiceDefaults.consumerGroups[kind]!)
    options.topic = consumer.topic
    options.batchSize = batchSize
    return try ConsumerService(config: config, options: options, logger: Logger(label: kind))
}

struct LoggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logger", abstract: "Print trades and a per-second summary (consumer 1).")
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var consumer: ConsumerOptions
    @Flag(help: "Print the per-second summaries only.") var quiet = false
    func run() async throws {
        try kafka.bootstrapLogging(service: "logger")
        let (kafka, consumer, quiet) = (kafka, consumer, quiet)
        try await runServices("logger", options: kafka) {
            LoggerService(service: try await makeConsumerService("logger", kafka: kafka, consumer: consumer), quiet: quiet)
        }
    }
}

struct AggregatorOptions: ParsableArguments {
    @Option(help: "Window length in seconds.") var window: Int64 = 60
    @Option(help: "Window hop in seconds (the window length must be a multiple).") var hop: Int64 = 10
    @Option(help: "Allowed lateness in seconds: later trades are counted, not merged.") var lateness: Int64 = 5
    @Option(help: "Alert rules, e.g. AAPL:above:200,AAPL:below:150,*:change:2.5 (default: none).") var alerts: String?
    @Option(help: "Topic for window metrics.") var metricsTopic = Topics.aggregatedMetrics
    @Option(help: "Topic for alerts.") var alertsTopic = Topics.priceAlerts
    @Option(help: "Topic for the aggregator's checkpointed state (default: <group>-state).") var stateTopic: String?

    func validate() throws {
        guard hop > 0 else { throw ValidationError("--hop must be at least 1 second, got \(hop)") }
        guard window > 0, window % hop == 0 else { throw ValidationError("--window must be a positive multiple of --hop (\(hop) s), got \(window)") }
        guard lateness >= 0 else { throw ValidationError("--lateness must be 0 or more seconds, got \(lateness)") }
        guard window <= 86_400 * 7, lateness <= 86_400 else { throw ValidationError("--window is at most 7 days and --lateness at most 1 day") }
        if let alerts {
            if alerts.allSatisfy(\.isWhitespace) { throw ValidationError("--alerts is empty; leave the flag out for no alerts") }
            do { _ = try AlertRules.parse(alerts) } catch { throw ValidationError("--alerts: \(error)") }
        }
    }

    func options() throws -> AggregatorService.Options {
        var o = AggregatorService.Options()
        o.window = WindowConfig(windowMs: window * 1000, hopMs: hop * 1000, allowedLatenessMs: lateness * 1000)
        o.alertRules = try AlertRules.parse(alerts ?? "")
        o.metricsTopic = metricsTopic
        o.alertsTopic = alertsTopic
        o.stateTopic = stateTopic
        return o
    }
}

struct Aggregator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sliding-window metrics per symbol → aggregated-metrics, alerts → price-alerts (consumer 2).",
        discussion: """
        Exactly-once output across crashes, restarts and rebalances: the state of each input partition is \
        checkpointed every second to the state topic (<group>-state), and a member that takes a partition over \
        restores it and skips the outputs already written, so aggregated-metrics and price-alerts hold the \
        messages of one uninterrupted run, each once. Run up to one instance per input partition.

        Examples:
          pipeline aggregator --window 60 --hop 10 --lateness 5
          pipeline aggregator --alerts 'AAPL:above:200,*:change:2.5'
          pipeline aggregator --group backtest-agg --metrics-topic bt-metrics --alerts-topic bt-alerts
        """)
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var consumer: ConsumerOptions
    @OptionGroup var aggregation: AggregatorOptions
    func run() async throws {
        try kafka.bootstrapLogging(service: "aggregator")
        let (kafka, consumer, options) = (kafka, consumer, try aggregation.options())
        try await runServices("aggregator", options: kafka) {
            try AggregatorService(service: try await makeConsumerService("aggregator", kafka: kafka, consumer: consumer), options: options)
        }
    }
}

struct StorageOptions: ParsableArguments {
    @Option(help: "Folder for stored files (default: DATA_DIR, else ./data).") var dataDir: String?
    @Option(help: "Records per batch at most (a batch is split into one file per day and symbol).") var batchSize = 1000
    @Option(help: "Seconds before a partial batch is written.") var batchSeconds = 5
    @Flag(help: "gzip the files.") var gzip = false
    @Option(help: "Delete files older than this many days (at least 1).") var retentionDays = 7

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 record, got \(batchSize)") }
        guard batchSeconds >= 1 else { throw ValidationError("--batch-seconds must be at least 1, got \(batchSeconds)") }
        guard retentionDays >= 1 else {
            throw ValidationError("--retention-days must be at least 1 (files stored longer ago are deleted), got \(retentionDays)")
        }
        guard batchSeconds < retentionDays * 86_400 else {
            throw ValidationError("--batch-seconds (\(batchSeconds)) must be shorter than --retention-days (\(retentionDays) days), or retention could delete a batch as it is written")
        }
    }

    func options(_ settings: Settings) -> StorageService.Options {
        var o = StorageService.Options(dataDir: dataDir ?? settings["DATA_DIR"] ?? "data")
        o.batchSize = batchSize
        o.batchInterval = .seconds(batchSeconds)
        o.gzip = gzip
        o.retentionDays = retentionDays
        return o
    }
}

struct Storage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store trades into crash-safe JSONL files with retention (consumer 3), or into PostgreSQL.",
        discussion: """
        --sink postgres://user:password@host:5432/db writes into PostgreSQL instead (tables in schema         marketstream, created and migrated by the command; password also from PGPASSWORD; ?sslmode=disable,         prefer or require). Each batch's rows and the group's offsets are written in one transaction and         every assignment resumes from the offsets in the database, so each record is stored once whatever         crashes or rebalances. --topic aggregated-metrics stores windows (upserted by symbol and window         start), --topic price-alerts alerts. The default group is market-storage-postgres (plus -<topic>         for other topics), so the file and database sinks each get every partition.

        Examples:
          pipeline storage --data-dir data --gzip
          pipeline storage --sink postgres://market:secret@127.0.0.1:5432/market
          pipeline storage --sink postgres://market@db:5432/market --topic aggregated-metrics
        """)
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var consumer: ConsumerOptions
    @OptionGroup var storage: StorageOptions
    @Option(help: ArgumentHelp("files (default) or a PostgreSQL URL postgres://user:password@host:5432/database.", valueName: "sink"))
    var sink = "files"
    @Option(help: ArgumentHelp("With a PostgreSQL sink: what the topic holds (trades, windows, alerts; default from the topic's name).", valueName: "kind"))
    var records: String?

    func validate() throws {
        if sink != "files" {
            do { _ = try PostgresTarget(url: sink) } catch { throw ValidationError("--sink: \(error)") }
        }
        if let records, StoredRecords(rawValue: records) == nil { throw ValidationError("--records must be trades, windows or alerts, got \(records)") }
    }

    func run() async throws {
        try kafka.bootstrapLogging(service: "storage")
        if sink != "files" { return try await runPostgres() }
        let options = storage.options(kafka.settings)
        do { try StorageService.prepareFolder(options, topic: consumer.topic) } catch {
            throw ValidationError("--data-dir \(options.dataDir): \(error)")
        }
        let (kafka, consumer) = (kafka, consumer)
        try await runServices("storage", options: kafka) {
            try StorageService(service: try await makeConsumerService("storage", kafka: kafka, consumer: consumer), options: options)
        }
    }

    private func runPostgres() async throws {
        let target = try PostgresTarget(url: sink)
        let kind = records.flatMap(StoredRecords.init(rawValue:)) ?? StoredRecords.of(topic: consumer.topic)
        var consumer = consumer
        if consumer.group == nil { consumer.group = "market-storage-postgres" + (consumer.topic == Topics.rawMarketData ? "" : "-\(consumer.topic)") }
        let (kafka, group) = (kafka, consumer)
        try await runServices("storage", options: kafka) {
            try await PostgresStorageService(service: try await makeConsumerService("storage", kafka: kafka, consumer: group, batchSize: PostgresStorageService.batchSize),
                                             options: PostgresStorageService.Options(target: target, records: kind))
        }
    }
}

struct Consumers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consumers", abstract: "Logger (quiet), aggregator and storage together in one process, each in its own group; --dashboard-port adds the dashboard.")
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var aggregation: AggregatorOptions
    @OptionGroup var storage: StorageOptions
    @OptionGroup var dashboard: DashboardFlags
    func run() async throws {
        try kafka.bootstrapLogging(service: "consumers")
        let none = try ConsumerOptions.parse([])
        let (kafka, aggregatorOptions, storageOptions) = (kafka, try aggregation.options(), storage.options(kafka.settings))
        let page = try dashboard.port.map { try dashboard.services(port: $0, kafka: try kafka.kafkaConfig(), logger: Logger(label: "dashboard")) } ?? []
        try await runServices("consumers", options: kafka, beside: page) {
            let logger = LoggerService(service: try await makeConsumerService("logger", kafka: kafka, consumer: none), quiet: true)
            let aggregator = try AggregatorService(service: try await makeConsumerService("aggregator", kafka: kafka, consumer: none), options: aggregatorOptions)
            let store = try StorageService(service: try await makeConsumerService("storage", kafka: kafka, consumer: none), options: storageOptions)
            return ServiceBody(name: "consumers") {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await logger.run() }
                    group.addTask { try await aggregator.run() }
                    group.addTask { try await store.run() }
                    try await group.waitForAll()
                }
            }
        }
    }
}
