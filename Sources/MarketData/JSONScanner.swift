#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A scanning failure: what went wrong and at which byte.
struct JSONScanError: Error {
    var reason: String
    var offset: Int
}

/// A scanned JSON number token.
struct JSONNumber: Equatable {
    var start: Int
    var end: Int
    var negative: Bool
    var mantissa: UInt64
    var exponent: Int
    var truncated: Bool
    var isIntegerSyntax: Bool
}

private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// 10^i as an integer, for i in 0...19 (the scanner's digit groups and the writer's digit counts).
@inline(__always) func decimalPowerOfTen(_ i: Int) -> UInt64 {
    switch i {
    case 0: 1
    case 1: 10
    case 2: 100
    case 3: 1_000
    case 4: 10_000
    case 5: 100_000
    case 6: 1_000_000
    case 7: 10_000_000
    case 8: 100_000_000
    case 9: 1_000_000_000
    case 10: 10_000_000_000
    case 11: 100_000_000_000
    case 12: 1_000_000_000_000
    case 13: 10_000_000_000_000
    case 14: 100_000_000_000_000
    case 15: 1_000_000_000_000_000
    case 16: 10_000_000_000_000_000
    case 17: 100_000_000_000_000_000
    case 18: 1_000_000_000_000_000_000
    default: 10_000_000_000_000_000_000
    }
}

private let maxNestingDepth = 512

