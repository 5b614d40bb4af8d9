import Pipeline
import Kafka
import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

/// Runs an executable to its end with `arguments`; its exit status and everything it printed.
func runToEnd(_ name: String, _ arguments: [String], timeout: Duration = .seconds(20)) async throws -> (status: Int32?, output: String) {
    let log = NSTemporaryDirectory() + "/" + TestBroker.unique("bad-input") + ".log"
    defer { try? FileManager.default.removeItem(atPath: log) }
    let process = try ChildProcess(name, arguments, log: log)
    let status = await process.waitForExit(timeout: timeout)
    process.kill9()
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    return (status, text.split(separator: "\n").dropFirst().joined(separator: "\n"))
}

/// Bad flags and files fed to the real executables, as a new user would: each is refused at once,
/// before anything connects, with a non-zero exit and one line naming the flag and the reason.
@Suite("Bad input to the executables", .serialized)
struct BadInputTests {
    static let unreachable = ["--bootstrap-servers", "127.0.0.1:1"]

    @Test(arguments: [
        (["storage", "--retention-days", "0"], "--retention-days must be at least 1"),
        (["storage", "--retention-days=-1"], "--retention-days must be at least 1"),
        (["storage", "--batch-size", "0"], "--batch-size must be at least 1 record"),
        (["aggregator", "--window", "60", "--hop", "7"], "--window must be a positive multiple of --hop (7 s), got 60"),
        (["aggregator", "--hop", "0"], "--hop must be at least 1 second"),
        (["aggregator", "--alerts", "AAPL:above:-5"], "a price level must be > 0"),
        (["aggregator", "--alerts", ""], "--alerts is empty; leave the flag out for no alerts"),
        (["logger", "--log-level", "bogus"], "The value 'bogus' is invalid for '--log-level <log-level>'. Please provide one of the following:\n  - trace\n  - debug\n  - info\n  - notice\n  - warning\n  - error\n  - critical"),
        (["logger", "--metrics-port", "99999"], "--metrics-port must be a port number from 0 to 65535, got 99999"),
        (["logger", "--metrics-port=-1"], "--metrics-port must be a port number from 0 to 65535, got -1"),
        (["produce", "--url", "not a url"], "--url must be a ws:// or wss:// URL with a host"),
        (["produce", "--url", "ws://127.0.0.1:9001/", "--symbols", " , "], "--symbols lists no symbol"),
    ])
    func pipelineRefusesBadFlagsBeforeConnecting(arguments: [String], message: String) async throws {
        let (status, output) = try await runToEnd("pipeline", arguments + Self.unreachable)
        #expect(status != nil && status != 0, "exit status \(String(describing: status)) for \(arguments)")
        #expect(output.contains(message), "\(arguments) printed: \(output)")
        #expect(!output.contains("connect to Kafka"), "\(arguments) tried to connect first: \(output)")
    }

    @Test(arguments: [
        (["--port", "99999"], "--port must be a port number from 0 to 65535, got 99999"),
        (["--port=-5"], "--port must be a port number from 0 to 65535, got -5"),
        (["--log-level", "bogus"], "The value 'bogus' is invalid for '--log-level <log-level>'. Please provide one of the following:"),
        (["--ping-interval", "0"], "--ping-interval must be > 0 seconds, got 0.0"),
        (["--ping-interval=-1"], "--ping-interval must be > 0 seconds, got -1.0"),
        (["--rate=-5"], "--rate takes a number of trades per second > 0 or 'max', got '-5'"),
        (["--replay", "recordings/btc.jsonl", "--speed", "-1x"], "The value '-1x' is invalid for '--speed <speed>'"),
    ])
    func simExchangeRefusesBadFlags(arguments: [String], message: String) async throws {
        let (status, output) = try await runToEnd("sim-exchange", arguments)
        #expect(status != nil && status != 0, "exit status \(String(describing: status)) for \(arguments)")
        #expect(output.contains(message), "\(arguments) printed: \(output)")
    }

