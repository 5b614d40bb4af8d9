import SimExchange
import Feeds
import MarketData
import CLI
import Foundation
import ArgumentParser
import Logging
import ServiceLifecycle

@main
struct SimExchangeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-exchange",
        abstract: "A mock Finnhub trades WebSocket server (ws:// or wss://) with synthetic trades and fault injection.",
        discussion: """
            Clients connect to ws://HOST:PORT/?token=TOKEN and send {"type":"subscribe","symbol":"AAPL"} / \
            {"type":"unsubscribe",...}. Each connection gets its own seeded synthetic market, created at its first \
            subscription; every frame interval of virtual time the trades of the subscribed symbols go out as one \
            {"type":"trade","data":[...]} frame (split at --max-trades-per-frame; nothing when there are none). \
            Virtual time follows wall time unless --rate max / --as-fast-as-possible. Same seed, start time and \
            subscriptions give byte-identical frames. Errors are sent as {"type":"error","msg":"Invalid symbol"} and \
            {"type":"error","msg":"Subscribing to too many symbols"}; malformed client frames are logged and ignored. \
            Slow clients: each connection may queue --outbound-budget bytes; in paced mode frames due while over budget \
            are dropped and the count is logged once when the connection ends. GET /health answers 200. \
            SIGINT/SIGTERM shut down gracefully; a second signal exits at once.

            Examples:
              sim-exchange --port 9001                                   # ws://127.0.0.1:9001/?token=anything
              sim-exchange --seed 7 --rate 500 --token secret --ping-interval 10
              sim-exchange --replay recordings/aapl.jsonl --speed 10x
              sim-exchange --replay recordings/btc.jsonl --control-port 9091   # then POST /pause, /seek?to=-60s …
              sim-exchange --drop-after-frames 100 --malformed-every 50
              sim-exchange --tls-cert cert.pem --tls-key key.pem         # wss://
            """)

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one; the bound port is logged).") var port = 9001
    @Option(help: "Required ?token= value; wrong or missing → HTTP 401 on upgrade. Unset: any token accepted.") var token: String?
    @Option(help: "Symbols per connection before 'Subscribing to too many symbols'.") var maxSymbols = 50
    @Option(help: "Comma-separated symbols answered with 'Invalid symbol'.") var invalidSymbols = ""
    @Option(help: "Seconds between {\"type\":\"ping\"} frames.") var pingInterval = 60.0
    @Option(help: "Seed of the synthetic market.") var seed: UInt64 = 42
    @Option(help: "Virtual start time in Unix ms (default: wall clock at a connection's first subscription).") var startTime: Int64?
    @Option(help: "Synthetic trades per virtual second, or 'max' (as fast as possible, one full frame per interval).") var rate = "20"
    @Flag(help: "Send frames as fast as the client reads instead of following wall time.") var asFastAsPossible = false
    @Option(help: "Virtual milliseconds per frame.") var frameIntervalMs: Int64 = 100
    @Option(help: "Most trades in one frame; more are split over several frames.") var maxTradesPerFrame = 100
    @Option(help: "Fault: close each connection abruptly after N trade frames.") var dropAfterFrames: Int?
    @Option(help: "Fault: close each connection abruptly after S seconds.") var dropAfterSeconds: Double?
    @Option(help: "Fault: every Nth trade frame is truncated JSON.") var malformedEvery: Int?
    @Option(help: "Fault: stall every S seconds (with --stall-for-seconds).") var stallEverySeconds: Double?
    @Option(help: "Fault: how long each stall lasts, in seconds.") var stallForSeconds = 0.0
    @Option(help: "Fault: refuse upgrades with HTTP 503 for S seconds after start.") var refuseForSeconds: Double?
    @Option(help: "Bytes a connection may have queued before frames are dropped (paced mode).") var outboundBudget = 1 << 20
    @Option(help: "PEM certificate chain: serve wss:// (needs --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert.") var tlsKey: String?
    @Option(help: "Orders over the WebSocket (docs/BACKTEST.md): fee per fill in basis points.") var orderFeeBps = 0.0
    @Option(help: "Orders over the WebSocket: ms of trade time before an order can fill.") var orderLatencyMs: Int64 = 0
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = LogLevelArgument(.info)
    @Option(help: "Serve the trades of this recording instead of the synthetic market (see docs/RECORDING_FORMAT.md).") var replay: String?
    @Option(parsing: .unconditional, help: "With --replay: 10x, 1x, 0.5x … (recorded time per wall time).") var speed = SpeedArgument(.factor(1))
    @Flag(help: "With --replay: start over at the end.") var loop = false
    @Option(help: "With --replay: serve the replay's controls over HTTP on this port (GET /status, POST /pause, /resume, /speed?to=, /seek?to=), for every connection at once.")
    var controlPort: Int?
    @Option(help: "Address the control endpoint listens on.") var controlHost = "127.0.0.1"

    func validate() throws {
        if let reason = FlagCheck.port(port, flag: "--port") { throw ValidationError(reason) }
        if rate != "max" {
            guard let r = Double(rate), r.isFinite, r > 0 else { throw ValidationError("--rate takes a number of trades per second > 0 or 'max', got '\(rate)'") }
        }
        guard pingInterval.isFinite, pingInterval > 0 else { throw ValidationError("--ping-interval must be > 0 seconds, got \(pingInterval)") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        for (flag, path) in [("--tls-cert", tlsCert), ("--tls-key", tlsKey)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) { throw ValidationError("\(flag) \(path): no such readable file") }
        }
        if maxTradesPerFrame < 1 || frameIntervalMs < 1 { throw ValidationError("--max-trades-per-frame and --frame-interval-ms must be positive") }
        if replay != nil {
            guard case .factor = speed.speed else { throw ValidationError("--speed takes a factor like 10x, 1x or 0.5x") }
        }
        if let controlPort {
            guard replay != nil else { throw ValidationError("--control-port steers a replay: give --replay FILE too") }
            if let reason = FlagCheck.port(controlPort, flag: "--control-port") { throw ValidationError(reason) }
            if let reason = FlagCheck.bindable(host: controlHost, port: controlPort, flag: "--control-port") { throw ValidationError(reason) }
        }
    }

    func run() async throws {
        var config = SimExchangeConfig()
        config.host = host
        config.port = port
        config.token = token
        config.maxSymbols = maxSymbols
        config.invalidSymbols = Set(invalidSymbols.split(separator: ",").map(String.init))
        config.pingInterval = pingInterval
        config.seed = seed
        config.startMilliseconds = startTime
        config.frameIntervalMilliseconds = frameIntervalMs
        config.maxTradesPerFrame = maxTradesPerFrame
        config.asFastAsPossible = asFastAsPossible
        if rate == "max" { config.setMaxRate() } else { config.tradesPerSecond = Double(rate) ?? 20 }
        config.dropAfterFrames = dropAfterFrames
        config.orderFeeBps = orderFeeBps
        config.orderLatencyMilliseconds = orderLatencyMs
        config.dropAfterSeconds = dropAfterSeconds
        config.malformedEvery = malformedEvery
        config.stallEverySeconds = stallEverySeconds
        config.stallForSeconds = stallForSeconds
        config.refuseForSeconds = refuseForSeconds
        config.outboundBudgetBytes = outboundBudget
        config.tlsCertificatePath = tlsCert
        config.tlsKeyPath = tlsKey
        var logger = Logger(label: "sim-exchange")
        logger.logLevel = logLevel.level
        var services: [any Service] = []
        if let replay {
            guard case .factor(let factor) = speed.speed else { throw ValidationError("--speed takes a factor like 10x") }
            let control = controlPort.map { _ in ReplayControl(speed: speed.speed, file: replay) }
            config.tradeSource = try ReplaySource.factory(path: replay, speed: factor, loop: loop, control: control, logger: logger)
            if let control, let controlPort {
                services.append(ReplayControlEndpoint.application(control: control, host: controlHost, port: controlPort))
                logger.info("replay controls on http://\(controlHost):\(controlPort)/status")
            }
        }
        if let reason = FlagCheck.bindable(host: host, port: port, flag: "--port") {
            throw ValidationError(reason + " (another sim-exchange running? --port 0 picks a free port)")
        }
        let server = try SimExchangeServer(config: config, logger: logger).service()
        try await Lifecycle.run([server] + services, logger: logger)
    }
}
