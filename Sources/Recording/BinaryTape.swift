import MarketData
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The compact binary form of a recording (`.mstape`, see RECORDING_FORMAT.md): the same frames with
/// their receive times and line numbers, trade frames as fixed 32-byte records (symbol and condition
/// list as table indexes, price and volume as the exact doubles), other frames as their text.
///
/// Built from a recording by ``pack(recording:to:overwrite:skipBad:)``, which reads the result back and
/// compares it with the recording trade for trade before renaming it into place. ``RecordingReader``
/// reads a tape like any recording (so replay, seek, `sim-exchange --replay` and backtest take either);
/// backtest also reads the trade records directly with ``forEachRecordRun(runSize:_:)``.
///
/// The file is memory-mapped read-only; an instance is immutable after `init` and safe to share.
public final class BinaryTape: @unchecked Sendable {
    public static let magic: [UInt8] = Array("MSTAPE1\n".utf8)
    static let trailerMagic: [UInt8] = Array("MSTAPEND".utf8)
    static let trailerSize = 48
    static let frameHeaderSize = 16
    static let tradeSize = 32
    static let textFlag: UInt32 = 0x8000_0000

    public let path: String
    public let header: RecordingHeader
    public let symbols: [String]
    /// Index 0 is `nil` (no conditions).
    public let conditionLists: [[String]?]
    public let frameCount: Int
    public let tradeCount: Int
    public let firstRecvNs: Int64?
    public let lastRecvNs: Int64?
    /// Where the first frame starts and where the frames end, in bytes of the file.
    public let framesStart: Int, framesEnd: Int
    let base: UnsafeRawPointer
    let size: Int

    /// Whether the file at `path` starts with the tape magic.
    public static func isTape(path: String) -> Bool {
        guard let f = try? FileInput(path: path) else { return false }
        return f.peek(magic.count) == magic
    }

