import Foundation

/// Dense indexes for symbols: 0, 1, 2… in order of first insertion.
///
/// Symbols are the same when `String`'s `==` says so (Unicode canonical equivalence), as for a
/// `Dictionary` key: the hash of a non-ASCII symbol is taken over its NFC form.
///
/// While it holds at most ``linearLimit`` symbols a lookup compares strings in order (a symbol of up
/// to 15 bytes compares as two machine words). Past that it probes an open-addressing table keyed by
/// a multiply-mix hash of the symbol's UTF-8 bytes, read eight at a time: a lookup costs one short
/// hash and usually one comparison, and never goes through `Hasher`. Should symbols collide enough
/// to make a probe long (hostile input can choose symbols), it moves to a `Dictionary`, whose hash is
/// seeded per process. Lookups never insert.
public struct SymbolIndex: Sendable {
    public static var linearLimit: Int { 8 }
    public private(set) var symbols: [String] = []
    /// Slot → symbol index + 1 (0 is empty); its count is a power of two, at most a quarter full, so
    /// ordinary symbols stay far from `maxProbe`.
    @usableFromInline var table: [Int32] = []
    /// Set once a probe grew past `maxProbe`; from then on it alone is used.
    @usableFromInline var byName: [String: Int]?
    /// A caller's own numbers for symbols (``insert(_:slot:)``, ``index(of:slot:)``) → indexes; −1 unknown.
    @usableFromInline var bySlot: [Int32] = []
    @usableFromInline let maxProbe: Int

    public init() { maxProbe = 32 }
    /// An index that moves to its dictionary once an insert probes more than `maxProbe` slots.
    init(maxProbe: Int) { self.maxProbe = maxProbe }
    /// Whether chosen symbols moved it to its dictionary.
    var usesDictionary: Bool { byName != nil }

    public var count: Int { symbols.count }

    /// The index of `symbol`, or nil if it was never inserted.
    @inlinable @inline(__always) public func index(of symbol: String) -> Int? {
        if symbols.count <= Self.linearLimit {
            for i in symbols.indices where symbols[i] == symbol { return i }
            return nil
        }
        if let byName { return byName[symbol] }
        return probe(symbol, Self.hash(symbol)).found
    }

    /// The index of `symbol`, inserting it at the end if it is new.
    @inlinable @inline(__always) public mutating func insert(_ symbol: String) -> (index: Int, inserted: Bool) {
        if let i = index(of: symbol) { return (i, false) }
        return (append(symbol), true)
    }

    /// ``insert(_:)`` for a caller that numbers symbols itself: `slot` is its dense number (0, 1, 2…)
    /// for `symbol`, or negative for none. After the first time the index is found by the slot and
    /// the symbol only compared with its own, which spares the hash; a slot later given to another
    /// symbol costs a lookup, never a wrong index.
    @inlinable @inline(__always) public mutating func insert(_ symbol: String, slot: Int) -> (index: Int, inserted: Bool) {
        if let i = remembered(symbol, slot) { return (i, false) }
        let found = insert(symbol)
        remember(slot, found.index)
        return found
    }

    /// ``index(of:)`` by the caller's number for `symbol`, as ``insert(_:slot:)`` (it never inserts).
    @inlinable @inline(__always) public mutating func index(of symbol: String, slot: Int) -> Int? {
        if let i = remembered(symbol, slot) { return i }
        guard let i = index(of: symbol) else { return nil }
        remember(slot, i)
        return i
    }

    @inlinable @inline(__always) func remembered(_ symbol: String, _ slot: Int) -> Int? {
        guard slot >= 0, slot < bySlot.count else { return nil }
        let i = Int(bySlot[slot])
        return i >= 0 && symbols[i] == symbol ? i : nil
    }

    @usableFromInline mutating func remember(_ slot: Int, _ i: Int) {
        guard slot >= 0 else { return }
        if slot >= bySlot.count { bySlot.append(contentsOf: repeatElement(-1, count: slot + 1 - bySlot.count)) }
        bySlot[slot] = Int32(i)
    }

