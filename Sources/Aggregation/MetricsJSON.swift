import MarketData

/// Minimal deterministic JSON object writer (no Foundation encoders).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity); bytes.append(UInt8(ascii: "{")) }

    mutating func finish() -> [UInt8] { bytes.append(UInt8(ascii: "}")); return bytes }

    private mutating func key(_ k: StaticString) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
        bytes.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    mutating func string(_ k: StaticString, _ v: String) { key(k); JSONWriter.appendString(v, to: &bytes) }
    mutating func int(_ k: StaticString, _ v: Int64) { key(k); bytes.append(contentsOf: String(v).utf8) }
    mutating func int(_ k: StaticString, _ v: Int) { key(k); bytes.append(contentsOf: String(v).utf8) }
    mutating func number(_ k: StaticString, _ v: Double?) {
        key(k)
        if let v { JSONOutput.appendNumber(v, to: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
    }

    static func appendString(_ s: String, to out: inout [UInt8]) { JSONOutput.appendString(s, to: &out) }
}
