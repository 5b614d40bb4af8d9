@testable import Feeds
@testable import Recording
import MarketData
import CLI
import MarketStreamTesting
import SimExchange
import Kafka
import Foundation
import Synchronization
import Testing

/// Trades a steered replay released, with the monotonic time of each release.
final class Releases: Sendable {
    let items = Mutex<[(at: ContinuousClock.Instant, trade: Trade)]>([])
    func add(_ trades: [Trade]) { let now = ContinuousClock.now; items.withLock { i in for t in trades { i.append((now, t)) } } }
    var count: Int { items.withLock { $0.count } }
    var all: [(at: ContinuousClock.Instant, trade: Trade)] { items.withLock { $0 } }
}

/// `count` one-trade frames `stepNs` apart; frame i's trade has timestamp `base + i` (its identity).
func steeringRecording(_ path: String, count: Int, stepNs: Int64, start: Int64 = 1_700_000_000_000_000_000) throws {
    let w = try RecordingWriter(path: path, header: RecordingHeader(source: "test", symbols: ["AAPL"], startNs: start, createdBy: "tests"))
    for i in 0..<count {
        try w.append(recvNs: start + Int64(i) * stepNs,
                     frame: FinnhubCodec.encodeTrades([Trade(symbol: "AAPL", price: 100 + Double(i) / 100, timestamp: 1_700_000_000_000 + Int64(i), volume: 1)]))
        if i % 50 == 7 { try w.append(recvNs: start + Int64(i) * stepNs, frame: #"{"type":"ping"}"#) }
    }
    try w.close()
}

func frameNumber(_ t: Trade) -> Int { Int(t.timestamp - 1_700_000_000_000) }

@Suite(.serialized) struct SteeringTests {
    let start: Int64 = 1_700_000_000_000_000_000

    func play(_ path: String, speed: Speed, control: ReplayControl) -> (Task<ReplaySummary, any Error>, Releases) {
        let releases = Releases()
        let feed = RecordingFeed(path: path, options: ReplayOptions(speed: speed), control: control)
        return (Task { try await feed.replay { releases.add($0) } }, releases)
    }

    @Test func pauseHoldsAndResumeKeepsTheSchedule() async throws {
        let path = tempDir("steer") + "/p.jsonl"
        try steeringRecording(path, count: 400, stepNs: 10_000_000)  // 4 s recorded, 100 frames/s at 1x
        let control = ReplayControl(speed: .factor(1))
        let (task, releases) = play(path, speed: .factor(1), control: control)
        try await Task.sleep(for: .milliseconds(500))
        control.pause()
        try await Task.sleep(for: .milliseconds(100))
        let held = releases.count
        #expect(held > 20 && held < 80, "\(held) trades in the first 0.5 s at 1x")
        try await Task.sleep(for: .milliseconds(600))
        #expect(releases.count == held, "trades released while paused: \(releases.count - held)")
        #expect(control.status.paused)
        let resumed = ContinuousClock.now
        control.resume()
        try await Task.sleep(for: .milliseconds(300))
        let after = releases.all.filter { $0.at > resumed }
        // On schedule from the new anchor: about 30 frames in 0.3 s, not a burst of the 0.7 s paused.
        #expect(after.count >= 20 && after.count <= 40, "\(after.count) trades in the 0.3 s after resume")
        if after.count > 10 { #expect(after[10].at - resumed >= .milliseconds(90), "the 11th trade after resume came at \(after[10].at - resumed)") }
        #expect(frameNumber(after.first!.trade) == frameNumber(releases.all[held - 1].trade) + 1, "resume goes on with the next frame")
        control.setSpeed(.max)
        let summary = try await task.value
        #expect(summary.trades == 400 && summary.seeks == 0 && summary.skippedTrades == 0 && summary.repeatedTrades == 0)
    }

    @Test func aSpeedChangeTakesEffectAtOnce() async throws {
        let path = tempDir("steer") + "/s.jsonl"
        try steeringRecording(path, count: 600, stepNs: 10_000_000)
        let control = ReplayControl(speed: .factor(1))
        let (task, releases) = play(path, speed: .factor(1), control: control)
        try await Task.sleep(for: .milliseconds(300))
        let changed = ContinuousClock.now
        control.setSpeed(.factor(10))
        try await Task.sleep(for: .milliseconds(200))
        let fast = releases.all.filter { $0.at > changed }.count
        // 10x: a frame every 1 ms, so about 200 in 0.2 s (1x would give 20).
        #expect(fast >= 120 && fast <= 230, "\(fast) trades in 0.2 s at 10x")
        control.slower()
        #expect(control.status.speed == .factor(5))
        control.faster(); control.faster()
        #expect(control.status.speed == .factor(50))
        let summary = try await task.value
        #expect(summary.trades == 600)
    }

    @Test(arguments: [false, true])
    func aSeekLandsOnTheRightTradeAndCountsWhatItSkipsAndRepeats(withIndex: Bool) async throws {
        let path = tempDir("steer") + "/k.jsonl"
        try steeringRecording(path, count: 2000, stepNs: 10_000_000)  // 20 s recorded
        if withIndex {
            let index = try RecordingIndex.build(path: path, stride: 64)
            try index.write(for: path)
            #expect(RecordingIndex.load(for: path) == index)
        }
        let control = ReplayControl(speed: .factor(10))
        let (task, releases) = play(path, speed: .factor(10), control: control)
        try await Task.sleep(for: .milliseconds(200))
        // Forward to frame 1200 (12 s into the recording).
        control.seek(.absolute(start + 1200 * 10_000_000))
        #expect(try await eventually(timeout: .seconds(5)) { releases.all.contains { frameNumber($0.trade) >= 1200 } })
        let beforeSeek = releases.all.prefix { frameNumber($0.trade) < 1200 }.count
        let firstAfter = releases.all[beforeSeek].trade
        #expect(frameNumber(firstAfter) == 1200, "the seek landed on frame \(frameNumber(firstAfter))")
        try await Task.sleep(for: .milliseconds(100))
        // Back 5 s of recording time from where it is: into the part the first seek passed over.
        let position = frameNumber(releases.all.last!.trade)
        let back = ContinuousClock.now
        control.seek(.relative(-5_000_000_000))
        #expect(try await eventually(timeout: .seconds(5)) { releases.all.contains { $0.at > back && frameNumber($0.trade) < position - 100 } })
        control.setSpeed(.max)
        let summary = try await task.value
        let sequence = releases.all.map { frameNumber($0.trade) }
        var seen = Set<Int>(), repeats = 0
        for n in sequence { if !seen.insert(n).inserted { repeats += 1 } }
        #expect(summary.seeks == 2)
        let neverReleased = Set(0..<2000).subtracting(seen)
        #expect(summary.skippedTrades == neverReleased.count && neverReleased.count > 100, "skipped \(summary.skippedTrades), never released \(neverReleased.count)")
        #expect(neverReleased.allSatisfy { $0 >= beforeSeek && $0 < 1200 }, "only what the first seek passed over stays unreleased")
        #expect(summary.repeatedTrades == repeats && repeats > 20, "repeated \(summary.repeatedTrades), counted \(repeats)")
        #expect(summary.trades == sequence.count)
        #expect(summary.description.contains("2 seeks: \(summary.skippedTrades) trades skipped, \(repeats) repeated"))
    }

    @Test func seekingOutsideTheRecordingClampsAndSaysSo() async throws {
        let path = tempDir("steer") + "/c.jsonl"
        try steeringRecording(path, count: 300, stepNs: 10_000_000)
        let control = ReplayControl(speed: .factor(1))
        let (task, releases) = play(path, speed: .factor(1), control: control)
        try await Task.sleep(for: .milliseconds(200))
        control.seek(.relative(-3_600_000_000_000))
        #expect(try await eventually(timeout: .seconds(5)) { control.status.notice?.contains("before the recording") == true })
        #expect(try await eventually(timeout: .seconds(5)) { releases.all.filter { frameNumber($0.trade) == 0 }.count == 2 })
        control.seek(.absolute(start + 3_600_000_000_000))
        #expect(try await eventually(timeout: .seconds(5)) { control.status.notice?.contains("after the recording") == true })
        let summary = try await task.value
        #expect(releases.all.last.map { frameNumber($0.trade) } == 299, "clamped to the last frame")
        #expect(summary.seeks == 2)
    }

    @Test func seekTargetsParse() throws {
        #expect(try ReplayControl.SeekTarget.parse("+10s") == .relative(10_000_000_000))
        #expect(try ReplayControl.SeekTarget.parse("-1m") == .relative(-60_000_000_000))
        #expect(try ReplayControl.SeekTarget.parse("+250ms") == .relative(250_000_000))
        #expect(try ReplayControl.SeekTarget.parse("1700000000123") == .absolute(1_700_000_000_123_000_000))
        #expect(try ReplayControl.SeekTarget.parse("2023-11-14T22:13:20Z") == .absolute(1_700_000_000_000_000_000))
        #expect(throws: ReplayFailure.self) { try ReplayControl.SeekTarget.parse("+ten") }
        #expect(throws: ReplayFailure.self) { try ReplayControl.SeekTarget.parse("soon") }
    }

    @Test func keysDecode() {
        func keys(_ bytes: [UInt8]) -> [TerminalKeys.Action] {
            var pending: [UInt8] = [], out: [TerminalKeys.Action] = []
            for b in bytes { pending.append(b); if let a = TerminalKeys.decode(&pending) { out.append(a) } }
            return out
        }
        #expect(keys(Array(" +-q".utf8)) == [.toggle, .faster, .slower, .quit])
        #expect(keys([0x1B, 0x5B, 0x43, 0x1B, 0x5B, 0x44, 0x1B, 0x5B, 0x41, 0x1B, 0x5B, 0x42]) == [.seek(seconds: 10), .seek(seconds: -10), .seek(seconds: 60), .seek(seconds: -60)])
        #expect(keys(Array("xyz".utf8) + [0x1B, 0x5B, 0x5A]) == [], "unknown keys are ignored")
    }

    /// The index finds the right line in plain and multi-member gzip recordings.
    @Test(arguments: ["i.jsonl", "i.jsonl.gz"])
    func indexRepositionsOnTheRightLine(name: String) throws {
        let path = tempDir("index") + "/" + name
        let w = try RecordingWriter(path: path, header: RecordingHeader(source: "test", symbols: ["AAPL"], startNs: start, createdBy: "tests"))
        for i in 0..<5000 {
            try w.append(recvNs: start + Int64(i) * 1_000_000, frame: FinnhubCodec.encodeTrades([Trade(symbol: "AAPL", price: 1, timestamp: Int64(i), volume: 1)]))
            if i % 700 == 0 { try w.flush() }
        }
        try w.close()
        let index = try RecordingIndex.build(path: path, stride: 100)
        #expect(index.frames == 5000 && index.trades == 5000 && index.entries.count == 50)
        if name.hasSuffix(".gz") { #expect(index.members.count > 5, "a member per flush: \(index.members.count)") }
        let reader = try RecordingReader(path: path)
        for target in [4321, 17, 2999, 0, 4999] {
            let e = index.entry(atOrBefore: start + Int64(target) * 1_000_000)!
            try reader.reposition(offset: e.offset, line: e.line, members: index.members)
            var f = try reader.next()
            while let frame = f, frame.recvNs < start + Int64(target) * 1_000_000 { f = try reader.next() }
            #expect(f?.line == target + 2, "frame \(target) is on line \(target + 2)")
            guard case .trades(let t)? = try f.map({ try FinnhubCodec.decode($0.frame) }) else { Issue.record("no trade frame"); continue }
            #expect(t[0].timestamp == Int64(target))
        }
    }
}

/// The `replay` executable steered from outside: over HTTP, and with keys on a pseudo-terminal.
@Suite(.serialized) struct SteeringCommandTests {
    func timestamps(in log: String) -> [Int] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.hasPrefix("{") }.compactMap { JSONValue.parse(String($0))?["timestamp"]?.int64 }.map { Int($0 - 1_700_000_000_000) }
    }

    func tradesSent(_ body: String) -> Int? { JSONValue.parse(body)?["trades_sent"]?.int64.map(Int.init) }

    @Test func theControlEndpointSteersTheReplayCommand() async throws {
        let dir = tempDir("http")
        let path = dir + "/h.jsonl"
        try steeringRecording(path, count: 1000, stepNs: 10_000_000)  // 10 s at 1x
        let port = try LocalBroker.freePort()
        let log = dir + "/replay.log"
        let process = try ChildProcess("replay", [path, "--speed", "1x", "--dry-run", "--control-port", "\(port)"], log: log)
        defer { process.kill9() }
        let base = "http://127.0.0.1:\(port)"
        #expect(try await eventually(timeout: .seconds(10)) { LocalBroker.isListening(port: port) })
        let first = await httpRequest("GET", base + "/status")
        #expect(first.status == 200 && first.body.contains(#""state":"playing""#), "\(first)")

        #expect(await httpRequest("POST", base + "/pause").status == 200)
        try await Task.sleep(for: .milliseconds(300))
        let held = tradesSent(await httpRequest("GET", base + "/status").body)
        try await Task.sleep(for: .milliseconds(700))
        let still = await httpRequest("GET", base + "/status")
        #expect(held != nil && tradesSent(still.body) == held, "paused at \(String(describing: held)), then \(still.body)")
        #expect(still.body.contains(#""state":"paused""#))

        let badSpeed = await httpRequest("POST", base + "/speed?to=bogus")
        #expect(badSpeed.status == 400 && badSpeed.body == "invalid speed \"bogus\": use e.g. 10x, 0.5x, max, faster or slower\n", "\(badSpeed)")
        let badSeek = await httpRequest("POST", base + "/seek?to=soon")
        #expect(badSeek.status == 400 && badSeek.body.hasPrefix("invalid time \"soon\"") && badSeek.body.split(separator: "\n").count == 1, "\(badSeek)")
        #expect(await httpRequest("POST", base + "/seek").status == 400)
        #expect(await httpRequest("GET", base + "/nothing").status == 404)

        // Seek to frame 500 (Unix ms), resume, then finish at max speed.
        #expect(await httpRequest("POST", base + "/seek?to=1700000005000").status == 200)
        #expect(await httpRequest("POST", base + "/resume").status == 200)
        try await Task.sleep(for: .milliseconds(300))
        let moving = await httpRequest("GET", base + "/status")
        #expect((tradesSent(moving.body) ?? 0) > held ?? 0, "\(moving.body)")
        #expect(await httpRequest("POST", base + "/speed?to=max").status == 200)
        let status = await process.waitForExit(timeout: .seconds(20))
        #expect(status == 0)
        let sent = timestamps(in: log)
        let n = held ?? 0
        #expect(sent.count >= n && Array(sent.prefix(n)) == Array(0..<n), "the first \(n) frames in order")
        #expect(sent.count > n && sent[n] == 500, "after the seek the next trade is frame 500, got \(sent.count > n ? sent[n] : -1)")
        #expect(Array(sent.dropFirst(n)) == Array(500..<1000))
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("1 seek: \(500 - n) trades skipped, 0 repeated"), "summary: \(text.split(separator: "\n").filter { $0.contains("Replayed") })")
    }

    /// Keys on a real pseudo-terminal (Python's pty module drives the executable like a user).
    @Test func keysOnATerminalPauseAndQuit() async throws {
        guard let replay = builtExecutable("replay") else { Issue.record("replay is not built"); return }
        let dir = tempDir("keys")
        let path = dir + "/k.jsonl"
        try steeringRecording(path, count: 3000, stepNs: 10_000_000)  // 30 s at 1x
        let script = dir + "/drive.py"
        try """
        import os, pty, sys, time, select
        pid, fd = pty.fork()
        if pid == 0:
            os.execv("/bin/sh", ["sh", "-c", 'exec "$0" "$1" --speed 1x --dry-run > "$2"', sys.argv[1], sys.argv[2], sys.argv[3]])
        out = b""
        def pump(seconds):
            global out
            end = time.time() + seconds
            while time.time() < end:
                r, _, _ = select.select([fd], [], [], 0.05)
                if r:
                    try: out += os.read(fd, 65536)
                    except OSError: return
        pump(1.0); os.write(fd, b" "); pump(1.0)
        out += b"\\n<<paused>>\\n"
        os.write(fd, b"+"); pump(0.6)
        out += b"\\n<<faster>>\\n"
        os.write(fd, b"q"); pump(2.0)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(out.decode("utf-8", "replace"))
        sys.stdout.write("\\n<<exit %d>>\\n" % os.waitstatus_to_exitcode(status))
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, replay, path, dir + "/out.jsonl"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.components(separatedBy: "<<paused>>")
        #expect(parts.count == 2, "\(text)")
        guard parts.count == 2 else { return }
        let afterPause = parts[1].components(separatedBy: "<<faster>>")
        #expect(parts[0].contains("PAUSED 1x"), "the progress line shows the pause: \(parts[0].suffix(300))")
        #expect(afterPause.count == 2 && afterPause[0].contains("PAUSED 2x"), "still paused, at the next speed: \(afterPause[0].suffix(300))")
        #expect(text.contains("<<exit 0>>"), "q quits cleanly: \(text.suffix(400))")
        #expect(text.contains("Interrupted after replaying"), "the summary is printed: \(text.suffix(400))")
        let released = ((try? String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        #expect(released > 50 && released < 200, "about 1 s of trades at 1x before the pause, none while paused: \(released)")
    }
}

extension SteeringTests {
    /// `sim-exchange --replay` takes the same controls: every connection's recorded trades pause, resume
    /// and jump with one ReplayControl.
    @Test func simExchangeReplayFollowsTheControl() async throws {
        let path = tempDir("sim-steer") + "/s.jsonl"
        try steeringRecording(path, count: 3000, stepNs: 10_000_000)  // 30 s at 1x
        let tape = try RecordedTradeSource.Tape(path: path)
        let control = ReplayControl(speed: .factor(1), file: path)
        var config = SimExchangeConfig()
        config.port = 0
        config.frameIntervalMilliseconds = 50
        config.tradeSource = { _, startMs in RecordedTradeSource(tape: tape, speed: 1, startMilliseconds: startMs, control: control) }
        let server = SimExchangeServer(config: config)
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let got = Releases()
        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)/?token=t", symbols: ["AAPL"], reconnect: Backoff(maxAttempts: 1))
        let running = Task { try await feed.forEachTrades { got.add($0) } }
        defer { running.cancel() }
        #expect(try await eventually(timeout: .seconds(5)) { got.count > 20 })
        control.pause()
        try await Task.sleep(for: .milliseconds(300))
        let held = got.count
        try await Task.sleep(for: .milliseconds(700))
        #expect(got.count == held, "trades while paused: \(got.count - held)")
        control.seek(.absolute(start + 2000 * 10_000_000))
        control.resume()
        #expect(try await eventually(timeout: .seconds(5)) { got.count > held + 10 })
        let after = got.all.dropFirst(held).map { frameNumber($0.trade) }
        #expect(after.first == 2000, "after the seek the server sends frame \(after.first ?? -1)")
        #expect(after == Array(2000..<(2000 + after.count)), "in order from there")
        #expect(control.status.seeks == 1)
    }
}
