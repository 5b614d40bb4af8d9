import Pipeline
import Kafka
import Feeds
import Recording
import MarketData
import CLI
import Logging
import ServiceLifecycle
import ArgumentParser
import Synchronization
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay recorded Finnhub sessions into Kafka, record new ones, and import real history.",
        discussion: "Recording format: docs/RECORDING_FORMAT.md. `replay FILE ...` is short for `replay play FILE ...`.",
        subcommands: [Play.self, Record.self, Import.self, Index.self, Pack.self],
        defaultSubcommand: Play.self)
}

// MARK: - Shared helpers

func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { b in
        var done = 0
        while done < b.count {
            let r = write(2, b.baseAddress! + done, b.count - done)
            if r <= 0 { if r < 0 && errno == EINTR { continue }; return }
            done += r
        }
    }
}

/// Prints `replay: <message>` and exits non-zero.
func fail(_ message: String) -> ExitCode {
    writeStderr("replay: \(message.split(whereSeparator: \.isNewline).joined(separator: " "))\n")
    return ExitCode(1)
}

func formatCount(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() { if i > 0 && i % 3 == 0 { out.append(",") }; out.append(c) }
    return String(out.reversed())
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

// MARK: - play

struct Play: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a recording's trades to Kafka (raw-market-data), paced by the recorded receive times.",
        discussion: """
            Frame i is released at W0 + (recv_ns_i - recv_ns_0) / speed on one absolute schedule (no sleep drift). \
            Trades go through the same ingest service as `pipeline produce` (one message per trade, keyed by symbol). \
            Several files make one session: frames in receive-time order, a tie going to the file named first. \
            On a terminal a progress line updates in place; otherwise a line every 5 s goes to stderr. Ctrl-C \
            stops, flushes and prints the summary; a second Ctrl-C exits at once.

            Steering while it runs (a recording, not a merged session, for seeks): on a terminal, space \
            pauses and resumes, + and - step the speed through 0.5x 1x 2x 5x 10x 50x 100x max, the arrows \
            seek (right/left 10 s, up/down 60 s of recording time) and q quits cleanly. With --control-port \
            the same over HTTP: GET /status (JSON), POST /pause, /resume, /speed?to=10x, /seek?to=TIME \
            (ISO-8601, Unix ms, or +10s / -60s). After every change the schedule starts again from where the \
            replay is; what a seek passes over and what it repeats are counted in the summary. Seeks use the \
            index FILE.idx (`replay index FILE`, or built in the background on first use).

            Examples:
              replay recordings/btc.jsonl --speed 10x
              replay recordings/aapl.jsonl recordings/btc.jsonl --speed max --dry-run | head
              replay session.jsonl.gz --from 2024-08-08T23:55:00Z --to 1723161600000 --symbols AAPL
              replay recordings/btc.jsonl --speed 10x --control-port 9090 &
              curl -X POST 'http://127.0.0.1:9090/seek?to=%2B60s'; curl http://127.0.0.1:9090/status
            """)

    @Argument(help: "Recordings (.jsonl or .jsonl.gz); several are merged in time order.") var files: [String]
    @Option(parsing: .unconditional, help: "10x, 1x, 0.5x, … or max (as fast as Kafka takes it).") var speed = SpeedArgument(.factor(1))
    @Option(help: "Start at this receive time (ISO-8601 or Unix ms).") var from: String?
    @Option(help: "Stop after this receive time (ISO-8601 or Unix ms).") var to: String?
    @Option(help: "Only these symbols (comma-separated).") var symbols: String?
    @Option(help: "Start at this line of the recording (line 1 is the header): continue a replay that stopped, as its message says, without publishing again what it published.")
    var fromLine: Int?
    @Flag(help: "Start over at the end, on one continuous schedule, until Ctrl-C.") var loop = false
    @Flag(help: "Decode and pace, but print the trades as JSON lines to stdout instead of producing.") var dryRun = false
    @Flag(help: "Skip (and count) bad lines instead of failing.") var skipBad = false
    @OptionGroup var kafka: KafkaFlags
    @Option(help: "Create the pipeline topics when missing.") var ensureTopics = true
    @Option(help: "Kafka topic.") var topic = Topics.rawMarketData
    @Flag(inversion: .prefixedNo, help: "Mark each message with the headers source=replay:FILE and ingest_time (Unix ms), as `pipeline produce --headers` does; off by default, since they double the producer's CPU per message (see docs/BENCH.md).")
    var headers = false
    @Flag(help: "No progress output.") var quiet = false
    @Option(help: "Serve the replay's controls over HTTP on this port (GET /status, POST /pause, /resume, /speed?to=, /seek?to=).")
    var controlPort: Int?
    @Option(help: "Address the control endpoint listens on.") var controlHost = "127.0.0.1"
    @Flag(inversion: .prefixedNo, help: "Steer with keys when standard input is a terminal (space, + -, arrows, q).") var keys = true

    func validate() throws {
        if files.isEmpty { throw ValidationError("name a recording, e.g. replay recordings/btc.jsonl --speed 10x") }
        if let controlPort {
            if let reason = FlagCheck.port(controlPort, flag: "--control-port") { throw ValidationError(reason) }
            if let reason = FlagCheck.bindable(host: controlHost, port: controlPort, flag: "--control-port") { throw ValidationError(reason) }
        }
    }

    /// What the run leaves behind for the summary and the loss report.
    final class Outcome: Sendable {
        let publisher = Mutex<TradePublisher?>(nil)
        let failures = Mutex<(count: Int, first: String?)>((0, nil))
        let safeLine = Mutex(0)
    }

    func run() async throws {
        let opts: ReplayOptions
        do { opts = try makeOptions() } catch { throw fail(error.description) }
        let tty = isatty(2) == 1
        let quiet = quiet
        let outcome = Outcome()
        let steering = controlPort != nil || (keys && isatty(0) == 1)
        let control = steering ? ReplayControl(speed: opts.speed, file: files.joined(separator: "+")) : nil
        let reporter: (@Sendable (ReplayProgress) -> Void)? = quiet ? nil : { @Sendable p in
            Play.report(p, tty: tty, kafka: outcome.publisher.withLock { $0 }?.producer.statistics, control: control?.status)
        }
        let release: (@Sendable (Int, Int) -> Void)? = dryRun ? nil : { @Sendable line, trades in
            guard let stats = outcome.publisher.withLock({ $0 })?.producer.statistics, stats.failed == 0, stats.delivered == trades else { return }
            outcome.safeLine.withLock { $0 = line }
        }
        let feed = RecordingFeed(paths: files, options: opts, onProgress: reporter, beforeRelease: release, control: control)
        do { try feed.check() } catch { throw fail(error.description) }

        var config = KafkaConfig.from(settings: Settings.load())
        if let bootstrapServers = kafka.bootstrapServers { config.bootstrapServers = bootstrapServers }
        for p in kafka.properties { do { try config.set(p) } catch { throw fail("-X \(p): \(error.message)") } }
        let (dry, topic, ensureTopics, headers, kafkaConfig) = (dryRun, topic, ensureTopics, headers, config)
        let onFailure: @Sendable (KafkaError) -> Void = { error in
            let first = outcome.failures.withLock { f -> Bool in f.count += 1; if f.first == nil { f.first = error.description; return true }; return false }
            if first && !quiet { writeStderr("\nreplay: Kafka did not take a trade: \(error); counting failures\n") }
        }
        let speed = opts.speed
        var failure: (any Error)?
        var services: [any Service] = []
        if let control, let controlPort {
            services.append(ReplayControlEndpoint.application(control: control, host: controlHost, port: controlPort))
            if !quiet { writeStderr("replay: controls on http://\(controlHost):\(controlPort)/status\n") }
        }
        let terminal = keys ? control.flatMap(TerminalKeys.start) : nil
        defer { terminal?.stop() }
        do {
            try await Lifecycle.run([ServiceBody(name: "replay") {
                let sink: any TradeSink
                if dry {
                    sink = TradeLineWriter(flushesEveryPublish: speed != .max)
                } else {
                    let publisher = try await interruptible {
                        try ReplayKafka.connect(config: kafkaConfig, fileName: feed.fileName, topic: topic, ensureTopics: ensureTopics, headers: headers,
                                                onDeliveryFailure: onFailure)
                    }
                    outcome.publisher.withLock { $0 = publisher }
                    sink = ReplayKafka.pipeline(publisher, speed: speed)
                }
                try await IngestService(feed: feed, sink: sink, logger: Logger(label: "replay")).run()
                (sink as? PipelinedPublisher)?.close()
            }] + services, logger: Logger(label: "replay"))
        } catch let error as ExitCode {
            throw error
        } catch {
            failure = error
        }
        if tty && !quiet { writeStderr("\r\u{1B}[K") }
        let stats = outcome.publisher.withLock { $0 }?.producer.statistics
        if let summary = feed.summary, failure == nil || failure is KafkaError {
            // The recording was read to its end (or to Ctrl-C); a Kafka error here came from the final flush.
            let flushError = (failure as? KafkaError)?.description
            if !quiet || summary.interrupted { writeStderr(summary.description + "\n") }
            for p in summary.problems.prefix(5) { writeStderr("  skipped \(p)\n") }
            if let stats, stats.failed == 0, stats.delivered == summary.trades { outcome.safeLine.withLock { $0 = summary.lastLine } }
            if let stats, stats.failed > 0 || flushError != nil {
                throw fail(Play.lossReport(stats, handed: summary.trades, safeLine: outcome.safeLine.withLock { $0 }, lastLine: summary.lastLine,
                                           error: flushError ?? outcome.failures.withLock { $0.first } ?? "delivery failed"))
            }
            return
        }
        guard let error = failure else { return }
        let text = (error as? ReplayFailure)?.description ?? (error as? KafkaError)?.description ?? "\(error)"
        if let line = (error as? ReplayFailure)?.line, let stats, stats.failed == 0, stats.inFlight == 0 {
            throw fail(text + "\n  every trade before line \(line) is in Kafka (\(formatCount(stats.delivered)) trades): fix line \(line) and continue with "
                       + "--from-line \(line), or skip it with --from-line \(line + 1); either publishes nothing twice")
        }
        if let stats, stats.enqueued > 0 {
            throw fail(text + "\n" + Play.lossReport(stats, handed: stats.enqueued, safeLine: outcome.safeLine.withLock { $0 }, lastLine: nil, error: nil))
        }
        throw fail(text)
    }

    /// What reached Kafka when some trades did not: the counts, and the line to continue from.
    static func lossReport(_ stats: ProducerStatistics, handed: Int, safeLine: Int, lastLine: Int?, error: String?) -> String {
        var s = "Kafka acknowledged \(formatCount(stats.delivered)) of \(formatCount(handed)) trades; \(formatCount(stats.failed)) failed"
        if stats.inFlight > 0 { s += ", \(formatCount(stats.inFlight)) unacknowledged" }
        if let error { s += " (\(error))" }
        if safeLine > 0 {
            s += ". Every trade up to recording line \(safeLine) is in Kafka: continue with --from-line \(safeLine + 1)"
            if let lastLine, lastLine > safeLine { s += " (lines \(safeLine + 1)–\(lastLine) may be partly in Kafka already)" }
        } else {
            s += ". No line is known to be completely in Kafka: replay the whole file again"
        }
        return s
    }

    func makeOptions() throws(ReplayFailure) -> ReplayOptions {
        var o = ReplayOptions()
        o.speed = speed.speed
        if let from { o.fromNs = try ReplayTime.parse(from) }
        if let to { o.toNs = try ReplayTime.parse(to) }
        if let a = o.fromNs, let b = o.toNs, b < a { throw ReplayFailure("--to is before --from") }
        if let fromLine {
            guard fromLine >= 1 else { throw ReplayFailure("--from-line takes a line number of the recording (1 or more), got \(fromLine)") }
            o.fromLine = fromLine
        }
        if let symbols {
            let set = Set(symbols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            if set.isEmpty { throw ReplayFailure("--symbols is empty") }
            o.symbols = set
        }
        o.loop = loop
        o.skipBad = skipBad
        o.progressIntervalNs = isatty(2) == 1 ? 200_000_000 : 5_000_000_000
        return o
    }

    static func report(_ p: ReplayProgress, tty: Bool, kafka: ProducerStatistics? = nil, control: ReplayStatus? = nil) {
        let pct = p.fraction.map { String(format: "%5.1f%%", $0 * 100) } ?? "   ?%"
        let rate = formatCount(Int(p.tradesPerSecond.rounded()))
        let lag = String(format: "%.1f ms", Double(p.lagNs) / 1e6)
        let eta = p.etaSeconds.map(formatDuration) ?? "?"
        var pass = p.pass > 1 ? " pass \(p.pass)" : ""
        if let control {
            pass += control.paused ? "  PAUSED \(control.speed)" : "  \(control.speed)"
            if let at = control.positionNs { pass += " @ \(ReplayTime.iso(at))" }
            if control.seeks > 0 { pass += "  skipped \(formatCount(control.skippedTrades)) repeated \(formatCount(control.repeatedTrades))" }
            if let notice = control.notice { pass += "  (\(notice))" }
        }
        if let kafka {
            pass += "  unacked \(formatCount(max(0, p.trades - kafka.delivered - kafka.failed)))"
            if kafka.failed > 0 { pass += "  FAILED \(formatCount(kafka.failed))" }
        }
        if tty {
            let width = 24
            let filled = Int(((p.fraction ?? 0) * Double(width)).rounded())
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: max(0, width - filled))
            writeStderr("\r\u{1B}[K\(pct) [\(bar)] \(formatCount(p.trades)) trades  \(rate)/s  lag \(lag)  ETA \(eta)\(pass)")
        } else {
            writeStderr("replay: \(pct.trimmingCharacters(in: .whitespaces)) \(formatCount(p.trades)) trades, \(rate) trades/s, lag \(lag), ETA \(eta)\(pass)\n")
        }
    }
}

