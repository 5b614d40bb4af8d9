import MarketData
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an import did. `skipped` maps a reason to how many rows it covered.
public struct ImportStats: Sendable, Equatable {
    public var rowsRead = 0
    public var tradesWritten = 0
    public var framesWritten = 0
    public var skipped: [String: Int] = [:]
    public var rowsSkipped: Int { skipped.values.reduce(0, +) }
    public init() {}
}

/// Converts a history file into Finnhub trade frames, in receive-time order.
public protocol TradeImporter {
    var path: String { get }
    /// Goes into the recording header, e.g. `tardis:<file name>`.
    var source: String { get }
    /// Calls `emit` once per frame with its recv_ns and Finnhub frame text.
    /// Bad rows throw `RecordingError` (`file:line: …`), or are counted in `skipped` when skipping is enabled.
    func run(_ emit: (_ recvNs: Int64, _ frame: String) throws -> Void) throws -> ImportStats
}

private struct StopImport: Error {}

extension TradeImporter {
    /// The symbols and recv_ns of the first frame, found by importing until it.
    public func preview() throws -> (symbols: [String], firstRecvNs: Int64)? {
        var found: (symbols: [String], firstRecvNs: Int64)?
        do {
            _ = try run { ns, frame in
                if case .trades(let ts) = try FinnhubCodec.decode(frame) {
                    var seen: [String] = []
                    for t in ts where !seen.contains(t.symbol) { seen.append(t.symbol) }
                    found = (seen, ns)
                }
                throw StopImport()
            }
        } catch is StopImport {}
        return found
    }

    /// Imports into a new recording at `to` (`.gz` compresses). The header lists the symbols of the first frame
    /// and starts at its recv_ns. Without rotation the recording is written to a hidden temporary file next to
    /// `to` and renamed on success, so a failed import leaves no partial recording behind.
    @discardableResult
    public func convert(to output: String, rotation: RecordingWriter.Rotation = .none,
                        createdBy: String = "replaycore-import", overwrite: Bool = false) throws -> ImportStats {
        let first = try preview()
        let header = RecordingHeader(source: source, symbols: first?.symbols ?? [], startNs: first?.firstRecvNs ?? 0,
                                     createdBy: createdBy)
        guard rotation == .none else {
            let writer = try RecordingWriter(path: output, header: header, rotation: rotation, overwrite: overwrite)
            let stats = try run { ns, frame in try writer.append(recvNs: ns, frame: frame) }
            try writer.close()
            return stats
        }
        if !overwrite, FileManager.default.fileExists(atPath: output) {
            throw RecordingError(.io, path: output, "already exists; pass --overwrite to replace it")
        }
        let slash = output.lastIndex(of: "/")
        let dir = slash.map { String(output[...$0]) } ?? ""
        let name = slash.map { String(output[output.index(after: $0)...]) } ?? output
        let temporary = dir + "." + name + ".partial-\(UInt32.random(in: 0...UInt32.max))" + (output.hasSuffix(".gz") ? ".gz" : "")
        do {
            let writer = try RecordingWriter(path: temporary, header: header, rotation: .none)
            let stats = try run { ns, frame in try writer.append(recvNs: ns, frame: frame) }
            try writer.close()
            guard rename(temporary, output) == 0 else {
                throw RecordingError(.io, path: output, "cannot rename \(temporary) to it: \(String(cString: strerror(errno)))")
            }
            return stats
        } catch {
            unlink(temporary)
            throw error
        }
    }
}

// MARK: - Shared row helpers

struct Row {
    let p: UnsafePointer<UInt8>
    var fields: [Range<Int>] = []

    init(_ line: UnsafeBufferPointer<UInt8>, separator: UInt8 = UInt8(ascii: ",")) {
        p = line.baseAddress ?? UnsafePointer(bitPattern: 1)!
        var n = line.count
        if n > 0, p[n - 1] == 0x0D { n -= 1 }
        var s = 0
        for i in 0..<n where p[i] == separator { fields.append(s..<i); s = i + 1 }
        fields.append(s..<n)
    }

    func string(_ i: Int) -> String { String(decoding: UnsafeBufferPointer(start: p + fields[i].lowerBound, count: fields[i].count), as: UTF8.self) }
    func int(_ i: Int) -> Int64? { parseInt(p, fields[i]) }
    func double(_ i: Int) -> Double? { Double(string(i)).flatMap { $0.isFinite ? $0 : nil } }
}

