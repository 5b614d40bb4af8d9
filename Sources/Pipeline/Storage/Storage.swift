import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum StorageError: Error, Equatable, CustomStringConvertible {
    case outsideRoot(path: String, root: String)
    case invalidName(String)
    case io(operation: String, path: String, errno: Int32)
    case zlib(ZlibError)

    public var description: String {
        switch self {
        case .outsideRoot(let p, let r): return "path '\(p)' escapes storage root '\(r)'"
        case .invalidName(let n): return "invalid file name '\(n)'"
        case .io(let op, let p, let e): return "\(op) '\(p)' failed: \(String(cString: strerror(e)))"
        case .zlib(let e): return "\(e)"
        }
    }
}

/// Maps an arbitrary symbol (or topic) to one safe path component.
///
/// Mapping, over the UTF-8 bytes of the input:
/// 1. Bytes `A–Z a–z 0–9 _ -` are kept; `.` is kept unless it is the first or the last byte.
///    Every other byte (including `%`, `/`, `\`, `:`, space, NUL, control and non-ASCII bytes, and a
///    leading/trailing `.`) becomes `%XX` (uppercase hex).
/// 2. If the part before the first `.` is a Windows reserved device name (CON, PRN, AUX, NUL, COM0–9,
///    LPT0–9; case-insensitive), its first character is encoded as `%XX` as well.
/// 3. The empty string maps to `%empty` (never produced otherwise: encodings use uppercase hex).
/// 4. If the result exceeds 100 bytes it is cut to at most 83 bytes (never inside a `%XX`) and
///    `~` plus the 16 lowercase hex digits of the 64-bit FNV-1a hash of the original UTF-8 bytes is appended.
/// Without step 4 the mapping is reversible (percent-decoding), hence injective; truncated names differ
/// unless prefix and 64-bit hash both collide. Results are never empty, `.` or `..`, never contain `/`,
/// and are at most 100 bytes.
public enum SafeFileName {
    public static let maxBytes = 100
    static let reserved: Set<String> = {
        var s: Set<String> = ["CON", "PRN", "AUX", "NUL"]
        for i in 0...9 { s.insert("COM\(i)"); s.insert("LPT\(i)") }
        return s
    }()

    public static func component(for symbol: String) -> String {
        let bytes = Array(symbol.utf8)
        if bytes.isEmpty { return "%empty" }
        let hex = Array("0123456789ABCDEF".utf8)
        let stem = String(decoding: bytes.prefix { $0 != UInt8(ascii: ".") }, as: UTF8.self).uppercased()
        let escapeFirst = reserved.contains(stem)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for (i, b) in bytes.enumerated() {
            let keep: Bool
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"): keep = !(i == 0 && escapeFirst)
            case UInt8(ascii: "."): keep = i != 0 && i != bytes.count - 1
            default: keep = false
            }
            if keep { out.append(b) } else { out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]] }
        }
        if out.count > maxBytes {
            var cut = maxBytes - 17
            if out[cut - 1] == UInt8(ascii: "%") { cut -= 1 } else if out[cut - 2] == UInt8(ascii: "%") { cut -= 2 }
            out = Array(out[..<cut]) + Array("~".utf8) + Array(hex16(fnv1a64(bytes)).utf8)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// 64-bit FNV-1a.
    public static func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Identity of one stored batch: Kafka topic, partition and inclusive offset range.
public struct BatchId: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var firstOffset: Int64
    public var lastOffset: Int64
    public init(topic: String, partition: Int, firstOffset: Int64, lastOffset: Int64) {
        self.topic = topic; self.partition = partition; self.firstOffset = firstOffset; self.lastOffset = lastOffset
    }

    /// `<topic-component>-p<partition>-<firstOffset>-<lastOffset>.jsonl` (+ `.gz`). Re-reading the same offsets
    /// yields the same name, so rewrites replace the file instead of duplicating data.
    public func fileName(gzip: Bool = false) -> String {
        "\(SafeFileName.component(for: topic))-p\(partition)-\(firstOffset)-\(lastOffset).jsonl" + (gzip ? ".gz" : "")
    }

    /// Parses a name produced by `fileName(gzip:)`; `topic` is the (encoded) topic component.
    public static func parse(fileName name: String) -> BatchId? {
        var n = Substring(name)
        if n.hasSuffix(".gz") { n = n.dropLast(3) }
        guard n.hasSuffix(".jsonl"), !n.hasPrefix(".") else { return nil }
        let parts = n.dropLast(6).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, let last = Int64(parts[parts.count - 1]), let first = Int64(parts[parts.count - 2]),
              parts[parts.count - 3].hasPrefix("p"), let part = Int(parts[parts.count - 3].dropFirst()),
              first >= 0, last >= first, part >= 0 else { return nil }
        let topic = parts[..<(parts.count - 3)].joined(separator: "-")
        guard !topic.isEmpty else { return nil }
        return BatchId(topic: topic, partition: part, firstOffset: first, lastOffset: last)
    }
}

