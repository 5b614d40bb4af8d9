@testable import MarketData
import Testing

/// The scanner's word-at-a-time paths against the byte-at-a-time reading they stand for.
@Suite struct JSONScannerTests {
    /// Every number shape a feed sends and the ones around it (digit counts across the 8-byte
    /// groups, fractions, signs, leading zeros, exponents), each followed by 0–9 bytes before the
    /// end of the input, read as the 8-digit path reads it and digit by digit: the same token.
    @Test func numbersReadByWordsAreTheTokensReadByDigits() throws {
        var rng = SystemRandomNumberGenerator()
        var texts: [String] = ["0", "-0", "0.5", "01", "-", "1.", "1.e5", "1e5", "2E-3", "-0.000001", "9.", "00.1"]
        for intDigits in 1...22 {
            for fracDigits in [0, 1, 2, 6, 7, 8, 9, 12, 15, 16] {
                var t = String((0..<intDigits).map { i in Character(String(i == 0 ? Int.random(in: 1...9, using: &rng) : Int.random(in: 0...9, using: &rng))) })
                if fracDigits > 0 { t += "." + String((0..<fracDigits).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) }) }
                texts.append(t)
                texts.append("-" + t)
                texts.append("0." + t.filter { $0 != "." })
            }
        }
        var checked = 0
        for text in texts {
            for tail in ["", ",", "}", ",\"v\":1", ", \"t\" : 17000", "]}xxxxxxx"] {
                let bytes = Array((text + tail).utf8)
                let fast = bytes.withUnsafeBytes { b -> Result<JSONNumber, JSONScanError> in
                    var s = JSONScanner(b)
                    return Result { () throws(JSONScanError) in try s.readNumber() }
                }
                let slow = bytes.withUnsafeBytes { b -> Result<JSONNumber, JSONScanError> in
                    var s = JSONScanner(b)
                    return Result { () throws(JSONScanError) in try s.readNumberByDigit() }
                }
                switch (fast, slow) {
                case (.success(let a), .success(let b)):
                    #expect(a == b, "\(text + tail)")
                    let value = bytes.withUnsafeBytes { JSONScanner($0).doubleValue(a) }
                    if let expected = Double(String(decoding: bytes[a.start..<a.end], as: UTF8.self)) {
                        #expect(value == expected, "\(text + tail)")
                    }
                case (.failure(let a), .failure(let b)):
                    #expect(a.reason == b.reason && a.offset == b.offset, "\(text + tail)")
                default:
                    Issue.record("\(text + tail): \(fast) by words, \(slow) by digits")
                }
                checked += 1
            }
        }
        #expect(checked == texts.count * 6)
    }

    /// A string's plain run ends at the first quote, backslash, control byte or non-ASCII byte,
    /// wherever it falls against the 8-byte groups and the end of the input.
    @Test func plainRunEndsAtTheFirstSpecialByte() {
        let specials: [UInt8] = [0x22, 0x5C, 0x00, 0x1F, 0x80, 0xC3, 0xFF, 0x0A]
        let plain: [UInt8] = Array("AZaz09 :._-/#~!".utf8) + [0x20, 0x7F, 0x21, 0x5B, 0x5D]
        var rng = SystemRandomNumberGenerator()
        for length in 0...40 {
            for position in 0...length {
                var bytes = (0..<length).map { _ in plain.randomElement(using: &rng)! }
                if position < length { bytes[position] = specials.randomElement(using: &rng)! }
                for start in [0, min(3, length)] {
                    let naive = bytes[start...].firstIndex { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 || $0 >= 0x80 } ?? bytes.count
                    let found = bytes.withUnsafeBytes { JSONScanner($0).plainRunEnd(from: start) }
                    #expect(found == naive, "\(bytes) from \(start)")
                }
            }
        }
    }

    /// Byte ranges compare equal exactly when their bytes are, for every length and placement,
    /// up to the input's last byte.
    @Test func equalBytesComparesExactly() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let count = Int.random(in: 0...40, using: &rng)
            let size = Int.random(in: (2 * count)...(2 * count + 10), using: &rng)
            var bytes = (0..<size).map { _ in UInt8.random(in: 0...3, using: &rng) }
            let a = Int.random(in: 0...(size - count), using: &rng)
            let b = Int.random(in: 0...(size - count), using: &rng)
            if Bool.random(using: &rng) { for k in 0..<count { bytes[b + k] = bytes[a + k] } }
            let expected = bytes[a..<a + count] == bytes[b..<b + count]
            #expect(bytes.withUnsafeBytes { JSONScanner($0).equalBytes(a, b, count) } == expected, "\(bytes) \(a) \(b) \(count)")
        }
    }
}
