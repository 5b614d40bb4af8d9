import MarketData
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Line 1 of a recording (see RECORDING_FORMAT.md).
public struct RecordingHeader: Sendable, Equatable {
    public static let format = "finnhub-recording"
    public static let supportedVersion = 1
    public var version: Int
    /// Where the frames came from, e.g. `wss://ws.finnhub.io` or `tardis:<file>`.
    public var source: String
    public var symbols: [String]
    /// When recording started, ns since the Unix epoch.
    public var startNs: Int64
    public var createdBy: String

    public init(source: String, symbols: [String], startNs: Int64, createdBy: String) {
        version = Self.supportedVersion; self.source = source; self.symbols = symbols
        self.startNs = startNs; self.createdBy = createdBy
    }

    /// The header as written: one JSON object with keys in a fixed order, no newline.
    public var jsonLine: String {
        #"{"format":"\#(Self.format)","version":\#(version),"source":\#(JSONOutput.quoted(source)),"symbols":["#
            + symbols.map(JSONOutput.quoted).joined(separator: ",")
            + #"],"start_ns":\#(startNs),"created_by":\#(JSONOutput.quoted(createdBy))}"#
    }

    static func parse(_ line: UnsafeBufferPointer<UInt8>, path: String) throws(RecordingError) -> RecordingHeader {
        let notHeader = RecordingError(.missingHeader, path: path, line: 1,
                                       #"missing header: line 1 is not a recording header ({"format":"finnhub-recording",...})"#)
        guard let obj = JSONValue.parse(UnsafeRawBufferPointer(line)), let format = obj["format"]?.string else { throw notHeader }
        guard format == Self.format else {
            throw RecordingError(.unsupportedFormat, path: path, line: 1, "unknown format \"\(format)\", this build reads \(Self.format)")
        }
        guard let vn = obj["version"]?.int64 else {
            throw RecordingError(.unsupportedVersion, path: path, line: 1, "header version is not an integer")
        }
        guard vn == Int64(Self.supportedVersion) else {
            throw RecordingError(.unsupportedVersion, path: path, line: 1,
                                 "unsupported recording version \(vn), this build reads version \(Self.supportedVersion)")
        }
        guard let start = obj["start_ns"]?.int64 else {
            throw RecordingError(.missingHeader, path: path, line: 1, "header start_ns is missing or not an integer")
        }
        return RecordingHeader(source: obj["source"]?.string ?? "", symbols: obj["symbols"]?.array?.compactMap(\.string) ?? [],
                               startNs: start, createdBy: obj["created_by"]?.string ?? "")
    }
}


/// One received WebSocket text frame. `frame` is the exact text as recorded.
public struct RecordedFrame: Sendable, Hashable {
    /// 1-based line number in its file (line 1 is the header).
    public var line: Int
    /// Receive time, ns since the Unix epoch.
    public var recvNs: Int64
    public var frame: String
}

// MARK: - Writer

/// Appends frames to a recording. Lines are buffered and written whole; after `flush()` or `close()`
/// every appended frame is in the file and the file is valid (a `.gz` file then ends with a complete
/// gzip member). Not thread-safe.
public final class RecordingWriter {
    public enum Rotation: Sendable, Equatable {
        case none
        /// Start a new file before a line would take the current one past this many uncompressed bytes.
        case bytes(Int)
        /// Start a new file at the first frame whose recv_ns is this many seconds after the file's first frame.
        case seconds(Int)
    }

    public let header: RecordingHeader
    public let rotation: Rotation
    public let compressed: Bool
    /// Every file written so far, in order; the first is the path given to `init`.
    public private(set) var files: [String] = []
    public private(set) var framesWritten = 0
    public private(set) var lastRecvNs: Int64 = .min

    private let basePath: String
    private let overwrite: Bool
    private var sink: FileSink?
    private var pending: [UInt8] = []
    private var fileBytes = 0, fileFrames = 0
    private var fileFirstNs: Int64 = 0
    private var failed: RecordingError?
    private static let bufferLimit = 1 << 18

