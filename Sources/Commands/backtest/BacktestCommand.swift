import Backtest
import Exchange
import Aggregation
import Pipeline
import Kafka
import Feeds
import MarketData
import CLI
import ArgumentParser
import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct BacktestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Run a trading strategy over recorded history, or paper-trade it live on Kafka.",
        discussion: "Fill model, report fields and the Strategy protocol: docs/BACKTEST.md. `backtest FILE ...` is short for `backtest run FILE ...`.",
        subcommands: [Run.self, Paper.self],
        defaultSubcommand: Run.self)
}

func writeStderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

/// Prints `backtest: <message>` and exits non-zero.
func fail(_ message: String) -> ExitCode {
    writeStderr("backtest: \(message.split(whereSeparator: \.isNewline).joined(separator: " "))\n")
    return ExitCode(1)
}

/// Strategy, exchange and report options shared by `run` and `paper`.
struct EngineOptions: ParsableArguments {
    @Option(help: "buy-and-hold, vwap-reversion or breakout.") var strategy: String
    @Option(name: .customLong("param"), help: "Strategy parameter key=value (repeatable; bare key=value arguments work too).") var params: [String] = []
    @Option(help: "Order latency: an order submitted at event time t is active from t + N ms.") var latencyMs: Int64 = 0
    @Option(help: "Fee per fill in basis points of notional.") var feeBps: Double = 0
    @Option(help: "Starting cash.") var cash: Double = 100_000
    @Option(help: "Aggregator window length (e.g. 60s, 5m).") var window = "60s"
    @Option(help: "Aggregator hop; the window must be a multiple of it.") var hop = "10s"
    @Option(help: "Aggregator allowed lateness.") var lateness = "0s"
    @Option(help: "Only trades of these symbols (comma-separated).") var symbol: String?
    @Option(help: "Write the report as JSON to FILE (- for stdout).") var json: String?
    @Option(help: "Write the equity curve as SVG to FILE.") var svg: String?
    @Option(help: "Write the equity curve and figures as an HTML page to FILE.") var html: String?
    @Flag(help: "Do not print the text report.") var quiet = false

    func make(extra: [String]) throws(BacktestFailure) -> (any Strategy, BacktestConfig) {
        let strategy = try Strategies.make(self.strategy, parameters: params + extra)
        var c = BacktestConfig()
        c.initialCash = cash; c.feeBps = feeBps; c.latencyMs = latencyMs
        c.window = WindowConfig(windowMs: try DurationText.milliseconds(window), hopMs: try DurationText.milliseconds(hop),
                                allowedLatenessMs: try DurationText.milliseconds(lateness), idleGraceMs: 0)
        if let symbol {
            let set = Set(symbol.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            guard !set.isEmpty else { throw BacktestFailure("--symbol is empty") }
            c.symbols = set
        }
        return (strategy, c)
    }

    func output(_ result: BacktestResult) throws(BacktestFailure) {
        let r = result.report
        func write(_ path: String, _ bytes: [UInt8]) throws(BacktestFailure) {
            if path == "-" { FileHandle.standardOutput.write(Data(bytes)); return }
            do { try Data(bytes).write(to: URL(fileURLWithPath: path)) } catch { throw BacktestFailure("\(path): cannot write: \(error.localizedDescription)") }
        }
        if let json { try write(json, r.jsonBytes()) }
        if let svg { try write(svg, Array(r.svg().utf8)) }
        if let html { try write(html, Array(r.html().utf8)) }
        if !quiet { writeStderr(r.text + "\n  " + result.speedLine + "\n") }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Backtest a strategy over a recording (or a Tardis CSV / LEAN zip / Binance capture) in event time, as fast as possible.")

    @Argument(help: "Recording (.jsonl or .jsonl.gz), or history the replay importers read.") var file: String
    @Argument(help: "Strategy parameters key=value.") var extra: [String] = []
    @OptionGroup var engine: EngineOptions
    @Option(help: "auto, recording, tardis, binance or lean (auto: .csv → tardis, .zip → lean, else recording).") var format = "auto"
    @Flag(help: "Skip (and count) bad lines instead of failing.") var skipBad = false

    func run() throws {
        do throws(BacktestFailure) {
            guard let f = InputFormat(rawValue: format) else { throw BacktestFailure("unknown --format \(format)") }
            let (strategy, config) = try engine.make(extra: extra)
            let result = try Backtest.run(path: file, format: f, strategy: strategy, config: config, skipBad: skipBad)
            try engine.output(result)
        } catch { throw fail(error.description) }
    }
}

struct Paper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Paper-trade a strategy live on raw-market-data with simulated fills; Ctrl-C stops and prints the report.",
        discussion: """
            Windows come from the pipeline's aggregator code run in-process over the same trades (what aggregated-metrics \
            carries), or with --metrics-topic from that topic, each held back until the paper clock reaches its end.
            """)

