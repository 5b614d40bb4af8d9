/// One executed trade, as Finnhub reports it.
///
/// `timestamp` is the trade time in Unix milliseconds (Finnhub's `t`). `volume` may be
/// fractional (crypto) and is `0` for price updates from venues that report no size.
/// `conditions` is `nil` where the venue sends `null` (crypto) and an array otherwise.
public struct Trade: Sendable, Hashable {
    public var symbol: String
    public var price: Double
    public var timestamp: Int64
    public var volume: Double
    public var conditions: [String]?

    public init(symbol: String, price: Double, timestamp: Int64, volume: Double, conditions: [String]? = nil) {
        self.symbol = symbol
        self.price = price
        self.timestamp = timestamp
        self.volume = volume
        self.conditions = conditions
    }
}

extension String {
    /// The text with control characters (C0, DEL, C1; so newlines and ANSI escapes) written as
    /// `\n`, `\r`, `\t` or `\u{XX}`, for one-line logs and terminal output that input cannot forge.
    public var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value):
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
