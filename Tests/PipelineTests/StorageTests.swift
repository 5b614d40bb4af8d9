@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

func makeTempDir() throws -> String {
    let p = NSTemporaryDirectory() + "aggcore-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return StoragePaths.standardize(p)
}

func allFiles(_ root: String) -> [String] {
    (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).sorted()
}

@Suite struct StorageTests {
    static let hostile = ["../x", "/etc/passwd", "a b", "BINANCE:BTCUSDT", "IC MARKETS:1", "ünïcødé€", "日本株", "\u{0}nul", "tab\there",
                          String(repeating: "A", count: 10_000), String(repeating: "A", count: 9_999) + "B", String(repeating: "é", count: 60),
                          "", ".", "..", "...", ".hidden", "trail.", "a\\b", "CON", "con.txt", "COM1", "LPT9.x", "%2F", "%", "%empty", "AAPL", "aapl",
                          "x/../../y", "~", "A~b"]

    @Test func safeComponents() throws {
        let names = Self.hostile.map(SafeFileName.component(for:))
        #expect(Set(names).count == names.count)
        for (s, n) in zip(Self.hostile, names) {
            #expect(!n.isEmpty && n != "." && n != ".." && !n.hasPrefix(".") && !n.hasSuffix("."), "\(s) -> \(n)")
            #expect(n.utf8.count <= SafeFileName.maxBytes)
            #expect(n.utf8.allSatisfy { (0x21...0x7E).contains($0) && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: ":") })
            #expect(!SafeFileName.reserved.contains(n.split(separator: ".").first.map { String($0).uppercased() } ?? ""))
        }
        #expect(SafeFileName.component(for: "BINANCE:BTCUSDT") == "BINANCE%3ABTCUSDT")
        #expect(SafeFileName.component(for: "..") == "%2E%2E")
        #expect(SafeFileName.component(for: "BRK.B") == "BRK.B")
        #expect(SafeFileName.component(for: "CON") == "%43ON")
        #expect(SafeFileName.component(for: String(repeating: "A", count: 10_000)).contains("~"))
        #expect(SafeFileName.fnv1a64("a".utf8) == 0xaf63_dc4c_8601_ec8c)
    }

    @Test func pathsStayInsideRoot() throws {
        let root = "/data/root"
        var seen = Set<String>()
        let batch = BatchId(topic: "trades", partition: 3, firstOffset: 100, lastOffset: 199)
        for s in Self.hostile {
            let p = try StoragePaths.path(root: root, topic: "trades", eventMs: 1_700_000_000_000, symbol: s, batch: batch, gzip: true)
            #expect(p.hasPrefix(root + "/trades/2023-11-14/"), "\(p)")
            #expect(p.hasSuffix("/trades-p3-100-199.jsonl.gz"))
            #expect(p.split(separator: "/").count == 6)
            seen.insert(p)
        }
        #expect(seen.count == Self.hostile.count)
        #expect(try StoragePaths.path(root: root, topic: "..", eventMs: 0, symbol: "..", batch: batch).hasPrefix(root + "/%2E%2E/1970-01-01/%2E%2E/"))
        #expect(throws: StorageError.self) { try StoragePaths.checkedInside(root: root, root + "/a/../../etc") }
        #expect(throws: StorageError.self) { try StoragePaths.checkedInside(root: root, root + "/.") }
        #expect(throws: StorageError.self) { try StoragePaths.checkedInside(root: root, "/data/rootX/a") }
        #expect(StoragePaths.dateUTC(eventMs: -1) == "1969-12-31")
        #expect(StoragePaths.dateUTC(eventMs: 951_782_400_000) == "2000-02-29")
        #expect(StoragePaths.days(fromDate: "2000-02-29") == 11_016)
        #expect(StoragePaths.days(fromDate: "2001-02-29") == nil && StoragePaths.days(fromDate: "2001-2-01") == nil)
    }

    @Test func batchNames() {
        let b = BatchId(topic: "market-trades.v1", partition: 12, firstOffset: 0, lastOffset: 4_999)
        #expect(b.fileName() == "market-trades.v1-p12-0-4999.jsonl")
        #expect(BatchId.parse(fileName: b.fileName(gzip: true)) == b)
        #expect(BatchId.parse(fileName: ".x-p1-2-3.jsonl") == nil)
        #expect(BatchId.parse(fileName: "x-p1-5-3.jsonl") == nil)
        #expect(BatchId.parse(fileName: "x-1-2-3.jsonl") == nil)
    }