// MARK: - record

struct Record: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record any source's raw frames (live Finnhub, sim-exchange, a replay, the synthetic market) to a recording.",
        discussion: """
            Every text frame is stored byte for byte with its receive time: CLOCK_REALTIME (ns) for a socket, the \
            recorded time for a replay (so recording a replay reproduces its frames). Frames reach the file at \
            least once a second; Ctrl-C/SIGTERM or --duration close it cleanly, valid up to the last frame. A .gz \
            output is gzip-compressed. Dropped connections are reconnected.

            Examples:
              replay record --url ws://127.0.0.1:9001/ --symbols AAPL,BINANCE:BTCUSDT --out session.jsonl --duration 60
              replay record --out live.jsonl.gz --rotate-seconds 3600        # live Finnhub, FINNHUB_API_KEY from .env
              replay record --recording session.jsonl --speed max --out copy.jsonl
            """)

    @OptionGroup var source: SourceFlags
    @Option(help: "Output recording (.jsonl or .jsonl.gz).") var out: String
    @Option(help: "Start a new part before a part exceeds N uncompressed bytes.") var rotateBytes: Int?
    @Option(help: "Start a new part every N seconds of receive time.") var rotateSeconds: Int?
    @Option(help: "Stop after this many seconds.") var duration: SecondsArgument?
    @Flag(help: "Replace an existing output file.") var overwrite = false
    @Flag(help: "Do not print the summary.") var quiet = false

    func validate() throws {
        if rotateBytes != nil && rotateSeconds != nil { throw ValidationError("--rotate-bytes and --rotate-seconds are exclusive") }
    }

    func run() async throws {
        var s = source
        if s.url == nil, s.recording.isEmpty, !s.synthetic { s.url = "ws://127.0.0.1:9001/" }
        let settings = Settings.load()
        let feed: any Feed
        do { feed = try s.makeFeed(settings, reconnect: Backoff(initial: .milliseconds(250), max: .seconds(5))) } catch {
            throw fail("\(error)")
        }
        var o = RecordOptions(output: out, symbols: s.symbolList(settings))
        if let rotateBytes { o.rotation = .bytes(rotateBytes) }
        if let rotateSeconds { o.rotation = .seconds(rotateSeconds) }
        o.duration = duration?.duration
        o.overwrite = overwrite
        let recorder: FeedRecorder
        do { recorder = try FeedRecorder(feed: feed, options: o) } catch { throw fail(error.description) }
        let quiet = quiet
        do {
            try await Lifecycle.run("record", logger: Logger(label: "record")) {
                let summary = try await cancelWhenGracefulShutdown { try await recorder.run() }
                if !quiet { writeStderr(summary.description + "\n") }
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail((error as? ReplayFailure)?.description ?? (error as? RecordingError)?.description ?? "\(error)")
        }
    }
}

