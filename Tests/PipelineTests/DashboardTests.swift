import Testing
import Kafka
import Pipeline
import MarketData
import Aggregation
import MarketStreamTesting
import Foundation

/// `pipeline dashboard` in a real headless Chromium (chromedriver's WebDriver protocol), fed by a
/// real replay through a real broker and a real aggregator, each its own process.
@Suite("Dashboard in a real browser", .serialized)
struct DashboardTests {
    static let aggregatorGroup = "market-aggregator"

    @Test("the page shows the aggregator's VWAPs, consumer lag rising and falling, dead letters, and pauses the replay",
          .enabled(if: WebDriver.available), .timeLimit(.minutes(5)))
    func liveDashboard() async throws {
        let broker = try LocalBroker()
        let bootstrap = broker.bootstrapServers
        let config = KafkaConfig(bootstrapServers: bootstrap)
        let dir = tempDir("dashboard")
        let log = dir + "/processes.log"
        var passed = false
        defer { if !passed { print("dashboard test processes' output: \(log)") } }

        let ensure = try ChildProcess("pipeline", ["ensure-topics", "--bootstrap-servers", bootstrap], log: log)
        #expect(await ensure.waitForExit() == 0)
        // Two poison records for the dead-letter panel.
        let producer = try KafkaProducer(config: config)
        try producer.enqueue(topic: Topics.rawMarketData, key: Array("BAD".utf8), value: Array("{not json".utf8))
        try producer.enqueue(topic: Topics.rawMarketData, key: Array("BAD".utf8), value: Array(#"{"s":"BAD","t":1}"#.utf8))
        try producer.flush(timeout: .seconds(10))

        let controlPort = try LocalBroker.freePort(), pagePort = try LocalBroker.freePort()
        let dashboard = try ChildProcess("pipeline", ["dashboard", "--bootstrap-servers", bootstrap, "--dashboard-port", "\(pagePort)",
                                                       "--replay-control", "http://127.0.0.1:\(controlPort)", "--refresh", "0.5"], log: log)
        let aggregatorArguments = ["aggregator", "--bootstrap-servers", bootstrap, "--metrics-port", "0", "--window", "20", "--hop", "5",
                                   "--alerts", "*:change:0.02"]
        var aggregator = try ChildProcess("pipeline", aggregatorArguments, log: log)
        let root = packageRoot()
        let replay = try ChildProcess("replay", [root + "/recordings/btc.jsonl", root + "/recordings/aapl.jsonl", "--bootstrap-servers", bootstrap,
                                                 "--speed", "3x", "--control-port", "\(controlPort)", "--no-keys"], log: log)
        let browser = try await WebDriver.start(log: dir + "/chromedriver.log")
        defer { Task { await browser.quit() } }
        try await browser.open("http://127.0.0.1:\(pagePort)/")

        // The page fills in: both symbols, the aggregator's group with its partitions.
        let group = "[data-group=\"\(Self.aggregatorGroup)\"] .group-lag"
        #expect(try await until(.seconds(60)) {
            let btc = try await browser.element("tr[data-symbol=\"BINANCE:BTCUSDT\"]"), aapl = try await browser.element("tr[data-symbol=\"AAPL\"]")
            let lag = try await browser.number(group), state = try await browser.text("#replay-state")
            return btc != nil && aapl != nil && lag != nil && state == "playing"
        }, "symbols, the aggregator's group and the replay never showed up")

        // Lag rises while the aggregator is stopped…
        aggregator.terminate()
        #expect(await aggregator.waitForExit() == 0)
        let before = try await browser.number(group) ?? 0
        var peak = before
        #expect(try await until(.seconds(30)) {
            peak = try await browser.number(group) ?? 0
            let seconds = try await browser.number("[data-group=\"\(Self.aggregatorGroup)\"] .group-lag-seconds") ?? 0
            return peak > before + 100 && seconds >= 2
        }, "lag did not rise while the aggregator was stopped: \(before) → \(peak)")
        // …and falls after it starts again.
        aggregator = try ChildProcess("pipeline", aggregatorArguments, log: log)
        var after = peak
        #expect(try await until(.seconds(60)) {
            after = try await browser.number(group) ?? .infinity
            return after < peak / 4
        }, "lag did not fall after the aggregator restarted: peak \(peak), now \(after)")

        // Pause in the page pauses the replay: its trade count stops growing.
        try await browser.click("#btn-pause")
        #expect(try await until(.seconds(10)) { try await browser.text("#replay-state") == "paused" })
        try await Task.sleep(for: .seconds(1))
        let pausedAt = try await replayTradesSent(controlPort)
        try await Task.sleep(for: .seconds(2))
        #expect(try await replayTradesSent(controlPort) == pausedAt, "trades kept flowing while paused")
        #expect(try await until(.seconds(5)) { try await browser.number("#replay-trades") == Double(pausedAt) })

        // Resume and finish at full speed from the page.
        try await browser.click("#btn-resume")
        try await browser.select("#replay-speed-select", value: "max")
        #expect(await replay.waitForExit(timeout: .seconds(120)) == 0, "the replay did not finish")

        // Once the aggregator has caught up, every symbol's VWAP on the page is the last aggregated-metrics message's.
        var finalLag: Double?
        #expect(try await until(.seconds(60)) { finalLag = try await browser.number(group); return finalLag == 0 }, "lag \(String(describing: finalLag)) after the replay")
        try await Task.sleep(for: .seconds(3))
        var lastWindow: [String: Double] = [:]
        for m in try readTopic(Topics.aggregatedMetrics, config: config).sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            if let w = WindowMetrics(json: m.value), let vwap = w.vwap { lastWindow[w.symbol] = vwap }
        }
        #expect(Set(lastWindow.keys) == ["BINANCE:BTCUSDT", "AAPL"])
        var shown: [String: Double] = [:]
        let matched = try await until(.seconds(30)) {
            for symbol in lastWindow.keys { shown[symbol] = try await browser.number("tr[data-symbol=\"\(symbol)\"] .vwap") }
            return shown == lastWindow
        }
        #expect(matched, "page VWAPs \(shown) != last aggregated-metrics \(lastWindow)")

        // Dead letters and alerts: the page counts what the topics hold.
        let alerts = try readTopic(Topics.priceAlerts, config: config).count
        #expect(alerts > 0)
        var deadLetters: Double?, shownAlerts: String?
        #expect(try await until(.seconds(10)) {
            deadLetters = try await browser.number("#dlq-total")
            shownAlerts = try await browser.text("#alerts-total")
            return deadLetters == 2 && shownAlerts.flatMap { Int($0.filter(\.isNumber)) } == alerts
        }, "dead letters \(String(describing: deadLetters)) (2 sent), alerts \(String(describing: shownAlerts)) (\(alerts) in the topic)")
        #expect(try await browser.element("#dlq tr[data-reason]") != nil)

        let png = try await browser.screenshot()
        let artifacts = root + "/.build/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: artifacts + "/dashboard.png"))
        Attachment.record(png, named: "dashboard.png")
        #expect(png.count > 10_000)

        aggregator.terminate()
        dashboard.interrupt()
        #expect(await dashboard.waitForExit(timeout: .seconds(10)) == 0, "Ctrl-C did not stop the dashboard cleanly")
        _ = await aggregator.waitForExit()
        passed = true
    }

    @Test("an unreachable broker shows a banner on the page, which goes away once the broker is up", .enabled(if: WebDriver.available))
    func brokerDownBanner() async throws {
        let port = try LocalBroker.freePort(), pagePort = try LocalBroker.freePort()
        let dir = tempDir("dashboard-down")
        let dashboard = try ChildProcess("pipeline", ["dashboard", "--bootstrap-servers", "127.0.0.1:\(port)", "--dashboard-port", "\(pagePort)",
                                                       "--refresh", "0.5", "-X", "reconnect.backoff.max.ms=500"], log: dir + "/processes.log")
        let browser = try await WebDriver.start(log: dir + "/chromedriver.log")
        defer { Task { await browser.quit() } }
        try await browser.open("http://127.0.0.1:\(pagePort)/")
        let visible = "const e = document.querySelector('#kafka-banner'); return !!e && e.offsetParent !== null;"
        #expect(try await until(.seconds(30)) {
            let shown = try await browser.run(visible).bool, text = try await browser.text("#kafka-banner") ?? ""
            return shown == true && text.contains("Kafka unreachable")
        }, "no banner while the broker is down")
        let broker = try LocalBroker(port: port)
        #expect(try await until(.seconds(40)) { try await browser.run(visible).bool == false }, "the banner stayed after the broker came up")
        broker.stop()
        dashboard.interrupt()
        #expect(await dashboard.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test("bad dashboard flags are one-line errors")
    func badFlags() async throws {
        let dir = tempDir("dashboard-flags")
        for (arguments, expected) in [
            (["--replay-control", "nonsense"], "invalid --replay-control \"nonsense\""),
            (["--dashboard-port", "70000"], "--dashboard-port"),
            (["--refresh", "0.05"], "--refresh must be at least 0.1 seconds"),
        ] {
            let log = dir + "/\(UUID().uuidString).log"
            let p = try ChildProcess("pipeline", ["dashboard"] + arguments, log: log)
            #expect(await p.waitForExit() == 64, "\(arguments)")
            let output = try String(contentsOfFile: log, encoding: .utf8)
            #expect(output.contains(expected), "\(arguments): \(output)")
        }
    }

    private func replayTradesSent(_ port: Int) async throws -> Int {
        let (status, body) = await httpRequest("GET", "http://127.0.0.1:\(port)/status")
        guard status == 200, let sent = JSONValue.parse(body)?["trades_sent"]?.int64 else { throw WebDriver.Failure(description: "replay status: \(body)") }
        return Int(sent)
    }

    /// Polls `condition` every 250 ms until it holds or `timeout` passes.
    private func until(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return try await condition()
    }
}