    /// Maps the file and checks its header, tables and trailer. Errors name the file and what is wrong
    /// (a tape whose pack was interrupted has no trailer).
    public init(path: String) throws(RecordingError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw RecordingError(.io, path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RecordingError(.io, path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(st.st_size)
        func corrupt(_ m: String) -> RecordingError { RecordingError(.corruptData, path: path, "not a valid tape: \(m)") }
        guard size >= Self.magic.count + 4 + Self.trailerSize else { throw corrupt("\(size) bytes is shorter than an empty tape") }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw RecordingError(.io, path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        let base = UnsafeRawPointer(m)
        let bytes = UnsafeRawBufferPointer(start: base, count: size)
        guard Array(bytes[0..<Self.magic.count]) == Self.magic else {
            munmap(m, size); throw RecordingError(.unsupportedFormat, path: path, "not a tape (no MSTAPE1 magic)")
        }
        guard Array(bytes[(size - 8)...]) == Self.trailerMagic else {
            munmap(m, size); throw corrupt("no trailer (the file is truncated, or its pack was interrupted)")
        }
        let t = size - Self.trailerSize
        let tables = Int(base.loadUnaligned(fromByteOffset: t, as: UInt64.self))
        let frames = Int(base.loadUnaligned(fromByteOffset: t + 8, as: UInt64.self))
        let first = base.loadUnaligned(fromByteOffset: t + 24, as: Int64.self), last = base.loadUnaligned(fromByteOffset: t + 32, as: Int64.self)
        var r = Cursor(base: base, at: Self.magic.count, end: t)
        let header: RecordingHeader, framesStart: Int
        var symbols: [String] = [], lists: [[String]?] = [nil]
        do throws(RecordingError) {
            let headerBytes = try r.bytes(Int(try r.u32()))
            framesStart = r.at
            guard tables >= framesStart, tables <= t else { throw corrupt("table offset \(tables) is outside the file") }
            header = try RecordingHeader.parse(headerBytes.assumingMemoryBound(to: UInt8.self), path: path)
            r.at = tables
            for _ in 0..<(try r.u32()) { symbols.append(String(decoding: try r.bytes(Int(try r.u32())), as: UTF8.self)) }
            for _ in 0..<(try r.u32()) {
                let n = try r.u32()
                var list: [String] = []
                for _ in 0..<n { list.append(String(decoding: try r.bytes(Int(try r.u32())), as: UTF8.self)) }
                lists.append(list)
            }
        } catch {
            munmap(m, size)
            throw error.path.isEmpty ? corrupt(error.message) : error
        }
        self.base = base; self.size = size; self.header = header
        self.framesStart = framesStart; framesEnd = tables
        self.symbols = symbols; conditionLists = lists
        frameCount = frames
        tradeCount = Int(base.loadUnaligned(fromByteOffset: t + 16, as: UInt64.self))
        firstRecvNs = frames > 0 ? first : nil; lastRecvNs = frames > 0 ? last : nil
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    /// Bounds-checked reads of the mapped bytes.
    struct Cursor {
        let base: UnsafeRawPointer
        var at: Int
        let end: Int
        mutating func u32() throws(RecordingError) -> UInt32 {
            guard at + 4 <= end else { throw RecordingError(.corruptData, path: "", "table ends early at byte \(at)") }
            defer { at += 4 }
            return base.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        }
        mutating func bytes(_ n: Int) throws(RecordingError) -> UnsafeRawBufferPointer {
            guard n >= 0, at + n <= end else { throw RecordingError(.corruptData, path: "", "a \(n)-byte field at byte \(at) passes the end") }
            defer { at += n }
            return UnsafeRawBufferPointer(start: base + at, count: n)
        }
    }

    /// One frame as stored: a run of trade records, or a frame's text.
    public struct Frame {
        public var line: Int
        public var recvNs: Int64
        /// Where the frame starts in the file (what ``RecordingReader/lastFrameOffset`` reports).
        public var offset: Int
        /// Where the next frame starts.
        public var next: Int
        /// Trade records (when `text` is nil).
        public var trades: Int
        /// The frame's bytes, for frames that are not trades (pings, errors).
        public var text: UnsafeRawBufferPointer?
        var payload: Int
    }

    /// The frame starting at byte `offset`, or nil at the end of the frames.
    public func frame(at offset: Int) throws(RecordingError) -> Frame? {
        guard offset < framesEnd else { return nil }
        guard offset >= framesStart, offset + Self.frameHeaderSize <= framesEnd else {
            throw RecordingError(.corruptData, path: path, "frame header at byte \(offset) passes the end of the frames")
        }
        let recv = base.loadUnaligned(fromByteOffset: offset, as: Int64.self)
        let line = Int(base.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
        let word = base.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
        let payload = offset + Self.frameHeaderSize
        if word & Self.textFlag != 0 {
            let n = Int(word & ~Self.textFlag)
            let next = payload + (n + 7) & ~7
            guard next <= framesEnd else { throw RecordingError(.corruptData, path: path, line: line, "text frame at byte \(offset) passes the end of the frames") }
            return Frame(line: line, recvNs: recv, offset: offset, next: next, trades: 0, text: UnsafeRawBufferPointer(start: base + payload, count: n), payload: payload)
        }
        let n = Int(word)
        let next = payload + n * Self.tradeSize
        guard next <= framesEnd else { throw RecordingError(.corruptData, path: path, line: line, "trade frame at byte \(offset) passes the end of the frames") }
        return Frame(line: line, recvNs: recv, offset: offset, next: next, trades: n, text: nil, payload: payload)
    }

    /// One trade record as stored: the symbol and condition list as indexes of ``symbols`` and
    /// ``conditionLists``, and the exact values.
    public struct Record: Sendable, Equatable {
        public var symbol: UInt32
        public var conditions: UInt32
        public var price: Double
        public var timestamp: Int64
        public var volume: Double
    }

    /// The trade `record` stands for.
    @inline(__always) public func trade(_ record: Record) -> Trade {
        Trade(symbol: symbols[Int(record.symbol)], price: record.price, timestamp: record.timestamp, volume: record.volume,
              conditions: conditionLists[Int(record.conditions)])
    }

    /// Appends the trades of `frame` to `out`. A symbol or condition index outside the tables throws.
    public func trades(of frame: Frame, into out: inout [Trade]) throws(RecordingError) {
        var p = frame.payload
        for _ in 0..<frame.trades {
            out.append(trade(try record(at: p, of: frame)))
            p += Self.tradeSize
        }
    }

    /// The record at byte `p` of `frame`'s payload; a symbol or condition index outside the tables throws.
    @inline(__always) private func record(at p: Int, of frame: Frame) throws(RecordingError) -> Record {
        let s = base.loadUnaligned(fromByteOffset: p, as: UInt32.self)
        let c = base.loadUnaligned(fromByteOffset: p + 4, as: UInt32.self)
        guard s < UInt32(symbols.count), c < UInt32(conditionLists.count) else {
            throw RecordingError(.corruptData, path: path, line: frame.line, "trade at byte \(p) names symbol \(s) of \(symbols.count) or condition list \(c) of \(conditionLists.count)")
        }
        return Record(symbol: s, conditions: c, price: base.loadUnaligned(fromByteOffset: p + 8, as: Double.self),
                      timestamp: base.loadUnaligned(fromByteOffset: p + 16, as: Int64.self),
                      volume: base.loadUnaligned(fromByteOffset: p + 24, as: Double.self))
    }

    /// Every trade record in file order, in runs of up to `runSize` records (whole frames): the
    /// backtest's read path. Every record's indexes are within the tables (checked before `body` sees
    /// it); ``trade(_:)`` turns one into its trade. Records hold no references, so a run costs no
    /// reference counting to hand over or to free.
    public func forEachRecordRun(runSize: Int = 4096, _ body: ([Record]) throws -> Void) throws {
        var run: [Record] = []
        run.reserveCapacity(runSize + 256)
        var at = framesStart
        while let f = try frame(at: at) {
            if f.text == nil {
                var p = f.payload
                for _ in 0..<f.trades { run.append(try record(at: p, of: f)); p += Self.tradeSize }
            }
            if run.count >= runSize { try body(run); run.removeAll(keepingCapacity: true) }
            at = f.next
        }
        if !run.isEmpty { try body(run) }
    }
}

// MARK: - Packing

extension BinaryTape {
    /// What ``pack(recording:to:overwrite:skipBad:)`` wrote and checked.
    public struct PackSummary: Sendable {
        public var frames = 0, trades = 0, textFrames = 0, skippedLines = 0
        public var symbols = 0
        public var inputBytes = 0, outputBytes = 0
        /// Trades compared with the recording after writing (equal to `trades` on success).
        public var verifiedTrades = 0
    }

    /// Writes the tape of the recording at `recording` to `output` (through a temporary file renamed
    /// when done, so a failure leaves nothing), then reads it back and checks it against the recording
    /// frame for frame and trade for trade (symbol, exact price, time, exact volume, conditions, receive
    /// time, line). Refuses to replace `output` unless `overwrite`. Frames that do not decode throw
    /// (`file:line: why`) unless `skipBad`, which leaves them out and counts them.
    public static func pack(recording: String, to output: String, overwrite: Bool = false, skipBad: Bool = false) throws(RecordingError) -> PackSummary {
        if !overwrite, FileManager.default.fileExists(atPath: output) {
            throw RecordingError(.io, path: output, "already exists (pass --overwrite to replace it)")
        }
        let tmp = output + ".tmp-\(UInt32.random(in: 0...UInt32.max))"
        var summary = PackSummary()
        do throws(RecordingError) {
            summary = try write(recording: recording, to: tmp, skipBad: skipBad)
            summary.verifiedTrades = try verify(tape: tmp, against: recording, skipBad: skipBad)
        } catch {
            unlink(tmp)
            throw error
        }
        guard rename(tmp, output) == 0 else {
            let why = String(cString: strerror(errno)); unlink(tmp)
            throw RecordingError(.io, path: output, "cannot rename the packed tape into place: \(why)")
        }
        return summary
    }

    static func write(recording: String, to path: String, skipBad: Bool) throws(RecordingError) -> PackSummary {
        let reader = try RecordingReader(path: recording, skipBad: skipBad, validateFrames: false)
        guard let out = fopen(path, "wb") else { throw RecordingError(.io, path: path, "cannot create: \(String(cString: strerror(errno)))") }
        defer { fclose(out) }
        var buf: [UInt8] = []
        buf.reserveCapacity(1 << 20)
        var written = 0
        func flush() throws(RecordingError) {
            guard !buf.isEmpty else { return }
            guard fwrite(buf, 1, buf.count, out) == buf.count else { throw RecordingError(.io, path: path, "write failed: \(String(cString: strerror(errno)))") }
            written += buf.count
            buf.removeAll(keepingCapacity: true)
        }
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { buf.append(contentsOf: $0) } }
        func putText(_ s: some Collection<UInt8>) { put(UInt32(s.count)); buf.append(contentsOf: s) }
        buf.append(contentsOf: magic)
        putText(Array(reader.header.jsonLine.utf8))
        var symbols = SymbolIndex()
        var listIndex: [[String]: UInt32] = [:], lists: [[String]] = []
        var summary = PackSummary()
        var first: Int64?, last: Int64 = 0
        while let (raw, decoded) = try reader.nextDecoded() {
            if first == nil { first = raw.recvNs }
            last = raw.recvNs
            summary.frames += 1
            put(raw.recvNs); put(UInt32(truncatingIfNeeded: raw.line))
            if case .trades(let trades) = decoded, trades.count < Int(textFlag) {
                put(UInt32(trades.count))
                for t in trades {
                    let s = UInt32(symbols.insert(t.symbol).index)
                    var c: UInt32 = 0
                    if let list = t.conditions {
                        c = listIndex[list] ?? { let i = UInt32(lists.count + 1); lists.append(list); listIndex[list] = i; return i }()
                    }
                    put(s); put(c); put(t.price.bitPattern); put(t.timestamp); put(t.volume.bitPattern)
                }
                summary.trades += trades.count
            } else {
                put(UInt32(raw.bytes.count) | textFlag)
                buf.append(contentsOf: raw.bytes)
                buf.append(contentsOf: repeatElement(0, count: (8 - raw.bytes.count % 8) % 8))
                summary.textFrames += 1
            }
            if buf.count >= 1 << 20 { try flush() }
        }
        let tables = written + buf.count
        put(UInt32(symbols.count)); for s in symbols.symbols { putText(Array(s.utf8)) }
        put(UInt32(lists.count))
        for l in lists { put(UInt32(l.count)); for c in l { putText(Array(c.utf8)) } }
        put(UInt64(tables)); put(UInt64(summary.frames)); put(UInt64(summary.trades)); put(first ?? 0); put(last)
        buf.append(contentsOf: trailerMagic)
        try flush()
        guard fflush(out) == 0, fsync(fileno(out)) == 0 else { throw RecordingError(.io, path: path, "write failed: \(String(cString: strerror(errno)))") }
        summary.symbols = symbols.count
        summary.skippedLines = reader.skippedLines
        summary.inputBytes = (try? FileManager.default.attributesOfItem(atPath: recording)[.size] as? Int) ?? 0
        summary.outputBytes = written
        return summary
    }

    /// Reads the tape and the recording side by side and returns the trades compared; the first
    /// difference throws, naming the recording's line and the field.
    public static func verify(tape path: String, against recording: String, skipBad: Bool = false) throws(RecordingError) -> Int {
        let tape = try BinaryTape(path: path)
        let reader = try RecordingReader(path: recording, skipBad: skipBad, validateFrames: false)
        func differs(_ line: Int?, _ m: String) -> RecordingError {
            RecordingError(.corruptData, path: recording, line: line, "the tape \(path) differs: \(m)")
        }
        guard tape.header == reader.header else { throw differs(1, "the header differs") }
        var at = tape.framesStart, compared = 0, frames = 0
        var mine: [Trade] = []
        while let (raw, decoded) = try reader.nextDecoded() {
            guard let f = try tape.frame(at: at) else { throw differs(raw.line, "the tape ends before this frame") }
            frames += 1
            guard f.line == raw.line, f.recvNs == raw.recvNs else {
                throw differs(raw.line, "frame \(frames) is line \(f.line) recv_ns \(f.recvNs) in the tape")
            }
            if let text = f.text {
                guard text.elementsEqual(UnsafeRawBufferPointer(raw.bytes)) else { throw differs(raw.line, "the frame's text differs") }
            } else {
                guard case .trades(let theirs) = decoded else { throw differs(raw.line, "the tape holds trades for a frame that has none") }
                mine.removeAll(keepingCapacity: true)
                try tape.trades(of: f, into: &mine)
                guard mine.count == theirs.count else { throw differs(raw.line, "\(mine.count) trades in the tape, \(theirs.count) in the frame") }
                for (i, (a, b)) in zip(mine, theirs).enumerated() {
                    guard a.symbol == b.symbol, a.price.bitPattern == b.price.bitPattern, a.timestamp == b.timestamp,
                          a.volume.bitPattern == b.volume.bitPattern, a.conditions == b.conditions else {
                        throw differs(raw.line, "trade \(i + 1) is \(a) in the tape, \(b) in the recording")
                    }
                }
                compared += mine.count
            }
            at = f.next
        }
        guard try tape.frame(at: at) == nil else { throw differs(nil, "the tape has frames after the recording's last") }
        guard compared == tape.tradeCount, frames == tape.frameCount else {
            throw differs(nil, "the trailer counts \(tape.tradeCount) trades in \(tape.frameCount) frames, the frames hold \(compared) in \(frames)")
        }
        return compared
    }
}