public enum StoragePaths {
    /// `root/<topic-component>/<yyyy-mm-dd UTC of eventMs>/<symbol-component>/<batch file>`; throws if the
    /// standardized result is not strictly inside the standardized root.
    public static func path(root: String, topic: String, eventMs: Int64, symbol: String, batch: BatchId, gzip: Bool = false) throws -> String {
        let dir = try directory(root: root, topic: topic, eventMs: eventMs, symbol: symbol)
        return try checkedInside(root: root, dir + "/" + batch.fileName(gzip: gzip))
    }

    /// `root/<topic-component>/<yyyy-mm-dd>/<symbol-component>`, checked to be inside root.
    public static func directory(root: String, topic: String, eventMs: Int64, symbol: String) throws -> String {
        let r = standardize(root)
        let p = r + "/" + SafeFileName.component(for: topic) + "/" + dateUTC(eventMs: eventMs) + "/" + SafeFileName.component(for: symbol)
        return try checkedInside(root: root, p)
    }

    /// Returns the standardized `path` if it lies strictly inside the standardized `root`.
    public static func checkedInside(root: String, _ path: String) throws -> String {
        let r = standardize(root), p = standardize(path)
        let prefix = r == "/" ? "/" : r + "/"
        guard p.hasPrefix(prefix), p.count > prefix.count else { throw StorageError.outsideRoot(path: path, root: root) }
        return p
    }