/// A strict RFC 8259 pull scanner over UTF-8 bytes. It never copies the input.
package struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    var pos = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always) mutating func skipWhitespace() {
        if pos < bytes.count, bytes[pos] > 0x20 { return }
        while pos < bytes.count {
            let c = bytes[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    /// The next non-whitespace byte, not consumed.
    @inline(__always) mutating func peek() -> UInt8? {
        skipWhitespace()
        return pos < bytes.count ? bytes[pos] : nil
    }

    /// Describes the value or token at the current position, e.g. "a string".
    /// What stands where a JSON object was expected, for an error: the JSON value's kind, or
    /// `not JSON: starts with '…'` with its first bytes (control characters escaped).
    func foundInsteadOfObject() -> String {
        guard pos < bytes.count else { return "end of input" }
        for (literal, kind) in [("true", "a boolean"), ("false", "a boolean"), ("null", "null")] {
            let n = literal.utf8.count
            if bytes.count - pos >= n, bytes[pos..<(pos + n)].elementsEqual(literal.utf8),
               pos + n == bytes.count || [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos + n]) { return kind }
        }
        switch bytes[pos] {
        case UInt8(ascii: "\""), UInt8(ascii: "["), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return found()
        default:
            let head = bytes[pos..<min(bytes.count, pos + 24)]
            var text = ""
            for b in head {
                switch b {
                case 0x20...0x7E where b != UInt8(ascii: "'") && b != UInt8(ascii: "\\"): text.unicodeScalars.append(Unicode.Scalar(b))
                default: text += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
                }
            }
            return "not JSON: starts with '\(text)'" + (bytes.count - pos > head.count ? "…" : "")
        }
    }

    func found() -> String {
        guard pos < bytes.count else { return "end of input" }
        let c = bytes[pos]
        switch c {
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(c)))'"
        default: return "byte 0x" + String(c, radix: 16, uppercase: true)
        }
    }

    func unexpected(_ expected: String) -> JSONScanError {
        JSONScanError(reason: "expected \(expected), found \(found())", offset: pos)
    }

    /// Requires that only whitespace remains.
    mutating func expectEnd() throws(JSONScanError) {
        skipWhitespace()
        guard pos == bytes.count else {
            throw JSONScanError(reason: "unexpected \(found()) after the end of the JSON value", offset: pos)
        }
    }

    /// Consumes `{`; returns false when the object is empty (its `}` consumed too).
    mutating func enterObject() throws(JSONScanError) -> Bool {
        guard peek() == UInt8(ascii: "{") else { throw unexpected("an object") }
        pos += 1
        guard peek() == UInt8(ascii: "}") else { return true }
        pos += 1
        return false
    }

    /// After a member value: consumes `,` (true) or `}` (false).
    mutating func nextMember() throws(JSONScanError) -> Bool {
        switch peek() {
        case UInt8(ascii: ","): pos += 1; return true
        case UInt8(ascii: "}"): pos += 1; return false
        default: throw unexpected("',' or '}'")
        }
    }

    /// Consumes `[`; returns false when the array is empty (its `]` consumed too).
    mutating func enterArray() throws(JSONScanError) -> Bool {
        guard peek() == UInt8(ascii: "[") else { throw unexpected("an array") }
        pos += 1
        guard peek() == UInt8(ascii: "]") else { return true }
        pos += 1
        return false
    }

    /// After an element: consumes `,` (true) or `]` (false).
    mutating func nextElement() throws(JSONScanError) -> Bool {
        switch peek() {
        case UInt8(ascii: ","): pos += 1; return true
        case UInt8(ascii: "]"): pos += 1; return false
        default: throw unexpected("',' or ']'")
        }
    }

    /// Consumes `null` if it is next.
    mutating func consumeNull() -> Bool {
        guard peek() == UInt8(ascii: "n"), matchLiteral("null") else { return false }
        return true
    }

    private mutating func matchLiteral(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard bytes.count - pos >= n else { return false }
        for i in 0..<n where bytes[pos + i] != literal.utf8Start[i] { return false }
        pos += n
        return true
    }

    /// Consumes `literal` if the bytes at the current position, with no whitespace skipped, are
    /// exactly it. Compares 8 bytes at a time (masked in the last group) where the input has
    /// that many left, byte by byte near its end.
    @inline(__always)
    mutating func consumeExactly(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard let base = bytes.baseAddress, n > 0, bytes.count - pos >= (n + 7) & ~7 else { return matchLiteral(literal) }
        var offset = 0
        while offset < n {
            let count = min(8, n - offset)
            var word: UInt64 = 0
            for k in 0..<count { word |= UInt64(literal.utf8Start[offset + k]) << (8 * UInt64(k)) }
            let mask: UInt64 = count == 8 ? ~0 : (1 << (8 * UInt64(count))) &- 1
            guard base.loadUnaligned(fromByteOffset: pos + offset, as: UInt64.self) & mask == word else { return false }
            offset += 8
        }
        pos += n
        return true
    }

    /// Reads an object key and its `:`; `classify` sees the key's unescaped UTF-8 bytes.
    @inline(__always)
    mutating func readKey<K>(_ classify: (UnsafeRawBufferPointer) -> K) throws(JSONScanError) -> K {
        guard peek() == UInt8(ascii: "\"") else { throw unexpected("a string key") }
        let start = pos + 1
        if start + 2 < bytes.count, bytes[start + 1] == UInt8(ascii: "\""), bytes[start + 2] == UInt8(ascii: ":") {
            let c = bytes[start]
            if c >= 0x20, c < 0x80, c != UInt8(ascii: "\\"), c != UInt8(ascii: "\"") {
                pos = start + 3
                return classify(UnsafeRawBufferPointer(rebasing: bytes[start..<start + 1]))
            }
        }
        var i = plainRunEnd(from: start)
        var key: K
        while true {
            guard i < bytes.count else { throw JSONScanError(reason: "unterminated string", offset: start - 1) }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                key = classify(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
                pos = i + 1
                break
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 {
                var decoded = try readString()
                key = decoded.withUTF8 { classify(UnsafeRawBufferPointer($0)) }
                break
            }
            i += 1
        }
        guard peek() == UInt8(ascii: ":") else { throw unexpected("':'") }
        pos += 1
        return key
    }

    /// The index of the first byte from `i` on that is `"`, `\`, a control character or not ASCII
    /// (`bytes.count` if none): where a string's plain ASCII run ends. Reads 8 bytes at a time.
    @inline(__always)
    func plainRunEnd(from start: Int) -> Int {
        var i = start
        let end = bytes.count
        guard let base = bytes.baseAddress else { return i }
        let ones: UInt64 = 0x0101_0101_0101_0101
        while end - i >= 8 {
            let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
            // Per byte: zero-byte tests for the quote and the backslash, below 0x20, high bit. A
            // borrow can only leave a byte that tested true, so the lowest set bit is exact.
            let special = (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
                | ((w &- ones &* 0x20) & ~w) | w) & (ones &* 0x80)
            if special != 0 { return i + special.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < end {
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { return i }
            i += 1
        }
        return i
    }

    /// Reads a string value, validating escapes and UTF-8.
    @inline(__always)
    mutating func readString() throws(JSONScanError) -> String {
        var none: [SeenString] = []
        return try readString(reusingAny: &none, limit: 0)
    }

    /// A string value already built from this input, and where its bytes (between the quotes) are.
    struct SeenString {
        var start: Int
        var count: Int
        var value: String
    }

    /// Reads a string value, validating escapes and UTF-8, returning the value of an element of
    /// `recent` when its bytes are exactly that element's (no escapes); a new string is added to
    /// `recent` while it holds fewer than `limit`. So the symbols of a frame are built once each.
    mutating func readString(reusingAny recent: inout [SeenString], limit: Int) throws(JSONScanError) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw unexpected("a string") }
        let start = pos + 1
        var i = plainRunEnd(from: start)
        var high: UInt8 = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                let count = i - start
                for k in recent.indices where recent[k].count == count && count > 0 && equalBytes(start, recent[k].start, count) {
                    pos = i + 1
                    return recent[k].value
                }
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
                let s: String
                if high < 0x80 {
                    s = String(decoding: raw, as: UTF8.self)
                } else {
                    guard let v = String(validating: raw, as: UTF8.self) else {
                        throw JSONScanError(reason: "invalid UTF-8 in string", offset: start - 1)
                    }
                    s = v
                }
                pos = i + 1
                if recent.count < limit { recent.append(SeenString(start: start, count: count, value: s)) }
                return s
            }
            if c == UInt8(ascii: "\\") { return try readEscapedString(start: start, escapeAt: i) }
            if c < 0x20 { throw JSONScanError(reason: "unescaped control character in string", offset: i) }
            high |= c
            i += 1
        }
        throw JSONScanError(reason: "unterminated string", offset: start - 1)
    }

    /// Whether the bytes from the current position (after whitespace) repeat `start..<end` of the
    /// same input; if so they are consumed. A complete JSON value found again this way is the same value.
    mutating func consumeRepeat(of start: Int, _ end: Int) -> Bool {
        _ = peek()
        let n = end - start
        guard n > 0, bytes.count - pos >= n, equalBytes(pos, start, n) else { return false }
        pos += n
        return true
    }

    /// Whether the bytes from the current position (after whitespace) are exactly `text`, the
    /// text of a complete JSON value read from another input; if so they are consumed. Equal text
    /// is the same value.
    mutating func consumeRepeat(of text: UnsafeRawBufferPointer) -> Bool {
        _ = peek()
        let n = text.count
        guard n > 0, bytes.count - pos >= n, memcmp(bytes.baseAddress! + pos, text.baseAddress!, n) == 0 else { return false }
        pos += n
        return true
    }

    /// Whether the `count` bytes at `a` equal those at `b`; both ranges lie in the input. Compares
    /// 8 bytes at a time, reading no byte outside the input.
    @inline(__always)
    func equalBytes(_ a: Int, _ b: Int, _ count: Int) -> Bool {
        guard let base = bytes.baseAddress else { return count == 0 }
        var k = 0
        while count - k >= 8 {
            guard base.loadUnaligned(fromByteOffset: a + k, as: UInt64.self) == base.loadUnaligned(fromByteOffset: b + k, as: UInt64.self) else { return false }
            k += 8
        }
        let tail = count - k
        guard tail > 0 else { return true }
        if bytes.count - max(a, b) - k >= 8 {
            let mask: UInt64 = (1 << (8 * UInt64(tail))) &- 1
            return (base.loadUnaligned(fromByteOffset: a + k, as: UInt64.self) ^ base.loadUnaligned(fromByteOffset: b + k, as: UInt64.self)) & mask == 0
        }
        while k < count {
            guard base.load(fromByteOffset: a + k, as: UInt8.self) == base.load(fromByteOffset: b + k, as: UInt8.self) else { return false }
            k += 1
        }
        return true
    }

    private mutating func readEscapedString(start: Int, escapeAt: Int) throws(JSONScanError) -> String {
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<escapeAt]))
        var i = escapeAt
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw JSONScanError(reason: "invalid UTF-8 in string", offset: start - 1)
                }
                pos = i + 1
                return s
            }
            if c < 0x20 { throw JSONScanError(reason: "unescaped control character in string", offset: i) }
            guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
            guard i + 1 < bytes.count else { break }
            switch bytes[i + 1] {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(at: i + 2)
                var length = 6
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 7 < bytes.count, bytes[i + 6] == UInt8(ascii: "\\"), bytes[i + 7] == UInt8(ascii: "u"),
                          case let low = try hex4(at: i + 8), (0xDC00...0xDFFF).contains(low)
                    else { throw JSONScanError(reason: "unpaired UTF-16 surrogate in \\u escape", offset: i) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    length = 12
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw JSONScanError(reason: "unpaired UTF-16 surrogate in \\u escape", offset: i)
                }
                out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
                i += length
                continue
            default:
                throw JSONScanError(reason: "invalid escape sequence in string", offset: i)
            }
            i += 2
        }
        throw JSONScanError(reason: "unterminated string", offset: start - 1)
    }

    private func hex4(at index: Int) throws(JSONScanError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw JSONScanError(reason: "truncated \\u escape", offset: index - 2) }
        var value: UInt32 = 0
        for k in 0..<4 {
            let c = bytes[index + k]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c &- 0x30
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c &- 0x57
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c &- 0x37
            default: throw JSONScanError(reason: "invalid hex digit in \\u escape", offset: index + k)
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Scans a number token per the JSON grammar.
    ///
    /// Numbers without an exponent and of at most 19 digits (every price, size and timestamp a feed
    /// sends) are read 8 digits at a time; any other goes digit by digit. Both give the same token.
    @inline(__always)
    mutating func readNumber() throws(JSONScanError) -> JSONNumber {
        skipWhitespace()
        if let n = readPlainNumber() { return n }
        return try readNumberByDigit()
    }

    /// The digit bytes at the start of 8 bytes (first byte lowest): their count (0–8) and, for
    /// those digits, the value.
    @inline(__always)
    private static func leadingDigits(_ word: UInt64) -> (count: Int, value: UInt64) {
        let x = word ^ 0x3030_3030_3030_3030
        // A byte's high bit is set unless it is a digit. A carry out of a non-digit byte can only
        // reach the bytes after it, so the lowest set bit is exactly the first non-digit.
        let nonDigit = ((x &+ 0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080
        let count = nonDigit.trailingZeroBitCount >> 3
        guard count > 0 else { return (0, 0) }
        var v = x << (64 - 8 * UInt64(count))
        // Pairs, then quadruples, then all eight (the first digit most significant).
        v = (v &* (10 << 8 + 1)) >> 8
        v = ((v & 0x00FF_00FF_00FF_00FF) &* (100 << 16 + 1)) >> 16
        v = ((v & 0x0000_FFFF_0000_FFFF) &* (10_000 << 32 + 1)) >> 32
        return (count, v & 0xFFFF_FFFF)
    }

    /// The number at the current position, with no whitespace skipped, when it has the form
    /// ``readNumber()`` reads 8 digits at a time: an integer part, an optional fraction, no
    /// exponent, at most 19 digits in all, and 8 readable bytes after each group of digits. Else
    /// nil, nothing consumed.
    @inline(__always)
    mutating func readPlainNumber() -> JSONNumber? {
        guard let base = bytes.baseAddress else { return nil }
        let end = bytes.count
        let start = pos
        var i = start
        var negative = false
        if i < end, base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "-") { negative = true; i += 1 }
        guard end - i >= 8 else { return nil }
        var mantissa: UInt64
        var digits: Int
        if base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "0") {
            mantissa = 0; digits = 1; i += 1
        } else {
            let (k, v) = Self.leadingDigits(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            guard k > 0 else { return nil }
            mantissa = v; digits = k; i += k
            if k == 8 {
                guard end - i >= 8 else { return nil }
                let (k2, v2) = Self.leadingDigits(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                guard k2 < 8 else { return nil }
                mantissa = mantissa &* decimalPowerOfTen(k2) &+ v2; digits += k2; i += k2
            }
        }
        var exponent = 0
        var isInteger = true
        if i < end, base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: ".") {
            i += 1
            guard end - i >= 8 else { return nil }
            var (k, v) = Self.leadingDigits(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            guard k > 0 else { return nil }
            if k == 8 {
                // 8 to 15 fraction digits (a crypto size such as 0.00012345): one more word.
                guard end - i >= 16 else { return nil }
                let (k2, v2) = Self.leadingDigits(base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                guard k2 < 8 else { return nil }
                v = v &* decimalPowerOfTen(k2) &+ v2; k += k2
            }
            guard digits + k <= 19 else { return nil }
            mantissa = mantissa &* decimalPowerOfTen(k) &+ v; exponent = -k; i += k
            isInteger = false
        }
        if i < end, base.load(fromByteOffset: i, as: UInt8.self) | 0x20 == UInt8(ascii: "e") { return nil }
        pos = i
        return JSONNumber(start: start, end: i, negative: negative, mantissa: mantissa, exponent: exponent,
                          truncated: false, isIntegerSyntax: isInteger)
    }

    /// ``readNumber()`` one digit at a time, for any number the grammar allows.
    mutating func readNumberByDigit() throws(JSONScanError) -> JSONNumber {
        let start = pos
        var i = pos
        var n = JSONNumber(start: start, end: start, negative: false, mantissa: 0, exponent: 0,
                           truncated: false, isIntegerSyntax: true)
        @inline(__always) func digit(_ i: Int) -> UInt8? {
            guard i < bytes.count else { return nil }
            let d = bytes[i] &- 0x30
            return d < 10 ? d : nil
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { n.negative = true; i += 1 }
        guard let first = digit(i) else {
            pos = start
            throw start < bytes.count && bytes[start] == UInt8(ascii: "-")
                ? JSONScanError(reason: "invalid number", offset: start) : unexpected("a number")
        }
        i += 1
        n.mantissa = UInt64(first)
        if first != 0 {
            while let d = digit(i) {
                if n.mantissa < 1_844_674_407_370_955_161 { n.mantissa = n.mantissa &* 10 &+ UInt64(d) }
                else { n.truncated = true; n.exponent += 1 }
                i += 1
            }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            n.isIntegerSyntax = false
            i += 1
            guard digit(i) != nil else { throw JSONScanError(reason: "invalid number: expected a digit after '.'", offset: i) }
            while let d = digit(i) {
                if n.mantissa < 1_844_674_407_370_955_161 {
                    n.mantissa = n.mantissa &* 10 &+ UInt64(d); n.exponent -= 1
                } else if d != 0 { n.truncated = true }
                i += 1
            }
        }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            n.isIntegerSyntax = false
            i += 1
            var negativeExponent = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                negativeExponent = bytes[i] == UInt8(ascii: "-"); i += 1
            }
            guard digit(i) != nil else { throw JSONScanError(reason: "invalid number: expected a digit in exponent", offset: i) }
            var e = 0
            while let d = digit(i) { if e < 100_000 { e = e * 10 + Int(d) }; i += 1 }
            n.exponent += negativeExponent ? -e : e
        }
        n.end = i
        pos = i
        return n
    }

    /// The correctly rounded value of a scanned number (±infinity when out of range).
    func doubleValue(_ n: JSONNumber) -> Double {
        if !n.truncated && n.mantissa <= 1 << 53 && n.exponent >= -22 && n.exponent <= 22 {
            let m = Double(n.mantissa)
            let v = n.exponent < 0 ? m / exactPowersOfTen[-n.exponent] : m * exactPowersOfTen[n.exponent]
            return n.negative ? -v : v
        }
        if n.mantissa == 0 { return n.negative ? -0.0 : 0.0 }
        return Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[n.start..<n.end]), as: UTF8.self)) ?? .nan
    }

    /// The value of an integer-syntax number that fits in `Int64`, else nil.
    func int64Value(_ n: JSONNumber) -> Int64? {
        guard n.isIntegerSyntax, !n.truncated else { return nil }
        if n.negative { return n.mantissa <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- n.mantissa) : nil }
        return n.mantissa <= UInt64(Int64.max) ? Int64(n.mantissa) : nil
    }

    /// Skips and validates one value of any type.
    mutating func skipValue(depth: Int = 0) throws(JSONScanError) {
        guard depth < maxNestingDepth else { throw JSONScanError(reason: "nesting too deep", offset: pos) }
        guard let c = peek() else { throw unexpected("a JSON value") }
        switch c {
        case UInt8(ascii: "\""): _ = try readString()
        case UInt8(ascii: "{"):
            guard try enterObject() else { return }
            repeat {
                _ = try readKey { _ in () }
                try skipValue(depth: depth + 1)
            } while try nextMember()
        case UInt8(ascii: "["):
            guard try enterArray() else { return }
            repeat { try skipValue(depth: depth + 1) } while try nextElement()
        case UInt8(ascii: "t"): guard matchLiteral("true") else { throw JSONScanError(reason: "invalid literal", offset: pos) }
        case UInt8(ascii: "f"): guard matchLiteral("false") else { throw JSONScanError(reason: "invalid literal", offset: pos) }
        case UInt8(ascii: "n"): guard matchLiteral("null") else { throw JSONScanError(reason: "invalid literal", offset: pos) }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try readNumber()
        default: throw unexpected("a JSON value")
        }
    }
}