    /// Creates `path` (gzip-compressed if it ends in `.gz`) and writes the header.
    /// Refuses to replace an existing file unless `overwrite` is true.
    public init(path: String, header: RecordingHeader, rotation: Rotation = .none, overwrite: Bool = false) throws(RecordingError) {
        self.header = header; self.rotation = rotation; self.overwrite = overwrite
        basePath = path; compressed = path.hasSuffix(".gz")
        pending.reserveCapacity(Self.bufferLimit + 4096)
        try openFile(path: path, header: header)
    }

    deinit { try? close() }

    /// The name of rotated part `n`: `dir/name.jsonl.gz` → `dir/name-0001.jsonl.gz`.
    public static func partPath(_ path: String, _ n: Int) -> String {
        guard n > 0 else { return path }
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[slash...]
        var ext = ""
        var stem = Substring(name)
        for suffix in [".gz", ".jsonl"] where stem.hasSuffix(suffix) { stem = stem.dropLast(suffix.count); ext = suffix + ext }
        if ext.isEmpty, let dot = stem.lastIndex(of: "."), dot != stem.startIndex { ext = String(stem[dot...]); stem = stem[..<dot] }
        return String(path[..<slash]) + stem + "-" + String(format: "%04d", n) + ext
    }

    private func openFile(path: String, header: RecordingHeader) throws(RecordingError) {
        let s = try FileSink(path: path, gzip: compressed, overwrite: overwrite)
        sink = s; files.append(path)
        fileBytes = 0; fileFrames = 0
        var h = Array(header.jsonLine.utf8); h.append(0x0A)
        pending.append(contentsOf: h); fileBytes += h.count
        try drain(finish: true)
    }

    /// Appends one frame. Throws for a frame that is not a single line of valid JSON, for a recv_ns
    /// earlier than the previous frame's, or on an I/O error (after which the writer is unusable).
    public func append(recvNs: Int64, frame: String) throws(RecordingError) {
        if let failed { throw failed }
        guard sink != nil else { throw RecordingError(.writerClosed, path: files.last ?? basePath, "append after close") }
        let path = files.last ?? basePath
        guard recvNs >= lastRecvNs else {
            throw RecordingError(.nonMonotonic, path: path, "recv_ns \(recvNs) is earlier than the previous frame's \(lastRecvNs)")
        }
        var f = frame
        let ok = f.withUTF8 { u -> Bool in
            guard let base = u.baseAddress, memchr(base, 0x0A, u.count) == nil else { return false }
            return JSONScanner.isValidDocument(base, u.count)
        }
        guard ok else {
            let why = frame.utf8.contains(0x0A) ? "contains a newline" : "is not valid JSON"
            throw RecordingError(.invalidFrame, path: path, "frame \(why): \(frame.prefix(80))")
        }
        let digits = String(recvNs)
        let lineLen = 24 + digits.utf8.count + f.utf8.count
        if fileFrames > 0 {
            switch rotation {
            case .none: break
            case .bytes(let limit): if fileBytes + lineLen > limit { try rotate(recvNs) }
            case .seconds(let s): if recvNs - fileFirstNs >= Int64(s) * 1_000_000_000 { try rotate(recvNs) }
            }
        }
        if fileFrames == 0 { fileFirstNs = recvNs }
        pending.append(contentsOf: #"{"recv_ns":"#.utf8)
        pending.append(contentsOf: digits.utf8)
        pending.append(contentsOf: #","frame":"#.utf8)
        f.withUTF8 { pending.append(contentsOf: $0) }
        pending.append(UInt8(ascii: "}")); pending.append(0x0A)
        fileBytes += lineLen; fileFrames += 1; framesWritten += 1; lastRecvNs = recvNs
        if pending.count >= Self.bufferLimit { try drain(finish: false) }
    }

    private func rotate(_ recvNs: Int64) throws(RecordingError) {
        try drain(finish: true)
        try sink?.close(); sink = nil
        var h = header; h.startNs = recvNs
        try openFile(path: Self.partPath(basePath, files.count), header: h)
    }

    private func drain(finish: Bool) throws(RecordingError) {
        guard let sink else { return }
        do { try sink.write(pending, finish: finish) } catch { failed = error; throw error }
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes buffered lines to the file; a `.gz` file is left as complete gzip members.
    public func flush() throws(RecordingError) {
        if let failed { throw failed }
        try drain(finish: true)
    }

    /// Flushes and closes. Further appends throw; closing twice is harmless.
    public func close() throws(RecordingError) {
        guard let s = sink else { return }
        defer { sink = nil }
        if failed == nil { try drain(finish: true) }
        try s.close()
    }
}

/// A file opened for writing whole buffers, plain or as a series of gzip members.
final class FileSink {
    let path: String
    let fd: Int32
    let zlib: Zlib?
    var out = [UInt8](repeating: 0, count: 1 << 18)
    var committed: off_t = 0
    var memberOpen = false

    init(path: String, gzip: Bool, overwrite: Bool) throws(RecordingError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL), 0o644)
        guard fd >= 0 else { throw RecordingError(.io, path: path, "cannot create: \(errnoText())") }
        if gzip {
            do { zlib = try Zlib(.gzipDeflate(level: 6)) } catch { throw RecordingError(.io, path: path, error.description) }
        } else { zlib = nil }
    }

    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) throws(RecordingError) {
        var done = 0
        while done < n {
            let r = Glibc.write(fd, p + done, n - done)
            if r < 0 {
                if errno == EINTR { continue }
                let msg = errnoText()
                if zlib == nil { _ = ftruncate(fd, committed) }
                throw RecordingError(.io, path: path, "write failed: \(msg)")
            }
            done += r
        }
        committed += off_t(n)
    }