    @Test(arguments: [
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "--tls-cert /nonexistent/cert.pem: no such readable file"),
        (["--tls-cert", "README.md", "--tls-key", "README.md", "--port", "0"], "--tls-cert README.md: cannot load a PEM certificate chain"),
    ])
    func simExchangeNamesABadTLSFile(arguments: [String], message: String) async throws {
        let (status, output) = try await runToEnd("sim-exchange", arguments.map { $0 == "README.md" ? packageRoot() + "/README.md" : $0 })
        #expect(status != nil && status != 0)
        #expect(output.replacingOccurrences(of: packageRoot() + "/", with: "").contains(message), "printed: \(output)")
        #expect(output.split(separator: "\n").count <= 3, "not one line: \(output)")
    }

    @Test func aDataFolderThatCannotBeCreatedIsNamedWithItsFlag() async throws {
        let (status, output) = try await runToEnd("pipeline", ["storage", "--data-dir", "/proc/marketstream-data", "--metrics-port", "0"] + Self.unreachable)
        #expect(status != nil && status != 0)
        #expect(output.contains("--data-dir /proc/marketstream-data: mkdir '/proc/marketstream-data' failed"), "printed: \(output)")
        #expect(!output.contains("NSCocoaErrorDomain") && !output.contains("connect to Kafka"), "printed: \(output)")
    }

    @Test func paperTradingFailsWithinTheConnectTimeoutWhenNoBrokerAnswers() async throws {
        let started = ContinuousClock.now
        let (status, output) = try await runToEnd("backtest", ["paper", "--strategy", "buy-and-hold"] + Self.unreachable, timeout: .seconds(30))
        #expect(status != nil && status != 0, "still running after 30 s")
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(output.contains("connect to Kafka at 127.0.0.1:1"), "printed: \(output)")
    }

    @Test func recordingWithARejectedKeySaysSoAndFails() async throws {
        let port = try LocalBroker.freePort()
        let server = try ChildProcess("sim-exchange", ["--port", "\(port)", "--token", "secret"], log: NSTemporaryDirectory() + "/" + TestBroker.unique("sim") + ".log")
        defer { server.terminate() }
        #expect(try await eventually(timeout: .seconds(10)) { LocalBroker.isListening(port: port) })
        let out = NSTemporaryDirectory() + "/" + TestBroker.unique("rec") + ".jsonl"
        let (status, output) = try await runToEnd("replay", ["record", "--url", "ws://127.0.0.1:\(port)/?token=wrong", "--out", out, "--duration", "5"])
        #expect(status != nil && status != 0, "printed: \(output)")
        #expect(output.contains("rejected the API key (HTTP 401)"), "printed: \(output)")
        #expect(!output.contains("wrong"), "the token was printed: \(output)")
    }

    /// Ctrl-C while a command still waits for an unreachable broker ends it at once.
    @Test(arguments: [["pipeline", "ensure-topics"], ["pipeline", "logger", "--metrics-port", "0"], ["pipeline", "aggregator", "--metrics-port", "0"],
                      ["replay", "recordings/btc.jsonl"], ["backtest", "paper", "--strategy", "buy-and-hold"]])
    func aSignalWhileConnectingEndsTheCommandAtOnce(command: [String]) async throws {
        let log = NSTemporaryDirectory() + "/" + TestBroker.unique("sigint") + ".log"
        let arguments = command.dropFirst().map { $0.hasPrefix("recordings/") ? packageRoot() + "/" + $0 : $0 }
        let process = try ChildProcess(command[0], arguments + Self.unreachable, log: log)
        try await Task.sleep(for: .seconds(1.5))
        #expect(process.isRunning, "\(arguments) ended before the signal")
        let sent = ContinuousClock.now
        process.interrupt()
        let status = await process.waitForExit(timeout: .seconds(5))
        #expect(status == 130, "\(arguments): exit status \(String(describing: status)) within \(ContinuousClock.now - sent) of SIGINT")
        #expect(ContinuousClock.now - sent < .seconds(3))
    }

    @Test func aPortInUseIsNamedWithItsFlag() async throws {
        let port = try LocalBroker.freePort()
        let first = try ChildProcess("sim-exchange", ["--port", "\(port)"], log: NSTemporaryDirectory() + "/" + TestBroker.unique("sim") + ".log")
        defer { first.terminate() }
        #expect(try await eventually(timeout: .seconds(10)) { LocalBroker.isListening(port: port) })
        let (status, output) = try await runToEnd("sim-exchange", ["--port", "\(port)"])
        #expect(status != nil && status != 0)
        #expect(output.contains("--port \(port): cannot listen on 127.0.0.1:\(port): address already in use"), "printed: \(output)")
        let (metricsStatus, metricsOutput) = try await runToEnd("pipeline", ["logger", "--metrics-port", "\(port)"] + Self.unreachable)
        #expect(metricsStatus != nil && metricsStatus != 0)
        #expect(metricsOutput.contains("--metrics-port \(port): cannot listen"), "printed: \(metricsOutput)")
    }

    @Test func replayRefusesANegativeSpeedByName() async throws {
        let (status, output) = try await runToEnd("replay", [packageRoot() + "/recordings/btc.jsonl", "--speed", "-1x", "--dry-run"])
        #expect(status != nil && status != 0)
        #expect(output.contains("-1x"), "printed: \(output)")
        #expect(!output.contains("Missing value"), "printed: \(output)")
    }

    /// A failed import leaves nothing behind; an existing output is kept unless --overwrite.
    @Test func aFailedImportLeavesNoPartialRecordingAndAnExistingOneIsKept() async throws {
        let dir = NSTemporaryDirectory() + "/" + TestBroker.unique("import")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let csv = dir + "/trades.csv", out = dir + "/out.jsonl"
        let header = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        let good = "binance-futures,BTCUSDT,1582329602111000,1582329602418379,1,buy,9682,0.132\n"
        try (header + good + good + "binance-futures,BTCUSDT,notatime,1582329602418420,2,buy,9682,0.4\n" + good).write(toFile: csv, atomically: true, encoding: .utf8)
        let (status, output) = try await runToEnd("replay", ["import", "tardis", csv, "--out", out])
        #expect(status != nil && status != 0, "printed: \(output)")
        #expect(output.contains("trades.csv") && output.contains("4"), "the error names the file and line: \(output)")
        #expect(!FileManager.default.fileExists(atPath: out), "a partial recording was left at \(out)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["trades.csv"], "temporary files were left")

        try (header + good).write(toFile: csv, atomically: true, encoding: .utf8)
        #expect(try await runToEnd("replay", ["import", "tardis", csv, "--out", out]).status == 0)
        let kept = try String(contentsOfFile: out, encoding: .utf8)
        let again = try await runToEnd("replay", ["import", "tardis", csv, "--out", out])
        #expect(again.status != nil && again.status != 0)
        #expect(again.output.contains("already exists; pass --overwrite to replace it"), "printed: \(again.output)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == kept)
        #expect(try await runToEnd("replay", ["import", "tardis", csv, "--out", out, "--overwrite"]).status == 0)
    }

    /// `--batch-size N` bounds every batch (and so every file) to N records, whatever the consumer's batches.
    @Test func storageHonoursTheBatchSize() async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("batch-raw")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 1)])
        let producer = try KafkaProducer(config: config)
        for i in 0..<1000 {
            let trade = Trade(symbol: "AAPL", price: 100 + Double(i % 7), timestamp: 1_700_000_000_000 + Int64(i), volume: 1, conditions: nil)
            try producer.enqueue(topic: topic, key: Array("AAPL".utf8), value: TradeMessage.encode(trade), timestamp: trade.timestamp)
        }
        try producer.close()
        let data = NSTemporaryDirectory() + "/" + TestBroker.unique("batch-data")
        let storage = try ChildProcess("pipeline", ["storage", "--bootstrap-servers", config.bootstrapServers, "--topic", topic, "--group", TestBroker.unique("g"),
                                                    "--data-dir", data, "--batch-size", "64", "--batch-seconds", "1", "--metrics-port", "0"],
                                       log: NSTemporaryDirectory() + "/" + TestBroker.unique("batch") + ".log")
        #expect(try await eventually(timeout: .seconds(30)) { storedLines(data).count >= 1000 })
        storage.terminate()
        #expect(await storage.waitForExit() == 0)
        let files = StoredOffsets.batchFiles(under: data)
        #expect(files.count >= 1000 / 64)
        for (path, batch) in files {
            #expect(batch.lastOffset - batch.firstOffset < 64, "\(path) spans \(batch.lastOffset - batch.firstOffset + 1) offsets")
        }
        #expect(storedLines(data).count == 1000)
    }

    /// Poison records at the end of a partition are dead-lettered once: a graceful restart continues
    /// after them instead of sending them again (aggregator and storage both commit their own offsets).
    @Test(arguments: ["aggregator", "storage"])
    func aRestartNeverDeadLettersARecordTwice(consumer: String) async throws {
        let config = try TestBroker.config()
        let topic = TestBroker.unique("poison-tail")
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: 1)] + TopicSpec.pipelineTopics)
        let producer = try KafkaProducer(config: config)
        for i in 0..<3 {
            let trade = Trade(symbol: "AAPL", price: 100, timestamp: 1_700_000_000_000 + Int64(i), volume: 1, conditions: nil)
            try producer.enqueue(topic: topic, key: Array("AAPL".utf8), value: TradeMessage.encode(trade), timestamp: trade.timestamp)
        }
        try producer.enqueue(topic: topic, key: Array("AAPL".utf8), value: Array("{not json".utf8))
        try producer.enqueue(topic: topic, key: Array("AAPL".utf8), value: Array(#"{"s":"AAPL"}"#.utf8))
        try producer.close()
        let group = TestBroker.unique("g")
        var arguments = [consumer, "--bootstrap-servers", config.bootstrapServers, "--topic", topic, "--group", group, "--metrics-port", "0"]
        if consumer == "storage" { arguments += ["--data-dir", NSTemporaryDirectory() + "/" + TestBroker.unique("poison-data"), "--batch-seconds", "1"] }
        let log = NSTemporaryDirectory() + "/" + TestBroker.unique("poison") + ".log"
        func deadLetters() throws -> Int {
            try readTopic(Topics.deadLetterQueue, config: config).filter { $0.header("dlq.source.topic") == Array(topic.utf8) }.count
        }
        for run in 1...2 {
            let p = try ChildProcess("pipeline", arguments, log: log)
            if run == 1 { #expect(try await eventually(timeout: .seconds(30)) { try deadLetters() >= 2 }) }
            try await Task.sleep(for: .seconds(run == 1 ? 2 : 6))
            p.terminate()
            #expect(await p.waitForExit() == 0)
        }
        #expect(try deadLetters() == 2, "see \(log)")
    }
}