@inline(__always)
func keyEquals(_ key: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    guard key.count == literal.utf8CodeUnitCount else { return false }
    for i in 0..<key.count where key[i] != literal.utf8Start[i] { return false }
    return true
}

/// Byte-level JSON syntax checking (RFC 8259) over raw pointers, without building values: how the
/// recording reader finds and validates a line's frame.
extension JSONScanner {
    @inlinable @inline(__always) package static func isWS(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    @inlinable @inline(__always) package static func skipWS(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) {
        while i < n, isWS(p[i]) { i += 1 }
    }

    /// True if `p[0..<n]` is exactly one JSON value, optionally surrounded by whitespace.
    @inlinable package static func isValidDocument(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        skipWS(p, &i, n)
        guard skipValue(p, &i, n, depth: 0) else { return false }
        skipWS(p, &i, n)
        return i == n
    }

    /// Advances `i` past one JSON value starting at `p[i]`; false if it is not valid JSON.
    @inlinable package static func skipValue(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int, depth: Int) -> Bool {
        guard i < n, depth < 512 else { return false }
        switch p[i] {
        case UInt8(ascii: "\""): return skipString(p, &i, n)
        case UInt8(ascii: "{"):
            i += 1; skipWS(p, &i, n)
            if i < n, p[i] == UInt8(ascii: "}") { i += 1; return true }
            while true {
                guard i < n, p[i] == UInt8(ascii: "\""), skipString(p, &i, n) else { return false }
                skipWS(p, &i, n)
                guard i < n, p[i] == UInt8(ascii: ":") else { return false }
                i += 1; skipWS(p, &i, n)
                guard skipValue(p, &i, n, depth: depth + 1) else { return false }
                skipWS(p, &i, n)
                guard i < n else { return false }
                if p[i] == UInt8(ascii: "}") { i += 1; return true }
                guard p[i] == UInt8(ascii: ",") else { return false }
                i += 1; skipWS(p, &i, n)
            }
        case UInt8(ascii: "["):
            i += 1; skipWS(p, &i, n)
            if i < n, p[i] == UInt8(ascii: "]") { i += 1; return true }
            while true {
                guard skipValue(p, &i, n, depth: depth + 1) else { return false }
                skipWS(p, &i, n)
                guard i < n else { return false }
                if p[i] == UInt8(ascii: "]") { i += 1; return true }
                guard p[i] == UInt8(ascii: ",") else { return false }
                i += 1; skipWS(p, &i, n)
            }
        case UInt8(ascii: "t"): return literal(p, &i, n, "true")
        case UInt8(ascii: "f"): return literal(p, &i, n, "false")
        case UInt8(ascii: "n"): return literal(p, &i, n, "null")
        default: return skipNumber(p, &i, n)
        }
    }

    @inlinable package static func literal(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int, _ word: StaticString) -> Bool {
        let w = word.utf8Start, len = word.utf8CodeUnitCount
        guard n - i >= len else { return false }
        for k in 0..<len where p[i + k] != w[k] { return false }
        i += len
        return true
    }

    @inlinable package static func skipString(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) -> Bool {
        i += 1
        while i < n {
            let c = p[i]
            if c == UInt8(ascii: "\"") { i += 1; return true }
            if c < 0x20 { return false }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < n else { return false }
                switch p[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): i += 1
                case UInt8(ascii: "u"):
                    guard n - i > 4 else { return false }
                    for k in 1...4 where !isHex(p[i + k]) { return false }
                    i += 5
                default: return false
                }
            } else { i += 1 }
        }
        return false
    }

    @inlinable @inline(__always) package static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }
    @inlinable @inline(__always) package static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    @inlinable package static func skipNumber(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) -> Bool {
        if i < n, p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < n, isDigit(p[i]) else { return false }
        if p[i] == UInt8(ascii: "0") { i += 1 } else { while i < n, isDigit(p[i]) { i += 1 } }
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            guard i < n, isDigit(p[i]) else { return false }
            while i < n, isDigit(p[i]) { i += 1 }
        }
        if i < n, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            i += 1
            if i < n, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            guard i < n, isDigit(p[i]) else { return false }
            while i < n, isDigit(p[i]) { i += 1 }
        }
        return true
    }
}