    /// Writes complete lines; with `finish`, a gzip member is completed.
    func write(_ data: [UInt8], finish: Bool) throws(RecordingError) {
        guard let zlib else {
            if data.isEmpty { return }
            let err = data.withUnsafeBytes { b -> RecordingError? in
                do throws(RecordingError) { try writeAll(b.baseAddress!, b.count); return nil } catch { return error }
            }
            if let err { throw err }
            return
        }
        if data.isEmpty && !(finish && memberOpen) { return }
        try data.withUnsafeBufferPointer { (inp) throws(RecordingError) in
            zlib.setInput(inp.baseAddress, count: inp.count)
            try out.withUnsafeMutableBufferPointer { (o) throws(RecordingError) in
                while true {
                    zlib.setOutput(o.baseAddress, count: o.count)
                    let status: Zlib.Status
                    do { status = try zlib.deflate(finish: finish) } catch { throw RecordingError(.io, path: path, "\(error)") }
                    let produced = o.count - zlib.availableOut
                    if produced > 0 { try writeAll(o.baseAddress!, produced) }
                    if status == .streamEnd { break }
                    if !finish && zlib.availableIn == 0 && zlib.availableOut > 0 { break }
                }
            }
        }
        if finish { zlib.reset(); memberOpen = false } else { memberOpen = true }
    }