func parseInt(_ p: UnsafePointer<UInt8>, _ r: Range<Int>) -> Int64? {
    var v: Int64 = 0, i = r.lowerBound
    let neg = i < r.upperBound && p[i] == UInt8(ascii: "-")
    if neg { i += 1 }
    guard i < r.upperBound else { return nil }
    while i < r.upperBound {
        let c = p[i]
        guard c >= 0x30, c <= 0x39 else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(c - 0x30))
        guard !o1, !o2 else { return nil }
        v = a; i += 1
    }
    return neg ? -v : v
}

/// Tracks counts and turns a bad row into an error or a skip.
struct RowPolicy {
    let path: String
    let skipBad: Bool
    var stats = ImportStats()

    mutating func bad(_ reason: String, line: Int, _ message: String) throws(RecordingError) {
        guard skipBad else { throw RecordingError(.invalidRow, path: path, line: line, message) }
        stats.skipped[reason, default: 0] += 1
    }
    mutating func skip(_ reason: String) { stats.skipped[reason, default: 0] += 1 }

    mutating func emit(_ ns: Int64, _ trades: [Trade], _ emit: (Int64, String) throws -> Void) rethrows {
        try emit(ns, FinnhubCodec.encodeTrades(trades))
        stats.framesWritten += 1; stats.tradesWritten += trades.count
    }
}

func openLines(_ path: String) throws(RecordingError) -> LineReader {
    do { return LineReader(try openInput(path: path)) } catch { throw RecordingReader.map(error, path: path, after: 0) }
}

func nextLine(_ r: LineReader, _ path: String) throws(RecordingError) -> UnsafeBufferPointer<UInt8>? {
    do { return try r.next() } catch { throw RecordingReader.map(error, path: path, after: r.lineNumber) }
}

func contains(_ hay: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
    guard let h = hay.baseAddress, !needle.isEmpty, hay.count >= needle.count else { return false }
    var i = 0
    let last = hay.count - needle.count
    while i <= last {
        guard let hit = memchr(h + i, Int32(needle[0]), last - i + 1) else { return false }
        let j = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - h
        if memcmp(h + j, needle, needle.count) == 0 { return true }
        i = j + 1
    }
    return false
}

func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

// MARK: - Tardis

/// Tardis.dev `trades` CSV (plain or .gz): `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`, µs.
/// Symbol → `<EXCHANGE>:<symbol>` where EXCHANGE is the exchange id up to its first `-`, upper-cased
/// (`binance-futures`,`BTCUSDT` → `BINANCE:BTCUSDT`). recv_ns = local_timestamp × 1000, t = timestamp / 1000;
/// consecutive rows with the same local_timestamp form one frame. Conditions are null.
public struct TardisTradesImporter: TradeImporter {
    public let path: String
    public let skipBad: Bool
    public var source: String { "tardis:" + fileName(path) }
    public init(path: String, skipBad: Bool = false) { self.path = path; self.skipBad = skipBad }

    public static func finnhubSymbol(exchange: String, symbol: String) -> String {
        (exchange.split(separator: "-").first.map { $0.uppercased() } ?? exchange.uppercased()) + ":" + symbol
    }

