import MarketData
import Foundation

/// A seek index of a recording: every `stride`-th frame's line, byte offset (uncompressed), receive time
/// and the number of trades before it, plus where each gzip member starts. Kept next to the recording as
/// `FILE.idx` (text, one entry per line) and used only while it matches the file's size.
///
/// With it a seek reads at most `stride` frames: a plain file is read from the entry's offset directly, a
/// gzip file from the last member before it (a recording written by `replay record` has a member per
/// second of flushes; one written in one piece is inflated from the start).
public struct RecordingIndex: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var offset: Int
        public var recvNs: Int64
        /// Trades in the frames before this one.
        public var tradesBefore: Int
    }
    public struct Member: Sendable, Equatable {
        public var compressed: Int
        public var uncompressed: Int
    }

    public static let defaultStride = 1024
    public var stride: Int
    public var entries: [Entry]
    public var members: [Member]
    public var frames: Int
    public var trades: Int
    public var firstRecvNs: Int64?
    public var lastRecvNs: Int64?
    /// Size of the recording file the index was built from.
    public var fileSize: Int

    /// The sidecar path of `recording`.
    public static func sidecar(of recording: String) -> String { recording + ".idx" }

    /// Reads the whole recording once (frames decoded to count trades). Bad lines are passed over.
    public static func build(path: String, stride: Int = defaultStride) throws(RecordingError) -> RecordingIndex {
        let reader = try RecordingReader(path: path, skipBad: true, validateFrames: false)
        var index = RecordingIndex(stride: max(1, stride), entries: [], members: [], frames: 0, trades: 0, fileSize: Self.size(path))
        while let raw = try reader.nextRaw(checkUTF8: false) {
            if index.frames % index.stride == 0 {
                index.entries.append(Entry(line: raw.line, offset: reader.lastFrameOffset, recvNs: raw.recvNs, tradesBefore: index.trades))
            }
            if index.firstRecvNs == nil { index.firstRecvNs = raw.recvNs }
            index.lastRecvNs = raw.recvNs
            index.frames += 1
            index.trades += Self.tradeCount(raw.bytes)
        }
        index.members = reader.gzipMembers
        return index
    }

    /// Trades in one frame (0 for anything that is not a trade frame or does not decode).
    public static func tradeCount(_ frame: UnsafeBufferPointer<UInt8>) -> Int {
        guard case .trades(let t)? = try? FinnhubCodec.decode(UnsafeRawBufferPointer(frame)) else { return 0 }
        return t.count
    }

    /// The last entry at or before receive time `recvNs` (the first entry when it is earlier than all).
    public func entry(atOrBefore recvNs: Int64) -> Entry? {
        guard !entries.isEmpty else { return nil }
        var lo = 0, hi = entries.count - 1
        if entries[0].recvNs >= recvNs { return entries[0] }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if entries[mid].recvNs < recvNs { lo = mid } else { hi = mid - 1 }
        }
        return entries[lo]
    }

    /// The last entry at or before line `line`.
    public func entry(atOrBeforeLine line: Int) -> Entry? {
        guard let i = entries.lastIndex(where: { $0.line <= line }) else { return entries.first }
        return entries[i]
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? -1
    }

    /// The sidecar of `recording` when it exists and matches the file; nil otherwise.
    public static func load(for recording: String) -> RecordingIndex? {
        guard let text = try? String(contentsOfFile: sidecar(of: recording), encoding: .utf8) else { return nil }
        var lines = text.split(separator: "\n").makeIterator()
        guard let head = lines.next()?.split(separator: " ").map(String.init), head.count == 8, head[0] == "marketstream-index-1",
              let stride = Int(head[1]), let frames = Int(head[2]), let trades = Int(head[3]), let size = Int(head[4]),
              size == Self.size(recording) else { return nil }
        var index = RecordingIndex(stride: stride, entries: [], members: [], frames: frames, trades: trades,
                                   firstRecvNs: Int64(head[5]), lastRecvNs: Int64(head[6]), fileSize: size)
        let memberCount = Int(head[7]) ?? 0
        for _ in 0..<memberCount {
            guard let m = lines.next()?.split(separator: " "), m.count == 2, let c = Int(m[0]), let u = Int(m[1]) else { return nil }
            index.members.append(Member(compressed: c, uncompressed: u))
        }
        while let l = lines.next() {
            let f = l.split(separator: " ")
            guard f.count == 4, let line = Int(f[0]), let offset = Int(f[1]), let recv = Int64(f[2]), let before = Int(f[3]) else { return nil }
            index.entries.append(Entry(line: line, offset: offset, recvNs: recv, tradesBefore: before))
        }
        return index
    }

    /// Writes the sidecar next to `recording` (through a temporary file and a rename).
    public func write(for recording: String) throws {
        var out = "marketstream-index-1 \(stride) \(frames) \(trades) \(fileSize) \(firstRecvNs.map(String.init) ?? "-") \(lastRecvNs.map(String.init) ?? "-") \(members.count)\n"
        for m in members { out += "\(m.compressed) \(m.uncompressed)\n" }
        for e in entries { out += "\(e.line) \(e.offset) \(e.recvNs) \(e.tradesBefore)\n" }
        let path = Self.sidecar(of: recording)
        let tmp = path + ".tmp-\(UInt32.random(in: 0...UInt32.max))"
        try Data(out.utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw RecordingError(.io, path: path, "cannot write the index: \(String(cString: strerror(errno)))")
        }
    }
}