    @Argument(help: "Strategy parameters key=value.") var extra: [String] = []
    @OptionGroup var engine: EngineOptions
    @OptionGroup var kafkaFlags: KafkaFlags
    @Option(help: "Kafka topic with the trades.") var topic = Topics.rawMarketData
    @Option(help: "Consumer group (default: a new one per run).") var group: String?
    @Option(help: "Take windows from this topic (e.g. aggregated-metrics) instead of the in-process aggregator.") var metricsTopic: String?
    @Option(help: "Send orders to this sim-exchange WebSocket (e.g. ws://127.0.0.1:9001/?token=x) and use its fills.") var exchange: String?
    @Flag(help: "Start at the oldest retained trade instead of the newest.") var fromBeginning = false
    @Option(help: "Stop after N trades.") var maxTrades: Int?
    @Option(help: "Stop after no trade arrived for this long (e.g. 30s).") var idleTimeout: String?
    @Flag(help: "Print every fill to stderr.") var verbose = false
    @OptionGroup(title: "Instead of Kafka, paper-trade over any source (a live or sim-exchange WebSocket, recordings at N×, the synthetic market)")
    var source: SourceFlags

    func run() async throws {
        if source.url != nil || !source.recording.isEmpty || source.synthetic { return try await runOverFeed() }
        let config: BacktestConfig
        var options = PaperOptions()
        var kafka = KafkaConfig.from(settings: Settings.load())
        do throws(BacktestFailure) {
            (_, config) = try engine.make(extra: extra)
            if let idleTimeout { options.idleTimeout = .milliseconds(try DurationText.milliseconds(idleTimeout)) }
        } catch { throw fail(error.description) }
        if let bootstrapServers = kafkaFlags.bootstrapServers { kafka.bootstrapServers = bootstrapServers }
        for p in kafkaFlags.properties { do { try kafka.set(p) } catch { throw fail("-X \(p): \(error.message)") } }
        options.topic = topic
        options.metricsTopic = metricsTopic
        options.exchangeURL = exchange
        if let group { options.groupID = group }
        options.fromBeginning = fromBeginning
        options.maxTrades = maxTrades
        let onFill: (@Sendable (Fill) -> Void)? = verbose ? Self.printFill : nil
        let opts = options, k = kafka, name = engine.strategy, params = engine.params + extra
        let result = Mutex<BacktestResult?>(nil)
        do {
            try await Lifecycle.run("backtest-paper", logger: Logger(label: "backtest")) {
                _ = try await interruptible { try KafkaAdmin(config: k).topics(timeout: .seconds(10)) }
                let r = try await cancelWhenGracefulShutdown {
                    try await Self.paper(kafka: k, options: opts, strategy: name, parameters: params, config: config, onFill: onFill)
                }
                result.withLock { $0 = r }
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail((error as? BacktestFailure)?.description ?? (error as? KafkaError)?.description ?? "\(error)")
        }
        guard let result = result.withLock({ $0 }) else { return }
        do { try engine.output(result) } catch { throw fail(error.description) }
    }

    /// Paper trading over a ``Feed`` instead of Kafka: the same engine, the trades as the source delivers them.
    func runOverFeed() async throws {
        let config: BacktestConfig
        do { (_, config) = try engine.make(extra: extra) } catch { throw fail(error.description) }
        let (name, params) = (engine.strategy, engine.params + extra)
        let feed: any Feed
        do { feed = try source.makeFeed(Settings.load()) } catch { throw fail("\(error)") }
        let result = Mutex<BacktestResult?>(nil)
        do {
            try await Lifecycle.run("backtest-paper", logger: Logger(label: "backtest")) {
                let r = try await cancelWhenGracefulShutdown {
                    try await Self.run(feed: feed, strategy: try Strategies.make(name, parameters: params), config: config)
                }
                result.withLock { $0 = r }
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail((error as? BacktestFailure)?.description ?? "\(error)")
        }
        guard let result = result.withLock({ $0 }) else { return }
        do { try engine.output(result) } catch { throw fail(error.description) }
    }

    static func run(feed: any Feed, strategy: any Strategy, config: BacktestConfig) async throws -> BacktestResult {
        func go<S: Strategy>(_ s: S) async throws -> BacktestResult { try await Backtest.run(feed: feed, strategy: s, config: config) }
        return try await go(strategy)
    }

    @Sendable static func printFill(_ f: Fill) {
        let q = JSONOutput.number(f.quantity), p = JSONOutput.number(f.price), fee = JSONOutput.number(f.fee)
        writeStderr("fill #\(f.orderID) \(f.side.rawValue) \(q) \(f.symbol) @ \(p) fee \(fee) t=\(f.timestamp)\n")
    }

    static func paper(kafka: KafkaConfig, options: PaperOptions, strategy name: String, parameters: [String], config: BacktestConfig,
                      onFill: (@Sendable (Fill) -> Void)?) async throws -> BacktestResult {
        let strategy = try Strategies.make(name, parameters: parameters)
        return try await run(strategy)
        func run<S: Strategy>(_ s: S) async throws -> BacktestResult {
            try await PaperTrading.run(kafka: kafka, options: options, strategy: s, config: config, onFill: onFill)
        }
    }
}

