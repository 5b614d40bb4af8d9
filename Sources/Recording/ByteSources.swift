import MarketData
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum SourceError: Error {
    case io(String)
    case truncated
    case corrupt(String)
}

func errnoText() -> String { String(cString: strerror(errno)) }

protocol ByteInput: AnyObject {
    /// Reads up to `count` bytes; 0 means end of data.
    func read(_ buf: UnsafeMutablePointer<UInt8>, _ count: Int) throws(SourceError) -> Int
}

/// A read-only file descriptor, read from `offset` for at most `limit` bytes.
final class FileInput: ByteInput {
    let fd: Int32
    var offset: Int
    var remaining: Int

    init(path: String, offset: Int = 0, limit: Int = .max) throws(SourceError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open: \(errnoText())") }
        self.offset = offset; remaining = limit
    }
    deinit { close(fd) }

    func read(_ buf: UnsafeMutablePointer<UInt8>, _ count: Int) throws(SourceError) -> Int {
        let want = min(count, remaining)
        guard want > 0 else { return 0 }
        while true {
            let r = pread(fd, buf, want, off_t(offset))
            if r < 0 { if errno == EINTR { continue }; throw .io("read failed: \(errnoText())") }
            offset += r; remaining -= r
            return r
        }
    }

    /// The first bytes of the file (fewer if it is shorter).
    func peek(_ count: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        let r = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return Array(b.prefix(max(0, r)))
    }

    func size() -> Int {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }
}

/// Inflates gzip (possibly several concatenated members) or raw deflate data from `input`.
final class InflateInput: ByteInput {
    let input: ByteInput
    let gzip: Bool
    let zlib: Zlib
    let inBuf = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 18)
    var inputEOF = false
    var streamEnded = false
    /// Uncompressed bytes produced so far.
    private(set) var produced = 0
    /// Where each gzip member starts: (offset in the input, uncompressed offset). Members are
    /// independent, so reading can start again at any of them.
    private(set) var memberStarts: [(compressed: Int, uncompressed: Int)] = [(0, 0)]

    init(_ input: ByteInput, gzip: Bool) throws(SourceError) {
        self.input = input; self.gzip = gzip
        do { zlib = try Zlib(gzip ? .gzipInflate : .rawInflate) } catch { throw .corrupt("zlib init failed") }
    }
    deinit { inBuf.deallocate() }

    private func refill() throws(SourceError) {
        if zlib.availableIn == 0, !inputEOF {
            let r = try input.read(inBuf, 1 << 18)
            if r == 0 { inputEOF = true }
            zlib.setInput(inBuf, count: r)
        }
    }

    func read(_ buf: UnsafeMutablePointer<UInt8>, _ count: Int) throws(SourceError) -> Int {
        let total = min(count, Int(UInt32.max))
        zlib.setOutput(buf, count: total)
        while zlib.availableOut > 0 {
            if streamEnded {
                guard gzip else { break }
                try refill()
                if zlib.availableIn == 0 { break }
                guard zlib.nextIn?[0] == 0x1f else { throw .corrupt("unexpected bytes after the end of the compressed data") }
                zlib.reset(); streamEnded = false
                if let file = input as? FileInput {
                    memberStarts.append((file.offset - zlib.availableIn, produced + (total - zlib.availableOut)))
                }
            }
            try refill()
            let outBefore = zlib.availableOut, inBefore = zlib.availableIn
            let status: Zlib.Status
            do { status = try zlib.inflate() } catch { throw .corrupt(error.message ?? "inflate error \(error.code)") }
            if status == .streamEnd { streamEnded = true; continue }
            if inputEOF, zlib.availableOut == outBefore, zlib.availableIn == inBefore {
                if zlib.availableOut < total { break }
                throw .truncated
            }
        }
        produced += total - zlib.availableOut
        return total - zlib.availableOut
    }
}

/// Opens a file for reading, transparently inflating it when it starts with the gzip magic bytes.
func openInput(path: String) throws(SourceError) -> ByteInput {
    let f = try FileInput(path: path)
    return f.peek(2) == [0x1f, 0x8b] ? try InflateInput(f, gzip: true) : f
}

/// Splits a byte input into lines (without the `\n`) read in large chunks.
final class LineReader {
    private(set) var input: ByteInput
    private var buf: UnsafeMutablePointer<UInt8>
    private var cap: Int
    private var start = 0, end = 0
    private var eof = false
    /// Input offset of `buf[0]`.
    private var base = 0
    /// Input offset where the last line returned starts.
    private(set) var lastLineOffset = 0
    /// Line number of the last line returned (1-based).
    private(set) var lineNumber = 0
    /// Bytes of an incomplete last line dropped when the input failed.
    private(set) var pendingBytes = 0

    init(_ input: ByteInput, chunk: Int = 1 << 20) {
        self.input = input; cap = chunk
        buf = .allocate(capacity: cap)
    }
    deinit { buf.deallocate() }