    public func run(_ emit: (Int64, String) throws -> Void) throws -> ImportStats {
        let lines = try openLines(path)
        guard let head = try nextLine(lines, path) else { throw RecordingError(.invalidRow, path: path, line: 1, "empty file, expected a CSV header") }
        let names = Row(head).fields.indices.map { Row(head).string($0) }
        var col: [String: Int] = [:]
        for want in ["exchange", "symbol", "timestamp", "local_timestamp", "price", "amount"] {
            guard let i = names.firstIndex(of: want) else {
                throw RecordingError(.invalidRow, path: path, line: 1, "CSV header has no \(want) column (expected exchange,symbol,timestamp,local_timestamp,id,side,price,amount)")
            }
            col[want] = i
        }
        let (cEx, cSym, cTs, cLts, cPx, cAmt) = (col["exchange"]!, col["symbol"]!, col["timestamp"]!, col["local_timestamp"]!, col["price"]!, col["amount"]!)
        let width = names.count
        var policy = RowPolicy(path: path, skipBad: skipBad)
        var group: [Trade] = [], groupNs: Int64 = .min
        var symbols: [String: String] = [:]
        while let line = try nextLine(lines, path) {
            let ln = lines.lineNumber
            if line.isEmpty { continue }
            policy.stats.rowsRead += 1
            let row = Row(line)
            guard row.fields.count == width else { try policy.bad("wrong column count", line: ln, "expected \(width) columns, found \(row.fields.count)"); continue }
            guard let ts = row.int(cTs) else { try policy.bad("bad timestamp", line: ln, "timestamp is not an integer: \(row.string(cTs))"); continue }
            guard let lts = row.int(cLts), lts >= 0, lts < Int64.max / 1000 else { try policy.bad("bad local_timestamp", line: ln, "local_timestamp is not an integer: \(row.string(cLts))"); continue }
            guard let px = row.double(cPx) else { try policy.bad("bad price", line: ln, "price is not a number: \(row.string(cPx))"); continue }
            guard let amt = row.double(cAmt) else { try policy.bad("bad amount", line: ln, "amount is not a number: \(row.string(cAmt))"); continue }
            let ns = lts * 1000
            guard ns >= groupNs else { try policy.bad("out of order", line: ln, "local_timestamp \(lts) is earlier than the previous row's"); continue }
            if ns != groupNs, !group.isEmpty { try policy.emit(groupNs, group, emit); group.removeAll(keepingCapacity: true) }
            groupNs = ns
            let key = row.string(cEx) + "," + row.string(cSym)
            let sym = symbols[key] ?? { let s = Self.finnhubSymbol(exchange: row.string(cEx), symbol: row.string(cSym)); symbols[key] = s; return s }()
            group.append(Trade(symbol: sym, price: px, timestamp: ts / 1000, volume: amt, conditions: nil))
        }
        if !group.isEmpty { try policy.emit(groupNs, group, emit) }
        return policy.stats
    }
}

// MARK: - Binance raw capture

/// Raw Binance WebSocket capture (plain or gzip): `<recv ns> <frame JSON>` per line, combined-stream
/// (`{"stream":…,"data":{…}}`) or bare. Only trade events (`"e":"trade"`) become frames, one per trade:
/// symbol `BINANCE:<s>`, p/q strings → numbers, t = T (ms), conditions null, recv_ns from the line.
/// Other lines are counted in `skipped` under `stream <name>` (or `not a stream frame`).
public struct BinanceRawImporter: TradeImporter {
    public let path: String
    public let skipBad: Bool
    public var source: String { "binance-raw:" + fileName(path) }
    public init(path: String, skipBad: Bool = false) { self.path = path; self.skipBad = skipBad }

    public func run(_ emit: (Int64, String) throws -> Void) throws -> ImportStats {
        let lines = try openLines(path)
        var policy = RowPolicy(path: path, skipBad: skipBad)
        var lastNs: Int64 = .min
        let tradeTag = Array(#""e":"trade""#.utf8), streamTag = Array(#"{"stream":""#.utf8)
        while let line = try nextLine(lines, path) {
            let ln = lines.lineNumber
            if line.isEmpty { continue }
            policy.stats.rowsRead += 1
            let p = line.baseAddress!, n = line.count
            guard let sp = memchr(p, 0x20, n).map({ UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self) - p }),
                  let ns = parseInt(p, 0..<sp) else {
                try policy.bad("no receive time", line: ln, "line does not start with `<receive ns> `"); continue
            }
            let json = UnsafeBufferPointer(start: p + sp + 1, count: n - sp - 1)
            guard contains(json, tradeTag) else {
                if json.starts(with: streamTag), let end = json.dropFirst(streamTag.count).firstIndex(of: UInt8(ascii: "\"")) {
                    policy.skip("stream " + String(decoding: json[streamTag.count..<end], as: UTF8.self))
                } else { policy.skip("not a stream frame") }
                continue
            }
            guard let obj = JSONValue.parse(UnsafeRawBufferPointer(json)) else {
                try policy.bad("invalid JSON", line: ln, "frame is not valid JSON"); continue
            }
            let d: JSONValue
            if case .object? = obj["data"] { d = obj["data"]! } else { d = obj }
            guard d["e"]?.string == "trade", let s = d["s"]?.string, let t = d["T"]?.int64,
                  let p = d["p"]?.string.flatMap(Double.init), let q = d["q"]?.string.flatMap(Double.init)
            else { try policy.bad("bad trade", line: ln, "trade event lacks s, T, or numeric p/q strings"); continue }
            guard ns >= lastNs else { try policy.bad("out of order", line: ln, "receive time \(ns) is earlier than the previous line's \(lastNs)"); continue }
            lastNs = ns
            try policy.emit(ns, [Trade(symbol: "BINANCE:" + s, price: p, timestamp: t, volume: q, conditions: nil)], emit)
        }
        return policy.stats
    }
}

