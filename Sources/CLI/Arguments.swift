import ArgumentParser
import Feeds
import Foundation
import Logging
import MarketData

/// `--speed`: `10x`, `0.5x`, `1x` or `max`.
public struct SpeedArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public let speed: Speed
    public init(_ speed: Speed) { self.speed = speed }
    public init?(argument: String) {
        guard let s = try? Speed.parse(argument) else { return nil }
        speed = s
    }
    public var description: String { speed.description }
    public var defaultValueDescription: String { speed.description }
}

/// `--log-level`: trace, debug, info, notice, warning, error or critical.
public struct LogLevelArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public let level: Logger.Level
    public init(_ level: Logger.Level) { self.level = level }
    public init?(argument: String) {
        guard let l = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        level = l
    }
    public static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
    public var description: String { level.rawValue }
    public var defaultValueDescription: String { level.rawValue }
}

/// A duration in seconds (`--duration 2.5`): a positive, finite number.
public struct SecondsArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public let seconds: Double
    public init(_ seconds: Double) { self.seconds = seconds }
    public init?(argument: String) {
        guard let s = Double(argument), s.isFinite, s > 0 else { return nil }
        seconds = s
    }
    public var duration: Duration { .nanoseconds(Int64((seconds * 1e9).rounded())) }
    public var description: String { String(seconds) }
    public var defaultValueDescription: String { String(seconds) }
}

/// The Kafka flags of every command that talks to Kafka. Kafka is found through `--bootstrap-servers`,
/// else `KAFKA_BOOTSTRAP_SERVERS` (environment or `.env`), else 127.0.0.1:9092; every other `KAFKA_<NAME>`
/// variable and each `-X key=value` is passed to librdkafka as property `<name>`.
public struct KafkaFlags: ParsableArguments, Sendable {
    @Option(help: "Kafka bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS from the environment or .env, else 127.0.0.1:9092).")
    public var bootstrapServers: String?
    @Option(name: .customShort("X"), help: "A librdkafka property, key=value (repeatable), e.g. -X security.protocol=SASL_SSL.")
    public var properties: [String] = []

    public init() {}

    public func validate() throws {
        for p in properties where !p.contains("=") || p.hasPrefix("=") {
            throw ValidationError("-X \(p): expected key=value, e.g. -X linger.ms=5")
        }
    }
}

/// Where trades come from, for commands that take any source: a Finnhub-compatible WebSocket
/// (`--url`, default live Finnhub), one or more recordings (`--recording`, paced by `--speed`), or the
/// seeded synthetic market (`--synthetic`).
public struct SourceFlags: ParsableArguments, Sendable {
    @Option(help: "WebSocket URL, e.g. ws://127.0.0.1:9001/?token=x (sim-exchange); default FINNHUB_URL, else live Finnhub (wss://ws.finnhub.io).")
    public var url: String?
    @Option(help: "API token (default: FINNHUB_API_KEY from the environment or .env, when the URL has none).") public var token: String?
    @Option(help: "Comma-separated symbols (default: SYMBOLS, else AAPL,GOOGL,MSFT,TSLA).") public var symbols: String?
    @Option(help: "A recording to use as the source (repeatable: several make one session in time order).") public var recording: [String] = []
    @Option(help: "Pace of --recording: 10x, 1x, 0.5x, … or max.") public var speed = SpeedArgument(.factor(1))
    @Flag(help: "The seeded synthetic market sim-exchange serves, in process.") public var synthetic = false
    @Option(help: "--synthetic: seed.") public var seed: UInt64 = 42
    @Option(help: "--synthetic: trades per second over all symbols, or max.") public var rate = "20"
    @Option(help: "--synthetic: stop after this many trades.") public var trades: Int?

    public init() {}

    public func validate() throws {
        let chosen = [url != nil, !recording.isEmpty, synthetic].filter { $0 }.count
        if chosen > 1 { throw ValidationError("choose one source: --url, --recording or --synthetic") }
        if let url {
            guard let parsed = URLComponents(string: url), ["ws", "wss"].contains(parsed.scheme?.lowercased() ?? ""),
                  let host = parsed.host, !host.isEmpty else {
                throw ValidationError("--url must be a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:9001/?token=x; got '\(url)'")
            }
        }
        if let symbols, symbols.split(separator: ",").allSatisfy({ $0.allSatisfy(\.isWhitespace) }) {
            throw ValidationError("--symbols lists no symbol; give at least one, e.g. --symbols AAPL,MSFT")
        }
        if rate != "max", !(Double(rate).map { $0 > 0 && $0.isFinite } ?? false) {
            throw ValidationError("--rate must be a positive number of trades per second or max, got '\(rate)'")
        }
        if let trades, trades < 1 { throw ValidationError("--trades must be at least 1, got \(trades)") }
        for path in recording where !FileManager.default.fileExists(atPath: path) { throw ValidationError("--recording \(path): no such file") }
    }

    /// The symbols asked for, else `SYMBOLS`, else the seed's four.
    public func symbolList(_ settings: Settings) -> [String] {
        (symbols ?? settings["SYMBOLS"])?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            ?? WebSocketFeed.defaultSymbols
    }

    /// The feed these flags name; `reconnect` is the WebSocket's backoff.
    public func makeFeed(_ settings: Settings, reconnect: Backoff = Backoff()) throws -> any Feed {
        let list = symbolList(settings)
        if !recording.isEmpty {
            var o = ReplayOptions(speed: speed.speed)
            if symbols != nil { o.symbols = Set(list) }
            let feeds: [any Feed] = recording.map { RecordingFeed(path: $0, options: o) }
            return feeds.count == 1 ? feeds[0] : MergedFeed(feeds)
        }
        if synthetic {
            var o = SyntheticFeed.Options()
            o.symbols = list
            o.seed = seed
            if rate == "max" {
                o.asFastAsPossible = true
                o.tradesPerSecond = Double(o.maxTradesPerFrame) * 1000 / Double(o.frameIntervalMilliseconds)
            } else {
                o.tradesPerSecond = Double(rate) ?? 20
            }
            o.maxTrades = trades
            return SyntheticFeed(options: o)
        }
        let target = url ?? settings["FINNHUB_URL"]
        let key = token ?? settings["FINNHUB_API_KEY"]
        if target == nil && key == nil {
            throw ValidationError("FINNHUB_API_KEY is not set (environment or .env): set it for live Finnhub, or pass --url ws://127.0.0.1:9001/?token=x for sim-exchange, --recording FILE or --synthetic")
        }
        let hasToken = target?.contains("token=") ?? false
        return WebSocketFeed(url: target ?? "wss://ws.finnhub.io", token: hasToken ? nil : key, symbols: list, reconnect: reconnect)
    }
}