// MARK: - index

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a recording's seek index (FILE.idx) so replays can seek anywhere in it at once.",
        discussion: """
            Every 1024th frame's line, byte offset, receive time and trade count so far, and where each gzip member \
            starts. A replay with keys or --control-port builds it in the background when it is missing; the index \
            is used only while the recording's size matches.

            Example:
              replay index recordings/btc.jsonl
            """)

    @Argument(help: "Recording (.jsonl or .jsonl.gz).") var file: String

    func run() throws {
        guard FileManager.default.fileExists(atPath: file) else { throw fail("\(file): no such file") }
        let started = ContinuousClock.now
        do {
            let index = try RecordingIndex.build(path: file)
            try index.write(for: file)
            let took = ContinuousClock.now - started
            print("Indexed \(formatCount(index.trades)) trades in \(formatCount(index.frames)) frames of \(file) in "
                  + String(format: "%.2f s", took.inSeconds) + " → \(RecordingIndex.sidecar(of: file)) (\(index.entries.count) entries, \(index.members.count) gzip members).")
        } catch {
            throw fail((error as? RecordingError)?.description ?? "\(error)")
        }
    }
}

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a recording's compact binary form (a tape), checked against the recording trade for trade.",
        discussion: """
            A tape holds the same frames, receive times and line numbers, each trade as a 32-byte record with the \
            exact price and volume. The tape is read back and compared with the recording before it is renamed into \
            place, so a tape that exists is verified. Everything that reads recordings reads tapes: `replay play` \
            (and seek), `sim-exchange --replay` and `backtest`, which reads the trade records directly. Format: \
            docs/RECORDING_FORMAT.md.

            Examples:
              replay pack recordings/btc.jsonl --out btc.mstape
              backtest btc.mstape --strategy breakout
            """)

    @Argument(help: "Recording (.jsonl or .jsonl.gz).") var file: String
    @Option(help: "Output tape (by convention .mstape).") var out: String
    @Flag(help: "Leave out (and count) frames that do not decode instead of failing.") var skipBad = false
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: file) else { throw fail("\(file): no such file") }
        let started = ContinuousClock.now
        do {
            let s = try BinaryTape.pack(recording: file, to: out, overwrite: overwrite, skipBad: skipBad)
            let took = ContinuousClock.now - started
            var line = "Packed \(formatCount(s.trades)) trades (\(s.symbols) symbols) in \(formatCount(s.frames)) frames of \(file) into \(out): "
                + "\(formatCount(s.inputBytes)) → \(formatCount(s.outputBytes)) bytes, verified \(formatCount(s.verifiedTrades)) trades, "
                + String(format: "%.2f s", took.inSeconds)
            if s.skippedLines > 0 { line += "; skipped \(formatCount(s.skippedLines)) bad lines" }
            print(line + ".")
        } catch {
            throw fail(error.description)
        }
    }
}

