/// Writes JSON tokens through a raw pointer into space reserved up front by ``JSONWriter/append(to:maxBytes:_:)``.
struct JSONWriter {
    private(set) var cursor: UnsafeMutablePointer<UInt8>

    /// Upper bound of bytes any ``number(_:)`` writes.
    static let maxNumberBytes = 32
    /// Upper bound of bytes ``string(_:)`` writes for `s`.
    @inline(__always) static func maxBytes(_ s: String) -> Int { 2 + 6 * s.utf8.count }
    /// Upper bound of bytes ``conditions(_:)`` writes.
    @inline(__always) static func maxBytes(_ conditions: [String]?) -> Int {
        guard let conditions else { return 4 }
        var n = 2
        for c in conditions { n += 1 + maxBytes(c) }
        return n
    }

    /// Runs `body` on room for `maxBytes` bytes at the end of `buffer`, keeping only what it wrote.
    @inline(__always)
    static func append(to buffer: inout [UInt8], maxBytes: Int, _ body: (inout JSONWriter) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxBytes) { scratch in
            var writer = JSONWriter(cursor: scratch.baseAddress!)
            body(&writer)
            buffer.append(contentsOf: UnsafeBufferPointer(start: scratch.baseAddress!, count: writer.cursor - scratch.baseAddress!))
        }
    }

    @inline(__always) mutating func byte(_ b: UInt8) {
        cursor.initialize(to: b)
        cursor += 1
    }

    @inline(__always) mutating func literal(_ s: StaticString) {
        cursor.update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        cursor += s.utf8CodeUnitCount
    }

    @inline(__always) private mutating func raw(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        cursor.update(from: base, count: bytes.count)
        cursor += bytes.count
    }

    mutating func integer(_ value: Int64) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        unsigned(value.magnitude)
    }

    @inline(__always) private mutating func unsigned(_ value: UInt64) {
        let count = Self.decimalDigits(value)
        var v = value
        Self.writeDigits(&v, count: count, endingAt: cursor + count)
        cursor += count
    }

    /// How many decimal digits `value` has (1 for 0).
    @inline(__always) static func decimalDigits(_ value: UInt64) -> Int {
        // floor(log10) estimated from the bit length, then corrected by one comparison.
        let v = value | 1
        let guess = ((64 - v.leadingZeroBitCount) &* 1233) >> 12
        return guess &+ (v >= decimalPowerOfTen(guess) ? 1 : 0)
    }

    /// Writes the low `count` decimal digits of `value` (zero-padded), two at a time, the last one just
    /// before `end`, and leaves in `value` what is above them.
    @inline(__always) private static func writeDigits(_ value: inout UInt64, count: Int, endingAt end: UnsafeMutablePointer<UInt8>) {
        var p = end
        var left = count
        let pairs = digitPairs.utf8Start
        while left >= 2 {
            let r = Int(truncatingIfNeeded: value % 100)
            value /= 100
            p -= 2
            UnsafeMutableRawPointer(p).storeBytes(of: UnsafeRawPointer(pairs + 2 &* r).loadUnaligned(as: UInt16.self), as: UInt16.self)
            left -= 2
        }
        if left == 1 {
            p -= 1
            p.initialize(to: UInt8(truncatingIfNeeded: value % 10) &+ 0x30)
            value /= 10
        }
    }

    private static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// Writes the shortest decimal that round-trips: integral values below 2^53 without a fraction,
    /// others as Swift's `description` prints them. Non-finite values, which JSON cannot hold, become `null`.
    mutating func number(_ x: Double) {
        guard x.isFinite else { literal("null"); return }
        let m = x.magnitude
        if m < 9_007_199_254_740_992 {
            let whole = Int64(x)
            if Double(whole) == x {
                integer(whole)
                return
            }
        }
        if m >= 1e-3, m < 1_073_741_824 {
            var scale = 1.0
            for decimals in 1...9 {
                scale *= 10
                guard m.ulp * scale < 1 else { break }
                // m · 10^d rounded half away from zero: below 2^53 here, so its integer part is exact.
                let product = m * scale
                var n = UInt64(product)
                if product - Double(n) >= 0.5 { n += 1 }
                if Double(n) / scale == m {
                    if x < 0 { byte(UInt8(ascii: "-")) }
                    let intDigits = Swift.max(1, Self.decimalDigits(n) - decimals)
                    let end = cursor + intDigits + 1 + decimals
                    Self.writeDigits(&n, count: decimals, endingAt: end)
                    (end - decimals - 1).initialize(to: UInt8(ascii: "."))
                    Self.writeDigits(&n, count: intDigits, endingAt: end - decimals - 1)
                    cursor = end
                    return
                }
            }
        }
        var text = x.description
        text.withUTF8 { raw($0) }
    }

    /// Writes a quoted JSON string, escaping `"`, `\` and control characters (as `\u00XX`).
    mutating func string(_ s: String) {
        byte(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let c = utf8[i]
                guard c < 0x20 || c == 0x22 || c == 0x5C else { continue }
                raw(UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                switch c {
                case 0x22: literal("\\\"")
                case 0x5C: literal("\\\\")
                default:
                    literal("\\u00")
                    byte(Self.hexDigit(c >> 4))
                    byte(Self.hexDigit(c & 0xF))
                }
                runStart = i + 1
            }
            raw(UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        byte(UInt8(ascii: "\""))
    }

    /// Writes `null` or an array of strings.
    mutating func conditions(_ conditions: [String]?) {
        guard let conditions else { literal("null"); return }
        byte(UInt8(ascii: "["))
        for i in conditions.indices {
            if i > 0 { byte(UInt8(ascii: ",")) }
            string(conditions[i])
        }
        byte(UInt8(ascii: "]"))
    }

    @inline(__always) private static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? v + 0x30 : v + 0x57 }

    /// Appends one number (see ``number(_:)``).
    static func number(_ x: Double, to buffer: inout [UInt8]) {
        append(to: &buffer, maxBytes: maxNumberBytes) { $0.number(x) }
    }
}

/// The project's one way of writing JSON numbers and strings, shared by every encoder so
/// that the same value always gives the same bytes.
public enum JSONOutput {
    /// The shortest decimal that round-trips; integral values below 2^53 without a fraction;
    /// `null` for NaN and infinities.
    public static func number(_ x: Double) -> String {
        var buffer: [UInt8] = []
        JSONWriter.number(x, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    public static func appendNumber(_ x: Double, to buffer: inout [UInt8]) { JSONWriter.number(x, to: &buffer) }

    /// `s` as a JSON string literal, quotes included (see ``appendString(_:to:)``).
    public static func quoted(_ s: String) -> String {
        var buffer: [UInt8] = []
        appendString(s, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Appends `s` quoted, escaping `"`, `\` and control characters.
    public static func appendString(_ s: String, to buffer: inout [UInt8]) {
        JSONWriter.append(to: &buffer, maxBytes: JSONWriter.maxBytes(s)) { $0.string(s) }
    }
}
