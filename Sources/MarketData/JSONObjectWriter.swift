/// A flat JSON object written member by member, keys in call order, values through ``JSONOutput``
/// (so a number or string always gives the same bytes as everywhere else).
public struct JSONObjectWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity); bytes.append(UInt8(ascii: "{")) }

    public mutating func finish() -> [UInt8] { bytes.append(UInt8(ascii: "}")); return bytes }

    private mutating func key(_ k: StaticString) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
        bytes.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    public mutating func string(_ k: StaticString, _ v: String) { key(k); JSONOutput.appendString(v, to: &bytes) }
    public mutating func int(_ k: StaticString, _ v: Int64) { key(k); bytes.append(contentsOf: String(v).utf8) }
    public mutating func int(_ k: StaticString, _ v: Int) { key(k); bytes.append(contentsOf: String(v).utf8) }
    public mutating func number(_ k: StaticString, _ v: Double?) {
        key(k)
        if let v { JSONOutput.appendNumber(v, to: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
    }
    public mutating func string(_ k: StaticString, _ v: String?) {
        if let v { string(k, v) } else { null(k) }
    }
    public mutating func bool(_ k: StaticString, _ v: Bool) { key(k); bytes.append(contentsOf: (v ? "true" : "false").utf8) }
    public mutating func null(_ k: StaticString) { key(k); bytes.append(contentsOf: "null".utf8) }
    /// `v` must already be one JSON value (an object from another writer, a validated document).
    public mutating func raw(_ k: StaticString, _ v: [UInt8]) { key(k); bytes.append(contentsOf: v) }
    /// An array of JSON values, each already encoded.
    public mutating func array(_ k: StaticString, _ items: [[UInt8]]) {
        key(k)
        bytes.append(UInt8(ascii: "["))
        for (i, item) in items.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: item)
        }
        bytes.append(UInt8(ascii: "]"))
    }
}
