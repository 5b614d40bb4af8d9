/// Dense indexes for symbols: 0, 1, 2… in order of first insertion.
///
/// While it holds at most ``linearLimit`` symbols a lookup compares strings in order instead of
/// hashing (a symbol of up to 15 bytes compares as two machine words, far cheaper than a hash); past
/// that it uses a dictionary. Lookups never insert.
public struct SymbolIndex: Sendable {
    public static let linearLimit = 16
    public private(set) var symbols: [String] = []
    private var byName: [String: Int] = [:]

    public init() {}

    public var count: Int { symbols.count }

    /// The index of `symbol`, or nil if it was never inserted.
    @inline(__always) public func index(of symbol: String) -> Int? {
        if symbols.count <= Self.linearLimit {
            for i in symbols.indices where symbols[i] == symbol { return i }
            return nil
        }
        return byName[symbol]
    }

    /// The index of `symbol`, inserting it at the end if it is new.
    @inline(__always) public mutating func insert(_ symbol: String) -> (index: Int, inserted: Bool) {
        if let i = index(of: symbol) { return (i, false) }
        symbols.append(symbol)
        if symbols.count > Self.linearLimit {
            if byName.isEmpty { for (i, s) in symbols.enumerated() { byName[s] = i } } else { byName[symbol] = symbols.count - 1 }
        }
        return (symbols.count - 1, true)
    }
}