    func close() throws(RecordingError) {
        guard Glibc.close(fd) == 0 else { throw RecordingError(.io, path: path, "close failed: \(errnoText())") }
    }
}

// MARK: - Reader

/// Reads a recording (plain or gzip, detected by magic bytes) frame by frame: `while let f = try r.next()`.
/// With `skipBad`, bad lines are skipped and counted instead of thrown, and a truncated or corrupt
/// gzip stream ends the recording after the last complete line.
public final class RecordingReader {
    public let path: String
    public let header: RecordingHeader
    public let skipBad: Bool
    public let validateFrames: Bool
    /// Lines skipped because of `skipBad` (including a partial last line of a truncated gzip).
    public private(set) var skippedLines = 0
    /// The first 100 problems skipped because of `skipBad`.
    public private(set) var problems: [RecordingError] = []
    public private(set) var framesRead = 0
    /// The lines of a text recording; nil for a tape, which is read through `tape`.
    private let lines: LineReader?
    private var lastNs: Int64 = .min
    /// The clock before the frame just returned, and that frame's line: a frame the caller reports
    /// bad does not move the clock.
    private var previousNs: Int64 = .min, lastLine = 0
    private var done = false
    /// Lines before this one are passed over unread (not parsed, not counted as bad).
    public var startLine = 0
    /// The tape being read, when the file is one; where its next frame and the last returned start.
    public let tape: BinaryTape?
    private var tapeAt = 0, tapeLast = 0
    private var tapeTrades: [Trade] = []
    private var tapeText: [UInt8] = []
    /// Holds the frame ``nextRaw(checkUTF8:)`` returned from a tape until the next call.
    private var tapeBuffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 4096)
    /// When set and the file is a tape, ``nextRaw(checkUTF8:)`` returns each trade frame with its
    /// ``RawFrame/trades`` and empty `bytes`: the records become trades without a detour through JSON.
    /// Other frames, and every frame of a JSONL recording, still come as text.
    public var tapeTradesDecoded = false

    /// Opens the file and reads the header. `validateFrames` checks that each frame is valid JSON.
    /// A binary tape (``BinaryTape``) is read through the same calls: its frames come back with
    /// their recorded lines and receive times, trade frames as the codec's JSON of their trades (or,
    /// with ``tapeTradesDecoded``, as the trades themselves).
    public init(path: String, skipBad: Bool = false, validateFrames: Bool = true) throws(RecordingError) {
        self.path = path; self.skipBad = skipBad; self.validateFrames = validateFrames
        if BinaryTape.isTape(path: path) {
            let tape = try BinaryTape(path: path)
            self.tape = tape; tapeAt = tape.framesStart; header = tape.header
            lines = nil
            return
        }
        tape = nil
        let lines: LineReader
        do { lines = LineReader(try openInput(path: path)) } catch { throw Self.map(error, path: path, after: 0) }
        self.lines = lines
        let first: UnsafeBufferPointer<UInt8>?
        do { first = try lines.next() } catch { throw Self.map(error, path: path, after: 0) }
        guard let first else { throw RecordingError(.missingHeader, path: path, line: 1, "missing header: the file is empty") }
        header = try RecordingHeader.parse(first, path: path)
    }

    deinit { tapeBuffer.deallocate() }

    static func map(_ e: SourceError, path: String, after line: Int) -> RecordingError {
        switch e {
        case .io(let m): return RecordingError(.io, path: path, m)
        case .truncated: return RecordingError(.truncatedGzip, path: path, "unexpected end of gzip data after line \(line)")
        case .corrupt(let m): return RecordingError(.corruptData, path: path, "corrupt compressed data after line \(line): \(m)")
        }
    }

    private func skip(_ e: RecordingError) throws(RecordingError) {
        guard skipBad else { throw e }
        skippedLines += 1
        if problems.count < 100 { problems.append(e) }
    }

    /// One frame whose bytes point into the reader's buffer: valid only until the next read.
    public struct RawFrame {
        public var line: Int
        public var recvNs: Int64
        public var bytes: UnsafeBufferPointer<UInt8>
        /// A tape's trade frame, already decoded (with ``RecordingReader/tapeTradesDecoded``); `bytes` is then empty.
        public var trades: [Trade]? = nil