    @Test func atomicWriterAndOffsets() throws {
        let root = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let b1 = BatchId(topic: "trades", partition: 0, firstOffset: 0, lastOffset: 99)
        let p1 = try StoragePaths.path(root: root, topic: "trades", eventMs: 1_700_000_000_000, symbol: "../AAPL", batch: b1)
        try AtomicFileWriter.write(Array("one\n".utf8), to: p1)
        try AtomicFileWriter.write(Array("two\n".utf8), to: p1)
        #expect(FileManager.default.contents(atPath: p1) == Data("two\n".utf8))
        let b2 = BatchId(topic: "trades", partition: 1, firstOffset: 50, lastOffset: 70)
        let payload = Array(String(repeating: "{\"symbol\":\"X\"}\n", count: 1_000).utf8)
        let p2 = try StoragePaths.path(root: root, topic: "trades", eventMs: 0, symbol: "X", batch: b2, gzip: true)
        try AtomicFileWriter.write(payload, to: p2, gzip: true)
        let gz = try #require(FileManager.default.contents(atPath: p2))
        #expect(gz.count < payload.count && gz.prefix(2) == Data([0x1f, 0x8b]))
        #expect(try Gzip.decompress(Array(gz)) == payload)
        #expect(try Gzip.decompress(Gzip.compress([])) == [])
        let b3 = BatchId(topic: "trades", partition: 0, firstOffset: 100, lastOffset: 150)
        try AtomicFileWriter.write([], to: try StoragePaths.path(root: root, topic: "trades", eventMs: 0, symbol: "Y", batch: b3))
        try AtomicFileWriter.write([], to: root + "/other/x/other-p0-0-999.jsonl")
        #expect(!allFiles(root).contains { $0.contains(".tmp-") })
        #expect(allFiles(root).filter { $0.hasSuffix(".jsonl") || $0.hasSuffix(".gz") }.count == 4)
        #expect(StoredOffsets.highest(under: root, topic: "trades") == [0: 150, 1: 70])
        #expect(StoredOffsets.highest(under: root) == [0: 999, 1: 70])
        #expect(throws: StorageError.self) { try AtomicFileWriter.write([], to: p1 + "/sub") }
    }

    @Test func retentionDeletesOnlyOld() throws {
        let root = try makeTempDir(), outside = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: outside) }
        let day: Int64 = 86_400_000, now: Int64 = 1_700_000_000_000
        let victim = outside + "/1999-01-01"
        try AtomicFileWriter.write([1], to: victim + "/keep-p0-0-1.jsonl")
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: outside)
        var old: [String] = [], fresh: [String] = []
        for (age, symbol) in [(0, "A"), (6, "B"), (7, "C"), (8, "D"), (30, "E")] {
            let b = BatchId(topic: "trades", partition: 0, firstOffset: Int64(age), lastOffset: Int64(age))
            let p = try StoragePaths.path(root: root, topic: "trades", eventMs: now - Int64(age) * day, symbol: symbol, batch: b)
            try AtomicFileWriter.write([0], to: p)
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: Double(now - Int64(age) * day + 60_000) / 1000)], ofItemAtPath: p)
            if age > 7 { old.append(p) } else { fresh.append(p) }
        }
        let oldDir = URL(fileURLWithPath: old[0]).deletingLastPathComponent().deletingLastPathComponent().path
        try Data().write(to: URL(fileURLWithPath: oldDir + "/README.txt"))
        try FileManager.default.createSymbolicLink(atPath: root + "/trades/1999-01-01", withDestinationPath: victim)
        let removed = try Retention.deleteFiles(olderThanDays: 7, under: root, now: Date(timeIntervalSince1970: Double(now) / 1000))
        for p in old { #expect(removed.contains(p) && !FileManager.default.fileExists(atPath: p)) }
        for p in fresh { #expect(FileManager.default.fileExists(atPath: p)) }
        #expect(removed.allSatisfy { $0.hasPrefix(root + "/trades/") })
        #expect(FileManager.default.fileExists(atPath: oldDir + "/README.txt"))
        #expect(FileManager.default.fileExists(atPath: victim + "/keep-p0-0-1.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: URL(fileURLWithPath: old[1]).deletingLastPathComponent().deletingLastPathComponent().path))
    }
}