    /// Adds `symbol`, which is not in the index yet; returns its index.
    @usableFromInline @inline(never) mutating func append(_ symbol: String) -> Int {
        symbols.append(symbol)
        let i = symbols.count - 1
        if symbols.count <= Self.linearLimit { return i }
        if byName != nil { byName![symbol] = i; return i }
        if table.isEmpty || symbols.count * 4 > table.count {
            rebuild(capacity: Swift.max(8 * Self.linearLimit, table.count * 2))
            return i
        }
        let (_, slot, length) = probe(symbol, Self.hash(symbol))
        if length > maxProbe { moveToDictionary() } else { table[slot] = Int32(i + 1) }
        return i
    }

    /// The index of `symbol` if present; otherwise the empty slot where it would go. `length`: slots looked at.
    @inlinable @inline(__always) func probe(_ symbol: String, _ h: UInt64) -> (found: Int?, slot: Int, length: Int) {
        table.withUnsafeBufferPointer { t in
            let mask = t.count - 1
            var slot = Int(truncatingIfNeeded: h) & mask
            var length = 1
            while true {
                let e = Int(t[slot])
                if e == 0 { return (nil, slot, length) }
                if symbols[e - 1] == symbol { return (e - 1, slot, length) }
                slot = (slot + 1) & mask
                length += 1
            }
        }
    }

    private mutating func rebuild(capacity: Int) {
        table = [Int32](repeating: 0, count: capacity)
        let mask = capacity - 1
        for (i, s) in symbols.enumerated() {
            var slot = Int(truncatingIfNeeded: Self.hash(s)) & mask
            var length = 1
            while table[slot] != 0 { slot = (slot + 1) & mask; length += 1 }
            if length > maxProbe { moveToDictionary(); return }
            table[slot] = Int32(i + 1)
        }
    }

    /// From now on every symbol is found through `byName`.
    private mutating func moveToDictionary() {
        byName = Dictionary(uniqueKeysWithValues: symbols.enumerated().map { ($1, $0) })
        table = []
    }

    /// A 64-bit multiply-mix of the UTF-8 bytes of an ASCII symbol, or of the NFC form of any other;
    /// canonically equivalent strings hash equally. Not keyed: the probe limit, not the hash, bounds
    /// what chosen symbols can cost.
    @inlinable @inline(__always) static func hash(_ symbol: String) -> UInt64 {
        let h = symbol.utf8.withContiguousStorageIfAvailable { hash($0) } ?? nil
        if let h { return h }
        return hashNormalized(symbol)
    }

    /// The hash of a symbol with non-ASCII bytes: the bytes of its NFC form.
    @usableFromInline @inline(never) static func hashNormalized(_ symbol: String) -> UInt64 {
        let bytes = Array(symbol.precomposedStringWithCanonicalMapping.utf8)
        return bytes.withUnsafeBufferPointer { hash($0, asciiOnly: false)! }
    }

    /// The hash of `bytes`; nil when `asciiOnly` and a byte is not ASCII.
    @inlinable @inline(__always) static func hash(_ bytes: UnsafeBufferPointer<UInt8>, asciiOnly: Bool = true) -> UInt64? {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        guard let base = bytes.baseAddress else { return h }
        var i = 0
        var high: UInt64 = 0
        while i + 8 <= bytes.count {
            let word = UnsafeRawPointer(base).loadUnaligned(fromByteOffset: i, as: UInt64.self)
            high |= word
            h = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        let rest = bytes.count - i
        if rest > 0 {
            // The last 1…7 bytes in two overlapping loads (the length is already in h), as wyhash does.
            let raw = UnsafeRawPointer(base)
            let tail: UInt64
            if rest >= 4 {
                tail = UInt64(raw.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                    | UInt64(raw.loadUnaligned(fromByteOffset: i + rest - 4, as: UInt32.self)) << 32
            } else {
                tail = UInt64(base[i]) | UInt64(base[i + rest / 2]) << 8 | UInt64(base[i + rest - 1]) << 16
            }
            high |= tail
            h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        }
        if asciiOnly, high & 0x8080_8080_8080_8080 != 0 { return nil }
        // MurmurHash3's finalizer: every input bit reaches the low bits the table indexes by.
        h = (h ^ (h >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        h = (h ^ (h >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return h ^ (h >> 33)
    }
}