// MARK: - LEAN

/// QuantConnect LEAN equity trade ticks: a zip holding `<yyyymmdd>_<symbol>_Trade_Tick.csv` with rows
/// `ms since midnight New York (wall clock), price × 10000, quantity, exchange, condition, suspicious`.
/// Symbol and date come from the CSV's name; time is converted America/New_York → UTC. Conditions are [].
/// Suspicious rows are skipped (counted as `suspicious`) unless `includeSuspicious`. Trades of the same
/// millisecond form one frame; recv_ns = trade time.
public struct LeanTickImporter: TradeImporter {
    public let path: String
    public let skipBad: Bool
    public let includeSuspicious: Bool
    public var source: String { "lean:" + fileName(path) }
    public init(path: String, includeSuspicious: Bool = false, skipBad: Bool = false) {
        self.path = path; self.includeSuspicious = includeSuspicious; self.skipBad = skipBad
    }

    public func run(_ emit: (Int64, String) throws -> Void) throws -> ImportStats {
        let zip: ZipArchive, input: ByteInput
        do { zip = try ZipArchive(path: path) } catch { throw RecordingReader.map(error, path: path, after: 0) }
        guard let entry = zip.entries.first(where: { $0.name.lowercased().hasSuffix("_trade_tick.csv") }) else {
            throw RecordingError(.invalidRow, path: path, "zip holds no *_Trade_Tick.csv entry")
        }
        let csvName = fileName(entry.name)
        let parts = csvName.split(separator: "_")
        guard parts.count >= 4, parts[0].count == 8, let ymd = Int(parts[0]) else {
            throw RecordingError(.invalidRow, path: path, "cannot read date and symbol from \(csvName) (expected yyyymmdd_symbol_Trade_Tick.csv)")
        }
        let symbol = parts[1..<(parts.count - 2)].joined(separator: "_").uppercased()
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "America/New_York")!
        let hourMs: [Int64] = (0..<24).map { h in
            let d = cal.date(from: DateComponents(year: ymd / 10000, month: ymd / 100 % 100, day: ymd % 100, hour: h))!
            return Int64((d.timeIntervalSince1970 * 1000).rounded())
        }
        do { input = try zip.open(entry) } catch { throw RecordingReader.map(error, path: path, after: 0) }
        let lines = LineReader(input)
        let where_ = path + "!" + csvName
        var policy = RowPolicy(path: where_, skipBad: skipBad)
        var group: [Trade] = [], groupMs: Int64 = .min
        while let line = try nextLine(lines, where_) {
            let ln = lines.lineNumber
            if line.isEmpty { continue }
            policy.stats.rowsRead += 1
            let row = Row(line)
            guard row.fields.count >= 3 else { try policy.bad("wrong column count", line: ln, "expected 6 columns, found \(row.fields.count)"); continue }
            guard let ms = row.int(0), ms >= 0, ms < 86_400_000 else { try policy.bad("bad time", line: ln, "time is not milliseconds within the day: \(row.string(0))"); continue }
            guard let px = row.int(1), px >= 0 else { try policy.bad("bad price", line: ln, "price is not an integer: \(row.string(1))"); continue }
            guard let qty = row.int(2) else { try policy.bad("bad quantity", line: ln, "quantity is not an integer: \(row.string(2))"); continue }
            if row.fields.count >= 6, let s = row.int(5), s != 0, !includeSuspicious { policy.skip("suspicious"); continue }
            let t = hourMs[Int(ms / 3_600_000)] + ms % 3_600_000
            guard t >= groupMs else { try policy.bad("out of order", line: ln, "time \(ms) is earlier than the previous row's"); continue }
            if t != groupMs, !group.isEmpty { try policy.emit(groupMs * 1_000_000, group, emit); group.removeAll(keepingCapacity: true) }
            groupMs = t
            group.append(Trade(symbol: symbol, price: Double(px) / 10000, timestamp: t, volume: Double(qty), conditions: []))
        }
        if !group.isEmpty { try policy.emit(groupMs * 1_000_000, group, emit) }
        return policy.stats
    }
}