        /// The frame as Finnhub's JSON: `bytes`, or the codec's text of `trades`.
        public var text: String {
            if let trades { return FinnhubCodec.encodeTrades(trades) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// The next frame without copying it (`bytes` is valid until the next call), or nil at the end.
    /// With `checkUTF8: false` the frame's UTF-8 is not validated (a decoder that validates it anyway is faster).
    public func nextRaw(checkUTF8: Bool = true) throws(RecordingError) -> RawFrame? {
        if let tape { return try nextOfTape(tape) }
        guard let lines else { return nil }
        while !done {
            let raw: UnsafeBufferPointer<UInt8>?
            do { raw = try lines.next() } catch {
                let e = Self.map(error, path: path, after: lines.lineNumber)
                guard skipBad, e.kind != .io else { throw e }
                done = true
                if lines.pendingBytes > 0 { skippedLines += 1 }
                if problems.count < 100 { problems.append(e) }
                return nil
            }
            guard let raw else { done = true; return nil }
            let lineNo = lines.lineNumber
            if lineNo < startLine { continue }
            var n = raw.count
            let p = raw.baseAddress ?? UnsafePointer(bitPattern: 1)!
            if n > 0, p[n - 1] == 0x0D { n -= 1 }
            var i = 0
            JSONScanner.skipWS(p, &i, n)
            if i == n { continue }
            switch Self.parseLine(p, n, validate: validateFrames) {
            case .failure(let e):
                try skip(RecordingError(.malformedLine, path: path, line: lineNo, e.message))
            case .success(let (ns, fs, fe)):
                let bytes = UnsafeBufferPointer(start: p + fs, count: fe - fs)
                if checkUTF8, !Self.isValidUTF8(bytes) {
                    try skip(RecordingError(.invalidUTF8, path: path, line: lineNo, "frame is not valid UTF-8")); continue
                }
                guard ns >= lastNs else {
                    try skip(RecordingError(.nonMonotonic, path: path, line: lineNo,
                                            "recv_ns \(ns) is earlier than the previous frame's \(lastNs)")); continue
                }
                previousNs = lastNs; lastLine = lineNo
                lastNs = ns; framesRead += 1
                return RawFrame(line: lineNo, recvNs: ns, bytes: bytes)
            }
        }
        return nil
    }

    /// The next frame that decodes, with what it decodes to; a frame that does not is handed to
    /// ``reportBadFrame(line:_:)`` (thrown, or with `skipBad` skipped and counted) and reading goes on.
    public func nextDecoded() throws(RecordingError) -> (raw: RawFrame, frame: FinnhubFrame)? {
        while let raw = try nextRaw(checkUTF8: false) {
            do { return (raw, try FinnhubCodec.decode(UnsafeRawBufferPointer(raw.bytes))) } catch {
                try reportBadFrame(line: raw.line, "frame does not decode: \(error)")
            }
        }
        return nil
    }

    private func nextOfTape(_ tape: BinaryTape) throws(RecordingError) -> RawFrame? {
        while let f = try tape.frame(at: tapeAt) {
            tapeLast = tapeAt; tapeAt = f.next
            if f.line < startLine { continue }
            previousNs = lastNs; lastLine = f.line; lastNs = f.recvNs; framesRead += 1
            // Text frames point into the mapping, which lives as long as the tape.
            if let text = f.text { return RawFrame(line: f.line, recvNs: f.recvNs, bytes: text.assumingMemoryBound(to: UInt8.self)) }
            if tapeTradesDecoded {
                var trades: [Trade] = []
                trades.reserveCapacity(f.trades)
                try tape.trades(of: f, into: &trades)
                return RawFrame(line: f.line, recvNs: f.recvNs, bytes: UnsafeBufferPointer(start: nil, count: 0), trades: trades)
            }
            tapeTrades.removeAll(keepingCapacity: true)
            try tape.trades(of: f, into: &tapeTrades)
            tapeText.removeAll(keepingCapacity: true)
            FinnhubCodec.encodeTrades(tapeTrades, into: &tapeText)
            if tapeBuffer.count < tapeText.count {
                tapeBuffer.deallocate()
                tapeBuffer = .allocate(capacity: max(tapeText.count, 2 * tapeBuffer.count))
            }
            _ = tapeBuffer.initialize(from: tapeText)
            return RawFrame(line: f.line, recvNs: f.recvNs, bytes: UnsafeBufferPointer(rebasing: tapeBuffer[..<tapeText.count]))
        }
        return nil
    }

    /// ASCII is checked eight bytes at a time without allocating; anything else goes through the standard library.
    static func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var high: UInt64 = 0
        var i = 0
        while i + 8 <= bytes.count {
            high |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count { high |= UInt64(bytes[i]); i += 1 }
        if high & 0x8080_8080_8080_8080 == 0 { return true }
        return String(validating: bytes, as: UTF8.self) != nil
    }

    /// Counts a problem found by the caller in the frame just returned (e.g. it does not decode): throws it,
    /// or with `skipBad` counts the line as skipped; a skipped frame's recv_ns does not count as the clock,
    /// so one bad far-future line does not make the valid lines after it "earlier".
    public func reportBadFrame(line: Int, _ message: String) throws(RecordingError) {
        try skip(RecordingError(.invalidFrame, path: path, line: line, message))
        if line == lastLine { lastNs = previousNs }
    }

    /// Where the line of the last frame returned starts, in the file's uncompressed bytes.
    public var lastFrameOffset: Int { lines?.lastLineOffset ?? tapeLast }

    /// Whether the file is gzip-compressed.
    public var isCompressed: Bool { lines?.input is InflateInput }

    /// The gzip members seen so far: where each starts in the file and in the uncompressed bytes.
    public var gzipMembers: [RecordingIndex.Member] {
        ((lines?.input as? InflateInput)?.memberStarts ?? []).map { RecordingIndex.Member(compressed: $0.compressed, uncompressed: $0.uncompressed) }
    }

    /// Continues reading at the line starting at uncompressed byte `offset`, which is line `line` of the
    /// file (an index entry). Plain files are read from there directly; gzip files from the last of
    /// `members` at or before it (each member stands alone), else from the start, inflating up to it.
    /// The order check starts over (a seek may go back in time).
    public func reposition(offset: Int, line: Int, members: [RecordingIndex.Member] = []) throws(RecordingError) {
        guard let lines else { tapeAt = offset; lastNs = .min; previousNs = .min; return }
        do throws(SourceError) {
            if lines.input is InflateInput {
                let member = members.last { $0.uncompressed <= offset } ?? RecordingIndex.Member(compressed: 0, uncompressed: 0)
                let inflater = try InflateInput(try FileInput(path: path, offset: member.compressed), gzip: true)
                var toSkip = offset - member.uncompressed
                if toSkip > 0 {
                    let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
                    defer { scratch.deallocate() }
                    while toSkip > 0 {
                        let r = try inflater.read(scratch, min(toSkip, 1 << 20))
                        guard r > 0 else { throw SourceError.truncated }
                        toSkip -= r
                    }
                }
                lines.reposition(inflater, offset: offset, lineNumber: line - 1)
            } else {
                lines.reposition(try FileInput(path: path, offset: offset), offset: offset, lineNumber: line - 1)
            }
        } catch {
            throw Self.map(error, path: path, after: line)
        }
        lastNs = .min; previousNs = .min; done = false
    }

    /// How far through the input file reading is (0…1), by bytes of the file (compressed bytes for gzip).
    public var inputFraction: Double? {
        guard let tape else { return lines?.inputFraction }
        return Double(tapeAt - tape.framesStart) / Double(max(1, tape.framesEnd - tape.framesStart))
    }

    /// The next frame, or nil at the end of the recording.
    public func next() throws(RecordingError) -> RecordedFrame? {
        guard let raw = try nextRaw() else { return nil }
        return RecordedFrame(line: raw.line, recvNs: raw.recvNs, frame: raw.text)
    }

    /// Every remaining frame.
    public func readAll() throws(RecordingError) -> [RecordedFrame] {
        var out: [RecordedFrame] = []
        while let f = try next() { out.append(f) }
        return out
    }

    struct LineError: Error { var message: String }

    /// Parses `{"recv_ns":<int>, …, "frame":<frame>}`; returns recv_ns and the frame's byte range.
    static func parseLine(_ p: UnsafePointer<UInt8>, _ n: Int, validate: Bool) -> Result<(Int64, Int, Int), LineError> {
        func fail(_ m: String) -> Result<(Int64, Int, Int), LineError> { .failure(LineError(message: m)) }
        var i = 0
        JSONScanner.skipWS(p, &i, n)
        guard i < n, p[i] == UInt8(ascii: "{") else { return fail("line is not a JSON object") }
        i += 1
        var recv: Int64?
        while true {
            JSONScanner.skipWS(p, &i, n)
            guard i < n, p[i] == UInt8(ascii: "\"") else { return fail("expected a key") }
            let keyStart = i + 1
            guard JSONScanner.skipString(p, &i, n) else { return fail("unterminated key") }
            let key = UnsafeBufferPointer(start: p + keyStart, count: i - 1 - keyStart)
            JSONScanner.skipWS(p, &i, n)
            guard i < n, p[i] == UInt8(ascii: ":") else { return fail("expected : after a key") }
            i += 1
            if key.elementsEqual("frame".utf8) {
                guard let recv else { return fail("recv_ns is missing (it must come before frame)") }
                guard n > i, p[n - 1] == UInt8(ascii: "}") else { return fail("line does not end with }") }
                let fs = i, fe = n - 1
                if validate {
                    var j = fs
                    JSONScanner.skipWS(p, &j, fe)
                    guard JSONScanner.skipValue(p, &j, fe, depth: 0) else { return fail("frame is not valid JSON") }
                    JSONScanner.skipWS(p, &j, fe)
                    guard j == fe else { return fail("unexpected text after the frame") }
                } else if fe == fs { return fail("frame is empty") }
                return .success((recv, fs, fe))
            }
            JSONScanner.skipWS(p, &i, n)
            if key.elementsEqual("recv_ns".utf8) {
                var v: Int64 = 0, digits = 0
                while i < n, JSONScanner.isDigit(p[i]) {
                    let (m, o1) = v.multipliedReportingOverflow(by: 10)
                    let (a, o2) = m.addingReportingOverflow(Int64(p[i] - 0x30))
                    guard !o1, !o2 else { return fail("recv_ns is out of range") }
                    v = a; digits += 1; i += 1
                }
                guard digits > 0, i < n, p[i] == UInt8(ascii: ",") || p[i] == UInt8(ascii: "}") || JSONScanner.isWS(p[i])
                else { return fail("recv_ns is not an integer") }
                recv = v
            } else {
                guard JSONScanner.skipValue(p, &i, n, depth: 0) else { return fail("line is not valid JSON") }
            }
            JSONScanner.skipWS(p, &i, n)
            guard i < n, p[i] == UInt8(ascii: ",") else {
                return fail(recv == nil ? "recv_ns is missing" : "frame is missing (it must be the last key)")
            }
            i += 1
        }
    }
}

extension RecordingReader {
    /// recv_ns of the last frame of a plain recording, read from its tail; nil for gzip or when unreadable.
    public static func lastRecvNs(path: String) -> Int64? {
        guard let f = try? FileInput(path: path) else { return nil }
        if f.peek(BinaryTape.magic.count) == BinaryTape.magic { return (try? BinaryTape(path: path))?.lastRecvNs }
        if f.peek(2) == [0x1f, 0x8b] { return nil }
        let size = f.size()
        let len = min(size, 1 << 16)
        guard len > 0 else { return nil }
        var tail = [UInt8](repeating: 0, count: len)
        let r = tail.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, len, off_t(size - len)) }
        guard r == len else { return nil }
        var end = len
        while end > 0 {
            while end > 0, tail[end - 1] == 0x0A || tail[end - 1] == 0x0D { end -= 1 }
            var start = end
            while start > 0, tail[start - 1] != 0x0A { start -= 1 }
            if start == 0 && len < size { return nil }
            let ns: Int64? = tail.withUnsafeBufferPointer { b in
                guard case .success(let (ns, _, _)) = parseLine(b.baseAddress! + start, end - start, validate: false)
                else { return nil }
                return ns
            }
            if let ns { return ns }
            end = start
        }
        return nil
    }
}