// MARK: - import

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert real history into a recording: tardis (trades CSV), binance (raw `<ns> <json>` capture), lean (tick zip).")

    enum Kind: String, ExpressibleByArgument, CaseIterable { case tardis, binance, lean }

    @Argument(help: "tardis, binance or lean.") var kind: Kind
    @Argument(help: "Source file.") var source: String
    @Option(help: "Output recording (.jsonl or .jsonl.gz).") var out: String
    @Flag(help: "Skip (and count) bad rows instead of failing.") var skipBad = false
    @Flag(help: "LEAN: keep trades flagged suspicious.") var includeSuspicious = false
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: source) else { throw fail("\(source): no such file") }
        let importer: any TradeImporter
        switch kind {
        case .tardis: importer = TardisTradesImporter(path: source, skipBad: skipBad)
        case .binance: importer = BinanceRawImporter(path: source, skipBad: skipBad)
        case .lean: importer = LeanTickImporter(path: source, includeSuspicious: includeSuspicious, skipBad: skipBad)
        }
        do {
            let stats = try importer.convert(to: out, createdBy: "replay-import 1", overwrite: overwrite)
            var line = "Imported \(formatCount(stats.tradesWritten)) trades in \(formatCount(stats.framesWritten)) frames from "
                + "\(formatCount(stats.rowsRead)) rows of \(source) into \(out)"
            if stats.rowsSkipped > 0 {
                line += "; skipped \(formatCount(stats.rowsSkipped)): "
                    + stats.skipped.sorted { $0.value > $1.value }.map { "\($0.key) \(formatCount($0.value))" }.joined(separator: ", ")
            }
            print(line + ".")
        } catch {
            throw fail((error as? RecordingError)?.description ?? "\(error)")
        }
    }
}