    /// Bytes of the underlying file consumed so far, as a fraction of its size; nil when unknown.
    var inputFraction: Double? {
        let file = (input as? FileInput) ?? ((input as? InflateInput)?.input as? FileInput)
        guard let file else { return nil }
        let size = file.size()
        return size > 0 ? min(1, Double(file.offset) / Double(size)) : nil
    }

    /// Continues from `input`, whose first byte is at `offset`, with `lineNumber` lines before it.
    func reposition(_ input: ByteInput, offset: Int, lineNumber: Int) {
        self.input = input
        base = offset; start = 0; end = 0; eof = false; pendingBytes = 0
        self.lineNumber = lineNumber
    }

    /// The next line; valid until the next call. The final line may lack a newline.
    func next() throws(SourceError) -> UnsafeBufferPointer<UInt8>? {
        while true {
            if start < end, let nl = memchr(buf + start, 0x0A, end - start) {
                let pos = UnsafeMutableRawPointer(nl).assumingMemoryBound(to: UInt8.self) - buf
                let line = UnsafeBufferPointer(start: buf + start, count: pos - start)
                lastLineOffset = base + start
                start = pos + 1; lineNumber += 1
                return line
            }
            if eof {
                guard start < end else { return nil }
                let line = UnsafeBufferPointer(start: buf + start, count: end - start)
                lastLineOffset = base + start
                start = end; lineNumber += 1
                return line
            }
            if start > 0 {
                if end > start { memmove(buf, buf + start, end - start) }
                base += start
                end -= start; start = 0
            }
            if end == cap {
                let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: cap * 2)
                nb.update(from: buf, count: end)
                buf.deallocate(); buf = nb; cap *= 2
            }
            do {
                let r = try input.read(buf + end, cap - end)
                if r == 0 { eof = true } else { end += r }
            } catch {
                pendingBytes = end - start
                start = end
                throw error
            }
        }
    }
}

/// Minimal zip reader: locates an entry and streams its (stored or deflated) data.
struct ZipArchive {
    struct Entry { var name: String; var method: Int; var compressedSize: Int; var size: Int; var localOffset: Int }
    let path: String
    let entries: [Entry]

    init(path: String) throws(SourceError) {
        self.path = path
        let f = try FileInput(path: path)
        let size = f.size()
        let tailLen = min(size, 65_557)
        var tail = [UInt8](repeating: 0, count: tailLen)
        let r = tail.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, tailLen, off_t(size - tailLen)) }
        guard r == tailLen else { throw .io("cannot read zip directory") }
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
        guard let eocd = stride(from: tailLen - 22, through: 0, by: -1).first(where: { u32(tail, $0) == 0x0605_4b50 })
        else { throw .corrupt("not a zip file (no end of central directory)") }
        let count = u16(tail, eocd + 10), dirSize = u32(tail, eocd + 12), dirOffset = u32(tail, eocd + 16)
        guard dirOffset != 0xFFFF_FFFF, dirOffset + dirSize <= size else { throw .corrupt("zip64 or damaged zip directory") }
        var dir = [UInt8](repeating: 0, count: dirSize)
        _ = dir.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, dirSize, off_t(dirOffset)) }
        var out: [Entry] = [], o = 0
        for _ in 0..<count {
            guard o + 46 <= dirSize, u32(dir, o) == 0x0201_4b50 else { throw .corrupt("damaged zip directory") }
            let nameLen = u16(dir, o + 28), extra = u16(dir, o + 30), comment = u16(dir, o + 32)
            let name = String(decoding: dir[(o + 46)..<(o + 46 + nameLen)], as: UTF8.self)
            out.append(Entry(name: name, method: u16(dir, o + 10), compressedSize: u32(dir, o + 20),
                             size: u32(dir, o + 24), localOffset: u32(dir, o + 42)))
            o += 46 + nameLen + extra + comment
        }
        entries = out
    }

    func open(_ e: Entry) throws(SourceError) -> ByteInput {
        let f = try FileInput(path: path)
        var h = [UInt8](repeating: 0, count: 30)
        _ = h.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, 30, off_t(e.localOffset)) }
        guard h[0] == 0x50, h[1] == 0x4b, h[2] == 3, h[3] == 4 else { throw .corrupt("damaged zip entry \(e.name)") }
        let dataOffset = e.localOffset + 30 + (Int(h[26]) | Int(h[27]) << 8) + (Int(h[28]) | Int(h[29]) << 8)
        let raw = try FileInput(path: path, offset: dataOffset, limit: e.compressedSize)
        switch e.method {
        case 0: return raw
        case 8: return try InflateInput(raw, gzip: false)
        default: throw .corrupt("zip entry \(e.name) uses unsupported compression method \(e.method)")
        }
    }
}
