@testable import Feeds
@testable import Recording
import MarketData
import Pipeline
import Kafka
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

let sampleFrames = [
    #"{"type":"trade","data":[{"s":"BINANCE:BTCUSDT","p":7296.89,"t":1575526691134,"v":0.011467,"c":null}]}"#,
    #"{"type":"ping"}"#,
    "{ \"type\" :\t\"error\",  \"msg\": \"Ünïcödé 📈 \\u00e9 \\\"quoted\\\"\" }",
    #"{"type":"news","data":[]}"#,
    "  [1, 2.5e-3 ,{\"a\":[true,false,null]}]\t",
    #"{"type":"trade","data":[{"s":"AAPL","p":1e2,"t":1,"v":0,"c":["1","12"]}]}"#,
]

@Suite struct RecordingTests {
    func roundTrip(_ name: String) throws {
        let path = tempDir() + "/" + name
        let w = try RecordingWriter(path: path, header: testHeader)
        for (i, f) in sampleFrames.enumerated() { try w.append(recvNs: testHeader.startNs + Int64(i) * 1000, frame: f) }
        try w.close()
        let r = try RecordingReader(path: path)
        #expect(r.header == testHeader)
        let frames = try r.readAll()
        #expect(frames.map(\.frame) == sampleFrames)
        #expect(frames.map { Array($0.frame.utf8) } == sampleFrames.map { Array($0.utf8) })
        #expect(frames.map(\.line) == Array(2...(sampleFrames.count + 1)))
        #expect(frames.map(\.recvNs) == sampleFrames.indices.map { testHeader.startNs + Int64($0) * 1000 })
    }

    @Test func roundTripPlain() throws { try roundTrip("a.jsonl") }
    @Test func roundTripGzip() throws {
        try roundTrip("a.jsonl.gz")
    }

    @Test func gzipIsRealGzipAndFlushKeepsFileValid() throws {
        let path = tempDir() + "/f.jsonl.gz"
        let w = try RecordingWriter(path: path, header: testHeader)
        try w.append(recvNs: 1, frame: sampleFrames[0])
        try w.flush()
        #expect(try RecordingReader(path: path).readAll().count == 1)
        try w.append(recvNs: 2, frame: sampleFrames[1])
        try w.flush()
        try w.append(recvNs: 3, frame: sampleFrames[2])
        try w.close()
        #expect(try RecordingReader(path: path).readAll().map(\.frame) == Array(sampleFrames.prefix(3)))
        let text = String(decoding: try run(["gzip", "-dc", path]), as: UTF8.self)
        #expect(text.split(separator: "\n").count == 4)
        #expect(text.hasPrefix(#"{"format":"finnhub-recording","version":1,"#))
    }

    @Test(arguments: ["r.jsonl", "r.jsonl.gz"])
    func rotationBySize(_ name: String) throws {
        let dir = tempDir(), path = dir + "/" + name
        let w = try RecordingWriter(path: path, header: testHeader, rotation: .bytes(20_000))
        var all: [String] = []
        for i in 0..<2000 {
            let f = #"{"type":"trade","data":[{"s":"X","p":\#(i),"t":\#(i),"v":1,"c":null}]}"#
            all.append(f)
            try w.append(recvNs: Int64(i) * 1_000_000, frame: f)
        }
        try w.close()
        #expect(w.files.count > 5)
        #expect(w.files[1] == RecordingWriter.partPath(path, 1))
        #expect(w.files[1].hasSuffix(name.hasSuffix(".gz") ? "r-0001.jsonl.gz" : "r-0001.jsonl"))
        var read: [String] = []
        for f in w.files {
            let r = try RecordingReader(path: f)
            #expect(r.header.source == testHeader.source)
            read += try r.readAll().map(\.frame)
            if !name.hasSuffix(".gz") {
                let size = try FileManager.default.attributesOfItem(atPath: f)[.size] as! Int
                #expect(size <= 20_000)
            }
        }
        #expect(read == all)
    }

