import Dashboard
import Kafka
import CLI
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// `--dashboard-port`/`--dashboard-host`/`--replay-control`: the flags of `pipeline dashboard`, also on `pipeline consumers`.
struct DashboardFlags: ParsableArguments {
    @Option(name: .customLong("dashboard-port"), help: "Port of the dashboard page (pipeline dashboard: 8080; consumers: none unless given).")
    var port: Int?
    @Option(name: .customLong("dashboard-host"), help: "Address the dashboard listens on.")
    var host = "127.0.0.1"
    @Option(help: ArgumentHelp("A replay's control endpoint (replay --control-port); adds its progress and buttons to the page.", valueName: "url"))
    var replayControl: String?
    @Option(help: ArgumentHelp("Seconds between the dashboard's passes over Kafka.", valueName: "seconds"))
    var refresh = SecondsArgument(1)

    func validate() throws {
        if let port, let reason = FlagCheck.port(port, flag: "--dashboard-port") { throw ValidationError(reason) }
        if let replayControl {
            guard let url = URL(string: replayControl), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("invalid --replay-control \"\(replayControl)\": give the replay's control endpoint, e.g. http://127.0.0.1:9100")
            }
        }
        guard refresh.seconds >= 0.1 else { throw ValidationError("--refresh must be at least 0.1 seconds") }
    }

    /// The monitor and its page, on `port`; checks the port is free first.
    func services(port: Int, kafka: KafkaConfig, logger: Logger) throws -> [any Service] {
        if let reason = FlagCheck.bindable(host: host, port: port, flag: "--dashboard-port") {
            throw ValidationError(reason + " (another dashboard running? pass --dashboard-port with another port)")
        }
        var options = DashboardMonitor.Options(kafka: kafka)
        options.interval = refresh.duration
        options.replayControl = replayControl.flatMap(URL.init(string:))
        let monitor = try DashboardMonitor(options: options)
        logger.info("dashboard on http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(port)/ (Kafka at \(kafka.bootstrapServers))")
        return [monitor, DashboardServer.application(monitor: monitor, host: host, port: port)]
    }
}

struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "A live page of the running pipeline: prices and windows, alerts, dead letters, consumer lag, replay control.",
        discussion: """
        It reads Kafka only, through its own reader that joins no group and commits nothing, and the \
        admin API for the groups' committed offsets, so it shows any cluster the other commands reach. \
        Lag is in messages and in seconds (how long ago the oldest unconsumed record arrived). When the \
        broker is unreachable the page says so and the dashboard keeps retrying.

        Examples:
          pipeline dashboard                                  # http://127.0.0.1:8080/
          pipeline dashboard --dashboard-port 9000 --replay-control http://127.0.0.1:9100
          pipeline consumers --dashboard-port 8080            # consumers and the page in one process
        """)
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var dashboard: DashboardFlags

    func run() async throws {
        try kafka.bootstrapLogging(service: "dashboard")
        let logger = Logger(label: "dashboard")
        let services = try dashboard.services(port: dashboard.port ?? 8080, kafka: try kafka.kafkaConfig(), logger: logger)
        try await Lifecycle.run(services, logger: logger)
    }
}