/// A parsed JSON document, built by ``JSONScanner``: for the small, infrequent messages (recording
/// headers, orders, fills, control frames, metrics read back) where a tree is simpler than a pull parse.
/// Hot paths (trade frames, Kafka values) decode with the scanner directly.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case string(String)
    /// A number: its correctly rounded value, and the exact value when it is written as an integer that fits in Int64.
    case number(Double, integer: Int64?)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The document in `bytes`, or nil when they are not exactly one valid JSON value (RFC 8259).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var scanner = JSONScanner(bytes)
        do throws(JSONScanError) {
            let value = try scanner.parseValue(depth: 0)
            try scanner.expectEnd()
            return value
        } catch {
            return nil
        }
    }

    public static func parse(_ bytes: [UInt8]) -> JSONValue? { bytes.withUnsafeBytes { parse($0) } }

    public static func parse(_ text: String) -> JSONValue? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// The member `key` of an object; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { members[key] } else { nil }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    /// A number's value (not a boolean's, not a string's).
    public var double: Double? { if case .number(let d, _) = self { d } else { nil } }
    /// An integer written as one (`7`, not `7.0` or `"7"`).
    public var int64: Int64? { if case .number(_, let i) = self { i } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
}

extension JSONScanner {
    fileprivate mutating func parseValue(depth: Int) throws(JSONScanError) -> JSONValue {
        guard depth < maxNestingDepth else { throw JSONScanError(reason: "nesting too deep", offset: pos) }
        guard let c = peek() else { throw unexpected("a JSON value") }
        switch c {
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "{"):
            var members: [String: JSONValue] = [:]
            guard try enterObject() else { return .object(members) }
            repeat {
                let key = try readKey { String(decoding: $0, as: UTF8.self) }
                members[key] = try parseValue(depth: depth + 1)
            } while try nextMember()
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            guard try enterArray() else { return .array(elements) }
            repeat { elements.append(try parseValue(depth: depth + 1)) } while try nextElement()
            return .array(elements)
        case UInt8(ascii: "t"):
            guard matchLiteral("true") else { throw JSONScanError(reason: "invalid literal", offset: pos) }
            return .bool(true)
        case UInt8(ascii: "f"):
            guard matchLiteral("false") else { throw JSONScanError(reason: "invalid literal", offset: pos) }
            return .bool(false)
        case UInt8(ascii: "n"):
            guard matchLiteral("null") else { throw JSONScanError(reason: "invalid literal", offset: pos) }
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let n = try readNumber()
            return .number(doubleValue(n), integer: int64Value(n))
        default: throw unexpected("a JSON value")
        }
    }
}