    @Test func rotationBySeconds() throws {
        let path = tempDir() + "/s.jsonl"
        let w = try RecordingWriter(path: path, header: testHeader, rotation: .seconds(10))
        for i in 0..<35 { try w.append(recvNs: Int64(i) * 1_000_000_000, frame: #"{"type":"ping"}"#) }
        try w.close()
        #expect(w.files.count == 4)
        #expect(try RecordingReader(path: w.files[2]).header.startNs == 20_000_000_000)
        #expect(try w.files.map { try RecordingReader(path: $0).readAll().count } == [10, 10, 10, 5])
    }

    @Test func writerRejectsBadFrames() throws {
        let dir = tempDir()
        let w = try RecordingWriter(path: dir + "/w.jsonl", header: testHeader)
        #expect(throws: RecordingError.self) { try w.append(recvNs: 5, frame: "{\"a\":\n1}") }
        #expect(throws: RecordingError.self) { try w.append(recvNs: 5, frame: "{\"a\":1") }
        #expect(throws: RecordingError.self) { try w.append(recvNs: 5, frame: "") }
        try w.append(recvNs: 5, frame: "{}")
        #expect(throws: RecordingError.self) { try w.append(recvNs: 4, frame: "{}") }
        try w.close()
        #expect(throws: RecordingError.self) { try RecordingWriter(path: dir + "/w.jsonl", header: testHeader) }
        #expect(try RecordingReader(path: dir + "/w.jsonl").readAll().count == 1)
    }

    func readError(_ name: String, _ body: String, skipBad: Bool = false) -> RecordingError? {
        let path = tempDir() + "/" + name
        writeText(path, body)
        do { _ = try RecordingReader(path: path, skipBad: skipBad).readAll(); return nil } catch { return error }
    }

    @Test func errorsNameFileAndLine() {
        let ok = #"{"recv_ns":10,"frame":{"type":"ping"}}"#
        let cases: [(String, String)] = [
            (headerLine + "\n" + ok + "\n" + #"{"recv_ns":"12","frame":{}}"# + "\n", #"btc.jsonl:3: recv_ns is not an integer"#),
            (headerLine + "\n" + #"{"recv_ns":1.5,"frame":{}}"# + "\n", #"btc.jsonl:2: recv_ns is not an integer"#),
            (headerLine + "\nhello\n", "btc.jsonl:2: line is not a JSON object"),
            (headerLine + "\n" + ok + "\n" + #"{"recv_ns":9,"frame":{}}"# + "\n", "btc.jsonl:3: recv_ns 9 is earlier than the previous frame's 10"),
            (headerLine + "\n" + #"{"recv_ns":12,"frame":{"type":"ping"}"# + "\n", "btc.jsonl:2: frame is not valid JSON"),
            (headerLine + "\n" + #"{"frame":{},"recv_ns":1}"# + "\n", "btc.jsonl:2: recv_ns is missing (it must come before frame)"),
            (headerLine + "\n" + #"{"recv_ns":1}"# + "\n", "btc.jsonl:2: frame is missing (it must be the last key)"),
            (ok + "\n", #"btc.jsonl:1: missing header: line 1 is not a recording header ({"format":"finnhub-recording",...})"#),
            ("", "btc.jsonl:1: missing header: the file is empty"),
            (headerLine.replacingOccurrences(of: #""version":1"#, with: #""version":7"#) + "\n", "btc.jsonl:1: unsupported recording version 7, this build reads version 1"),
            (headerLine.replacingOccurrences(of: "finnhub-recording", with: "other") + "\n", #"btc.jsonl:1: unknown format "other", this build reads finnhub-recording"#),
        ]
        for (body, expected) in cases {
            #expect(readError("btc.jsonl", body)?.description == expected)
        }
    }

    @Test func invalidUTF8IsReportedWithItsLineAndValidNonASCIIIsKept() throws {
        let path = tempDir() + "/u.jsonl"
        var bytes = Array((headerLine + "\n" + #"{"recv_ns":1,"frame":{"type":"trade","data":[{"s":"Zürich:ÄBB","p":1,"t":1,"v":1}]}}"# + "\n").utf8)
        bytes += Array(#"{"recv_ns":2,"frame":{"type":"trade","data":[{"s":"AB"#.utf8) + [0xC3, 0x28] + Array(#"","p":1,"t":1,"v":1}]}}"#.utf8) + [0x0A]
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try RecordingReader(path: path)
        #expect(try r.next()?.frame.contains("Zürich:ÄBB") == true)
        let e = #expect(throws: RecordingError.self) { _ = try r.next() }
        #expect(e?.description == "u.jsonl:3: frame is not valid UTF-8")
    }

    @Test func lenientButExact() throws {
        let path = tempDir() + "/l.jsonl"
        writeText(path, headerLine + "\r\n" + #"{ "recv_ns" : 7 , "future_key": [1,{"x":2}], "frame":{"type":"ping"} }"# + "\r\n\n"
                  + #"{"recv_ns":8,"frame":  {"a" : 1}  }"# + "\n" + #"{"recv_ns":9,"frame":{}}"#)
        let frames = try RecordingReader(path: path).readAll()
        #expect(frames.map(\.frame) == [#"{"type":"ping"} "#, #"  {"a" : 1}  "#, "{}"])
        #expect(frames.map(\.line) == [2, 4, 5])
    }

    @Test func skipBadCounts() throws {
        let ok = { (n: Int) in #"{"recv_ns":\#(n),"frame":{"type":"ping"}}"# }
        let path = tempDir() + "/s.jsonl"
        writeText(path, [headerLine, ok(1), "garbage", ok(5), ok(3), #"{"recv_ns":x,"frame":{}}"#, ok(6), #"{"recv_ns":7,"frame":{"#].joined(separator: "\n"))
        let r = try RecordingReader(path: path, skipBad: true)
        #expect(try r.readAll().map(\.recvNs) == [1, 5, 6])
        #expect(r.skippedLines == 4)
        #expect(r.problems.map(\.line) == [3, 5, 6, 8])
    }

    /// A line whose frame does not decode is skipped without moving the clock: the valid lines after
    /// a far-future bad one are replayed, not skipped as "earlier".
    @Test func aSkippedFarFutureFrameDoesNotMoveTheClock() throws {
        let trade = { (ns: Int, t: Int) in #"{"recv_ns":\#(ns),"frame":{"type":"trade","data":[{"s":"AAPL","p":1.5,"t":\#(t),"v":1}]}}"# }
        let path = tempDir() + "/future.jsonl"
        writeText(path, [headerLine, trade(1, 10), #"{"recv_ns":9999999999999999,"frame":{"type":"trade","data":"broken"}}"#,
                         trade(2, 20), trade(3, 30)].joined(separator: "\n") + "\n")
        let tape = try RecordedTradeSource.Tape(path: path, skipBad: true)
        #expect(tape.frames.map { $0.map(\.timestamp) } == [[10], [20], [30]])
        #expect(tape.skippedLines == 1)
    }

    func bigGzip() throws -> (String, Int) {
        let path = tempDir() + "/t.jsonl.gz"
        let w = try RecordingWriter(path: path, header: testHeader)
        var s: UInt64 = 0x9E3779B97F4A7C15
        for i in 0..<20_000 {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            try w.append(recvNs: Int64(i), frame: #"{"type":"trade","data":[{"s":"X","p":\#(s >> 20),"t":\#(s >> 30),"v":1,"c":null}]}"#)
        }
        try w.close()
        return (path, 20_000)
    }

    @Test func truncatedGzipReported() throws {
        let (path, _) = try bigGzip()
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let h = FileHandle(forWritingAtPath: path)!
        try h.truncate(atOffset: UInt64(size / 2)); try h.close()
        var lastGood = 0
        do {
            let r = try RecordingReader(path: path)
            while let f = try r.next() { lastGood = f.line }
            Issue.record("no error")
        } catch {
            #expect(error.kind == .truncatedGzip)
            #expect(error.description == "t.jsonl.gz: unexpected end of gzip data after line \(lastGood)")
            #expect(lastGood > 1000)
        }
        let r = try RecordingReader(path: path, skipBad: true)
        #expect(try r.readAll().count == lastGood - 1)
        #expect(r.problems.first?.kind == .truncatedGzip)
    }

    @Test func killedPlainWriterLeavesValidPrefix() throws {
        let path = tempDir() + "/k.jsonl"
        let w = try RecordingWriter(path: path, header: testHeader)
        for i in 0..<100 { try w.append(recvNs: Int64(i), frame: sampleFrames[i % sampleFrames.count]) }
        try w.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: path))
        #expect(throws: RecordingError.self) { try RecordingReader(path: path).readAll() }
        let r = try RecordingReader(path: path, skipBad: true)
        #expect(try r.readAll().count == 99)
        #expect(r.skippedLines == 1)
    }
}

@Suite struct SpeedTests {
    @Test func parse() throws {
        #expect(try Speed.parse("10x") == .factor(10))
        #expect(try Speed.parse("0.5x") == .factor(0.5))
        #expect(try Speed.parse("1") == .factor(1))
        #expect(try Speed.parse("max") == .max)
        #expect(try Speed.parse(" 2X ") == .factor(2))
        for bad in ["fast", "", "x", "0x", "-1x", "1e999x", "nanx", "10xx"] {
            #expect(throws: Speed.ParseError.self) { try Speed.parse(bad) }
        }
        do { _ = try Speed.parse("fast") } catch {
            #expect(error.description == #"invalid speed "fast": use a number followed by x, like 10x, 0.5x, or max"#)
        }
    }
}