    static func standardize(_ path: String) -> String {
        let abs = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var comps: [Substring] = []
        for c in abs.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if !comps.isEmpty { comps.removeLast() }; continue }
            comps.append(c)
        }
        return "/" + comps.joined(separator: "/")
    }

    /// UTC calendar date `yyyy-mm-dd` of a Unix-ms instant (proleptic Gregorian).
    public static func dateUTC(eventMs: Int64) -> String {
        let (y, m, d) = civil(fromDays: floorDiv(eventMs, 86_400_000))
        func pad(_ v: Int64, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// Days since 1970-01-01 of a `yyyy-mm-dd` string, or nil if malformed.
    public static func days(fromDate s: String) -> Int64? {
        let u = Array(s.utf8)
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"),
              u.enumerated().allSatisfy({ $0.offset == 4 || $0.offset == 7 || (48...57).contains($0.element) }),
              let y = Int64(s.prefix(4)), let m = Int64(s.dropFirst(5).prefix(2)), let d = Int64(s.suffix(2)),
              (1...12).contains(m), d >= 1 else { return nil }
        let days = daysFrom(y: y, m: m, d: d)
        return civil(fromDays: days) == (y, m, d) ? days : nil
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { let q = a / b; return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysFrom(y y0: Int64, m: Int64, d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        return era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }
}

/// Crash-safe file writes: temp file `dir/.<name>.tmp-<random>` → write → fsync → rename → fsync(dir).
public enum AtomicFileWriter {
    /// Atomically writes `bytes` (gzip-compressed first if `gzip`) to `path`, creating parent directories
    /// (each newly created directory's parent is fsynced). An existing file is replaced atomically.
    public static func write(_ bytes: [UInt8], to path: String, gzip: Bool = false) throws {
        let p = StoragePaths.standardize(path)
        guard let slash = p.lastIndex(of: "/") else { throw StorageError.invalidName(path) }
        let dir = slash == p.startIndex ? "/" : String(p[..<slash])
        let name = String(p[p.index(after: slash)...])
        guard !name.isEmpty, name != ".", name != ".." else { throw StorageError.invalidName(path) }
        try makeDirectories(dir)
        let data: [UInt8]
        do { data = gzip ? try Gzip.compress(bytes) : bytes } catch { throw StorageError.zlib(error) }
        let tmp = dir + "/." + name + ".tmp-" + SafeFileName.hex16(UInt64.random(in: .min ... .max))
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.io(operation: "open", path: tmp, errno: errno) }
        do {
            try data.withUnsafeBytes { buf in
                var off = 0
                while off < buf.count {
                    let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                    if n < 0 { if errno == EINTR { continue }; throw StorageError.io(operation: "write", path: tmp, errno: errno) }
                    off += n
                }
            }
            guard fsync(fd) == 0 else { throw StorageError.io(operation: "fsync", path: tmp, errno: errno) }
            guard close(fd) == 0 else { unlink(tmp); throw StorageError.io(operation: "close", path: tmp, errno: errno) }
        } catch { close(fd); unlink(tmp); throw error }
        guard rename(tmp, p) == 0 else { let e = errno; unlink(tmp); throw StorageError.io(operation: "rename", path: p, errno: e) }
        try fsyncDirectory(dir)
    }

    static func fsyncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError.io(operation: "open", path: dir, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StorageError.io(operation: "fsync", path: dir, errno: errno) }
    }

    static func makeDirectories(_ dir: String) throws {
        var current = ""
        for c in dir.split(separator: "/") {
            let parent = current.isEmpty ? "/" : current
            current += "/" + c
            if mkdir(current, 0o755) == 0 { try fsyncDirectory(parent); continue }
            let e = errno
            guard e == EEXIST, FileKind.of(current, followLinks: true) == .directory else {
                throw StorageError.io(operation: "mkdir", path: current, errno: e == EEXIST ? ENOTDIR : e)
            }
        }
    }
}

enum FileKind: Equatable {
    case file, directory, symlink, other, missing
    static func of(_ path: String, followLinks: Bool = false) -> FileKind {
        var st = stat()
        guard (followLinks ? stat(path, &st) : lstat(path, &st)) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }
    static func children(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }
}

public enum StoredOffsets {
    /// Highest stored last-offset per partition among batch files anywhere under `directory`
    /// (symlinks not followed; temp files ignored). `topic` filters by the encoded topic component.
    public static func highest(under directory: String, topic: String? = nil) -> [Int: Int64] {
        var result: [Int: Int64] = [:]
        for (_, b) in batchFiles(under: directory, topic: topic) {
            result[b.partition] = max(result[b.partition] ?? b.lastOffset, b.lastOffset)
        }
        return result
    }

    /// Every batch file under `directory` with its parsed name.
    public static func batchFiles(under directory: String, topic: String? = nil) -> [(path: String, batch: BatchId)] {
        var result: [(String, BatchId)] = []
        let wanted = topic.map(SafeFileName.component(for:))
        func walk(_ dir: String) {
            for name in FileKind.children(dir) {
                let p = dir + "/" + name
                switch FileKind.of(p) {
                case .directory: walk(p)
                case .file:
                    guard let b = BatchId.parse(fileName: name), wanted == nil || wanted == b.topic else { continue }
                    result.append((p, b))
                default: continue
                }
            }
        }
        walk(StoragePaths.standardize(directory))
        return result
    }
}

public enum Retention {
    /// Deletes batch files (`*.jsonl`, `*.jsonl.gz` named as `BatchId.fileName`) and leftover temp files
    /// (`.*.tmp-*`) under the date folders `root/<topic>/<yyyy-mm-dd>` whose modification time is more than
    /// `olderThanDays` days before `now` (file age, not trade date: a replay of an old session is kept for
    /// N days after it was stored), then directories left empty (including the date folder). Symlinks are never followed or
    /// deleted, other files are kept, nothing outside `root` is touched, and `root/<topic>` folders are kept.
    /// Returns the removed paths (files and directories) in deletion order.
    @discardableResult
    public static func deleteFiles(olderThanDays days: Int, under root: String, now: Date = Date()) throws -> [String] {
        let r = StoragePaths.standardize(root)
        guard FileKind.of(r) == .directory else { return [] }
        let cutoff = now.timeIntervalSince1970 - Double(days) * 86_400
        var removed: [String] = []
        func purge(_ dir: String) throws {
            for name in FileKind.children(dir) {
                let p = dir + "/" + name
                switch FileKind.of(p) {
                case .directory:
                    try purge(p)
                    if FileKind.children(p).isEmpty, rmdir(p) == 0 { removed.append(p) }
                case .file:
                    guard BatchId.parse(fileName: name) != nil || (name.hasPrefix(".") && name.contains(".tmp-")) else { continue }
                    var info = stat()
                    guard lstat(p, &info) == 0, Double(info.st_mtim.tv_sec) < cutoff else { continue }
                    guard unlink(p) == 0 else { throw StorageError.io(operation: "unlink", path: p, errno: errno) }
                    removed.append(p)
                default: continue
                }
            }
        }
        for topic in FileKind.children(r) where FileKind.of(r + "/" + topic) == .directory {
            let t = r + "/" + topic
            for date in FileKind.children(t) {
                guard StoragePaths.days(fromDate: date) != nil else { continue }
                let p = t + "/" + date
                guard FileKind.of(p) == .directory else { continue }
                _ = try StoragePaths.checkedInside(root: r, p)
                try purge(p)
                if FileKind.children(p).isEmpty, rmdir(p) == 0 { removed.append(p) }
            }
        }
        return removed
    }
}
