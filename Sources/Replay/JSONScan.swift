/// Byte-level JSON syntax checking (RFC 8259) without building values.
enum JSONScan {
    @inline(__always) static func isWS(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    @inline(__always) static func skipWS(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) {
        while i < n, isWS(p[i]) { i += 1 }
    }

    /// True if `p[0..<n]` is exactly one JSON value, optionally surrounded by whitespace.
    static func isValidDocument(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        skipWS(p, &i, n)
        guard skipValue(p, &i, n, depth: 0) else { return false }
        skipWS(p, &i, n)
        return i == n
    }

    /// Advances `i` past one JSON value starting at `p[i]`; false if it is not valid JSON.
    static func skipValue(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int, depth: Int) -> Bool {
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

    static func literal(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int, _ word: StaticString) -> Bool {
        let w = word.utf8Start, len = word.utf8CodeUnitCount
        guard n - i >= len else { return false }
        for k in 0..<len where p[i + k] != w[k] { return false }
        i += len
        return true
    }

    static func skipString(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) -> Bool {
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

    @inline(__always) static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }
    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    static func skipNumber(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) -> Bool {
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

    /// `s` as a JSON string literal, quotes included.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
                else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
