import MarketData
/// A little-endian binary encoding for checkpointed state: fixed-width integers, doubles as
/// their IEEE-754 bits (restored exactly), strings as a length and UTF-8 bytes.
public struct StateWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func int(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func int(_ v: Int) { int(Int64(v)) }
    public mutating func int32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func double(_ v: Double) { int(Int64(bitPattern: v.bitPattern)) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        int(utf8.count)
        bytes.append(contentsOf: utf8)
    }
}

/// Reads what ``StateWriter`` wrote; every read throws ``StateDecodingError`` instead of
/// trapping on truncated or corrupt input.
public struct StateReader: Sendable {
    private let bytes: [UInt8]
    private var at = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var isAtEnd: Bool { at == bytes.count }

    private mutating func take(_ n: Int) throws(StateDecodingError) -> ArraySlice<UInt8> {
        guard n >= 0, bytes.count - at >= n else { throw StateDecodingError(reason: "truncated at byte \(at) (needs \(n) more of \(bytes.count))") }
        defer { at += n }
        return bytes[at..<(at + n)]
    }
    public mutating func int() throws(StateDecodingError) -> Int64 {
        var v: UInt64 = 0
        for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return Int64(bitPattern: v)
    }
    public mutating func count() throws(StateDecodingError) -> Int {
        let v = try int()
        guard v >= 0, v <= Int64(bytes.count) else { throw StateDecodingError(reason: "invalid count \(v) at byte \(at - 8)") }
        return Int(v)
    }
    public mutating func int32() throws(StateDecodingError) -> Int32 {
        var v: UInt32 = 0
        for (i, b) in try take(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
        return Int32(bitPattern: v)
    }
    public mutating func double() throws(StateDecodingError) -> Double { Double(bitPattern: UInt64(bitPattern: try int())) }
    public mutating func bool() throws(StateDecodingError) -> Bool { try take(1).first! != 0 }
    public mutating func string() throws(StateDecodingError) -> String {
        let n = try count()
        guard let s = String(validating: try take(n), as: UTF8.self) else { throw StateDecodingError(reason: "invalid UTF-8 at byte \(at - n)") }
        return s
    }
}

public struct StateDecodingError: Error, Equatable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "corrupt checkpoint: \(reason)" }
}
