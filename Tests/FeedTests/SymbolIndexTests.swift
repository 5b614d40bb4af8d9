@testable import MarketData
import Testing

@Suite struct SymbolIndexTests {
    /// The index a dictionary of first insertions would give, for every size the index passes through
    /// (linear, hashed, grown), symbols of every length, and lookups of absent symbols.
    func checkAgainstDictionary(_ index: inout SymbolIndex, _ symbols: [String]) {
        var expected: [String: Int] = [:]
        for s in symbols {
            let want = expected[s] ?? expected.count
            let (got, inserted) = index.insert(s)
            #expect(got == want, "\(s)")
            #expect(inserted == (expected[s] == nil), "\(s)")
            if expected[s] == nil { expected[s] = want }
        }
        #expect(index.count == expected.count)
        for (s, i) in expected { #expect(index.index(of: s) == i, "\(s)") }
        for s in symbols.prefix(500) { #expect(index.index(of: s + "~absent") == nil) }
        #expect(index.symbols.count == expected.count)
        for (s, i) in expected { #expect(index.symbols[i] == s) }
    }

    @Test func agreesWithADictionaryAtEverySize() {
        var g = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ:_0123456789é")
        var symbols: [String] = []
        for n in 0..<20_000 {
            let length = 1 + Int(UInt64.random(in: 0...39, using: &g))
            symbols.append(String((0..<length).map { _ in alphabet.randomElement(using: &g)! }))
            if n % 3 == 0 { symbols.append(symbols.randomElement(using: &g)!) }
        }
        for size in [1, 8, 9, 17, 100, symbols.count] {
            var index = SymbolIndex()
            checkAgainstDictionary(&index, Array(symbols.prefix(size)))
            let movedToDictionary = index.usesDictionary
            #expect(!movedToDictionary, "\(size) symbols")
        }
    }

    /// Once an insert probes past the limit (as symbols chosen to collide would make it; a limit of 2
    /// makes ordinary symbols reach it), the index moves to its seeded dictionary and still gives every
    /// symbol its first index.
    @Test func collidingSymbolsMoveItToItsDictionary() {
        var index = SymbolIndex(maxProbe: 2)
        let symbols = (0..<2_000).map { "BINANCE:PAIR\($0)USDT" }
        checkAgainstDictionary(&index, symbols + symbols.reversed())
        let movedToDictionary = index.usesDictionary
        #expect(movedToDictionary)
        #expect(index.insert("NEW").index == 2_000)
        #expect(index.index(of: "NEW") == 2_000)
    }
}

extension SymbolIndexTests {
    /// Found by a caller's own numbers: the same indexes as by name, at every size; a slot later given
    /// to another symbol finds that symbol's index; a negative slot is none.
    @Test func callerSlotsFindTheSameIndexes() {
        for count in [5, 40, 3_000] {
            let symbols = (0..<count).map { "BINANCE:PAIR\($0)" }
            var bySlot = SymbolIndex()
            for round in 0..<2 {
                for (slot, s) in symbols.enumerated().reversed() {
                    let got = bySlot.insert(s, slot: slot)
                    #expect(got.index == count - 1 - slot && got.inserted == (round == 0))
                    #expect(bySlot.index(of: s, slot: slot) == got.index)
                }
            }
            #expect(bySlot.index(of: symbols[0], slot: 1) == bySlot.index(of: symbols[0]))
            #expect(bySlot.index(of: "ABSENT", slot: 0) == nil && bySlot.insert(symbols[2], slot: -1).index == bySlot.index(of: symbols[2]))
            #expect(bySlot.index(of: symbols[1], slot: 0) == bySlot.index(of: symbols[1]))
            #expect(bySlot.index(of: symbols[0], slot: 0) == bySlot.index(of: symbols[0]))
        }
    }

    /// Spellings `String`'s `==` takes as equal (composed and decomposed "é", the Kelvin sign and "K")
    /// are one symbol, as in a `Dictionary`, whether the index compares or hashes.
    @Test func canonicallyEquivalentSpellingsAreOneSymbol() {
        let pairs = [("CAF\u{E9}", "CAFe\u{301}"), ("\u{212A}RW", "KRW")]
        for (a, b) in pairs {
            #expect(a == b)
            #expect(SymbolIndex.hash(a) == SymbolIndex.hash(b))
            for fill in [0, 40] {
                var ix = SymbolIndex()
                for i in 0..<fill { _ = ix.insert("FILL\(i)") }
                let first = ix.insert(a)
                #expect(first.inserted)
                #expect(ix.insert(b) == (first.index, false))
                #expect(ix.index(of: b) == first.index)
            }
        }
        #expect(SymbolIndex.hash("CAF\u{E9}") != SymbolIndex.hash("CAFE"))
    }
}
