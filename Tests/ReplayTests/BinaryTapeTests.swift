@testable import Feeds
@testable import Recording
import MarketData
import MarketStreamTesting
import Foundation
import Testing

/// `replay pack`: the binary tape holds the recording's frames exactly, every reader of recordings
/// reads it, and bad tapes and bad recordings fail with the file and the reason.
@Suite struct BinaryTapeTests {
    /// Every frame of a recording as (line, recv_ns, decoded frame), through `RecordingReader`.
    func frames(_ path: String) throws -> [(Int, Int64, FinnhubFrame)] {
        let r = try RecordingReader(path: path, validateFrames: false)
        var out: [(Int, Int64, FinnhubFrame)] = []
        while let f = try r.nextRaw() { out.append((f.line, f.recvNs, try FinnhubCodec.decode(UnsafeRawBufferPointer(f.bytes)))) }
        return out
    }

    func expectSameFrames(_ a: [(Int, Int64, FinnhubFrame)], _ b: [(Int, Int64, FinnhubFrame)], _ what: String) {
        #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) frames")
        for (x, y) in zip(a, b) where x.0 != y.0 || x.1 != y.1 || x.2 != y.2 {
            Issue.record("\(what): line \(x.0) differs: \(x) vs \(y)"); return
        }
    }

    @Test(arguments: ["btc.jsonl", "aapl.jsonl"])
    func packedRecordingReadsBackFrameForFrame(name: String) throws {
        let source = packageRoot() + "/recordings/" + name, dir = tempDir("tape")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tape = dir + "/" + name + ".mstape"
        let s = try BinaryTape.pack(recording: source, to: tape)
        let original = try frames(source)
        let trades = original.reduce(0) { n, f in if case .trades(let t) = f.2 { return n + t.count }; return n }
        #expect(s.trades == trades && s.verifiedTrades == trades && s.frames == original.count && s.textFrames == 17)
        #expect(s.outputBytes < s.inputBytes / 2, "\(s.outputBytes) bytes for \(s.inputBytes)")
        // Prices, volumes and condition lists come back exactly (aapl.jsonl has conditions, btc.jsonl nulls).
        expectSameFrames(try frames(tape), original, name)
        let t = try BinaryTape(path: tape)
        #expect(t.header == (try RecordingReader(path: source)).header && t.tradeCount == trades)
        #expect(RecordingReader.lastRecvNs(path: tape) == RecordingReader.lastRecvNs(path: source))
        var direct: [Trade] = []
        try t.forEachRecordRun(runSize: 100) { direct += $0.map(t.trade) }
        #expect(direct == original.flatMap { f -> [Trade] in if case .trades(let x) = f.2 { return x }; return [] })
        // The packed file refuses to be replaced, and a second pack with --overwrite gives the same bytes.
        #expect(throws: RecordingError.self) { try BinaryTape.pack(recording: source, to: tape) }
        let first = try Data(contentsOf: URL(fileURLWithPath: tape))
        _ = try BinaryTape.pack(recording: source, to: tape, overwrite: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: tape)) == first)
    }

    /// The replay of a tape delivers the recording's trades; an index built over the tape seeks in it.
    @Test func replayAndSeekReadTapes() async throws {
        let source = packageRoot() + "/recordings/btc.jsonl", dir = tempDir("tape-replay")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tape = dir + "/btc.mstape"
        _ = try BinaryTape.pack(recording: source, to: tape)
        func replayed(_ path: String) async throws -> [Trade] {
            var out: [Trade] = []
            _ = try await RecordingFeed(path: path, options: ReplayOptions(speed: .max)).replay { out += $0 }
            return out
        }
        let fromTape = try await replayed(tape)
        #expect(fromTape == (try await replayed(source)) && fromTape.count > 1000)
        let all = try frames(source)
        // The replay reads trade frames as trades, without text; the text frames as text.
        let decoded = try RecordingReader(path: tape, validateFrames: false)
        decoded.tapeTradesDecoded = true
        var read: [(Int, Int64, FinnhubFrame)] = []
        while let f = try decoded.nextRaw(checkUTF8: false) {
            if let t = f.trades {
                #expect(f.bytes.isEmpty)
                read.append((f.line, f.recvNs, .trades(t)))
            } else {
                read.append((f.line, f.recvNs, try FinnhubCodec.decode(UnsafeRawBufferPointer(f.bytes))))
            }
        }
        #expect(read.contains { if case .trades = $0.2 { false } else { true } })
        expectSameFrames(read, all, "tape read with tapeTradesDecoded")
        // A replay that also hands out each frame's text (what a recorder keeps) gives the trades' JSON.
        var texts: [Trade] = [], delivered: [Trade] = []
        try await RecordingFeed(path: tape, options: ReplayOptions(speed: .max)).run(frames: true) { event in
            switch event {
            case .frame(let f): if case .trades(let t) = try FinnhubCodec.decode(f.text) { texts += t }
            case .trades(let t): delivered += t
            default: break
            }
        }
        #expect(texts == fromTape && delivered == fromTape)
        let index = try RecordingIndex.build(path: tape, stride: 50)
        let reader = try RecordingReader(path: tape)
        for target in [all.count - 1, 7, all.count / 2, 0] {
            let e = try #require(index.entry(atOrBefore: all[target].1))
            try reader.reposition(offset: e.offset, line: e.line)
            var f = try reader.nextRaw()
            while let frame = f, frame.recvNs < all[target].1 { f = try reader.nextRaw() }
            #expect(f?.line == all[target].0, "seek to frame \(target)")
        }
    }

    @Test func badTapesAndBadRecordingsFailClearly() async throws {
        let dir = tempDir("tape-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = packageRoot() + "/recordings/aapl.jsonl", tape = dir + "/a.mstape"
        _ = try BinaryTape.pack(recording: source, to: tape)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tape))
        // Truncated (an interrupted copy): no trailer.
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: dir + "/cut.mstape"))
        #expect(throws: RecordingError(.corruptData, path: dir + "/cut.mstape", "not a valid tape: no trailer (the file is truncated, or its pack was interrupted)")) {
            try RecordingReader(path: dir + "/cut.mstape")
        }
        // A symbol index outside the table: the frame's line is named.
        var broken = bytes
        let t = try BinaryTape(path: tape)
        let first = try #require(try t.frame(at: t.framesStart).map { $0.text == nil ? $0 : try t.frame(at: $0.next)! })
        broken.replaceSubrange((first.offset + 16)..<(first.offset + 20), with: [0xFF, 0xFF, 0, 0])
        try broken.write(to: URL(fileURLWithPath: dir + "/sym.mstape"))
        let r = try RecordingReader(path: dir + "/sym.mstape")
        do {
            while try r.nextRaw() != nil {}
            Issue.record("a bad symbol index was read")
        } catch {
            #expect(error.kind == .corruptData && error.line == first.line && error.message.contains("symbol 65535 of 1"), "\(error)")
        }
        // The same through the replay's read, which takes trade frames as trades: the same error, and no trade delivered.
        let decoded = try RecordingReader(path: dir + "/sym.mstape")
        decoded.tapeTradesDecoded = true
        do {
            while try decoded.nextRaw() != nil {}
            Issue.record("a bad symbol index was read as trades")
        } catch {
            #expect(error.kind == .corruptData && error.line == first.line && error.message.contains("symbol 65535 of 1"), "\(error)")
        }
        var delivered = 0
        do {
            _ = try await RecordingFeed(path: dir + "/sym.mstape", options: ReplayOptions(speed: .max)).replay { delivered += $0.count }
            Issue.record("a replay of a bad tape ended normally")
        } catch {
            #expect("\(error)".contains("sym.mstape:\(first.line): ") && "\(error)".contains("symbol 65535 of 1"), "\(error)")
        }
        #expect(delivered == 0)
        // A recording with a frame that does not decode: pack names the line and leaves no file; --skip-bad counts it.
        let bad = dir + "/bad.jsonl"
        writeText(bad, headerLine + "\n" + #"{"recv_ns":1700000000000000000,"frame":{"type":"trade","data":[{"s":"AAPL","p":1,"t":1,"v":1,"c":null}]}}"# + "\n"
                  + #"{"recv_ns":1700000000000000001,"frame":{"type":"trade","data":[{"s":"AAPL","p":"x","t":2,"v":1}]}}"# + "\n")
        do {
            _ = try BinaryTape.pack(recording: bad, to: dir + "/bad.mstape")
            Issue.record("a frame that does not decode was packed")
        } catch {
            #expect(error.line == 3 && error.message.hasPrefix("frame does not decode"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad.mstape"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }.isEmpty)
        let skipped = try BinaryTape.pack(recording: bad, to: dir + "/bad.mstape", skipBad: true)
        #expect(skipped.trades == 1 && skipped.skippedLines == 1 && skipped.verifiedTrades == 1)
    }

    /// Real history: the Tardis BTCUSDT session, imported and packed, verified and replayed trade for trade.
    @Test(.enabled(if: realDataDir() != nil, "needs ../shared/data/real (or MARKET_DATA_REAL_DIR)"))
    func realSessionPacksExactly() async throws {
        let real = try #require(realDataDir()), dir = tempDir("tape-real")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let jsonl = dir + "/btc.jsonl", tape = dir + "/btc.mstape"
        _ = try TardisTradesImporter(path: real + "/tardis_binance-futures_BTCUSDT_trades_2020-02-22.csv").convert(to: jsonl, createdBy: "tests")
        let s = try BinaryTape.pack(recording: jsonl, to: tape)
        #expect(s.trades == 9_999 && s.verifiedTrades == s.trades, "one trade per CSV row after the header")
        #expect(try BinaryTape.verify(tape: tape, against: jsonl) == s.trades)
        expectSameFrames(try frames(tape), try frames(jsonl), "tardis")
    }
}

/// The `replay pack` command, run as users run it.
@Suite struct PackCommandTests {
    @Test func packCommandWritesAVerifiedTapeAndRefusesToOverwrite() throws {
        let replay = try #require(builtExecutable("replay")), dir = tempDir("pack-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = packageRoot() + "/recordings/btc.jsonl", tape = dir + "/btc.mstape"
        func pack(_ extra: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: replay)
            p.arguments = ["pack", source, "--out", tape] + extra
            let out = Pipe()
            p.standardOutput = out; p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let (ok, text) = try pack([])
        #expect(ok == 0 && text.contains("verified") && text.contains("into \(tape)"), "\(text)")
        #expect(try BinaryTape.verify(tape: tape, against: source) > 1000)
        let (again, refusal) = try pack([])
        #expect(again != 0 && refusal.contains("already exists"), "\(refusal)")
    }
}
