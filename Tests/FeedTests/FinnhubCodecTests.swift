@testable import Feeds
@testable import MarketData
@testable import Exchange
@testable import Recording
import Testing

private func decode(_ text: String) throws(FrameDecodingError) -> FinnhubFrame { try FinnhubCodec.decode(text) }

private func decodeError(_ text: String) -> FrameDecodingError? {
    do { _ = try FinnhubCodec.decode(text); return nil } catch { return error }
}

private func byteOffset(of needle: String, in haystack: String) -> Int {
    let h = Array(haystack.utf8), n = Array(needle.utf8)
    return (0...(h.count - n.count)).first { Array(h[$0..<$0 + n.count]) == n }!
}

@Suite struct FinnhubDecodingTests {
    @Test func decodesTradeFrameWithSeveralSymbols() throws {
        let frame = #"{"type":"trade","data":[{"s":"AAPL","p":164.06,"t":1680286539953,"v":100,"c":["1","12"]},"#
            + #"{"s":"BINANCE:BTCUSDT","p":28432.5,"t":1680286540001,"v":0.0125,"c":null},{"s":"MSFT","p":1e2,"t":2,"v":0,"c":[]}]}"#
        #expect(try decode(frame) == .trades([
            Trade(symbol: "AAPL", price: 164.06, timestamp: 1_680_286_539_953, volume: 100, conditions: ["1", "12"]),
            Trade(symbol: "BINANCE:BTCUSDT", price: 28432.5, timestamp: 1_680_286_540_001, volume: 0.0125, conditions: nil),
            Trade(symbol: "MSFT", price: 100, timestamp: 2, volume: 0, conditions: []),
        ]))
    }

    @Test("symbols and condition lists repeated within a frame decode to the same values as written out once")
    func repeatedValuesInAFrame() throws {
        let symbols = ["AAPL", "BINANCE:BTCUSDT", "A-VERY-LONG-SYMBOL-NAME:XYZ", "MSFT", "TSLA", "NVDA", "AMZN", "META", "GOOGL", "AMD"]
        let lists: [[String]?] = [["1", "12"], ["1", "12", "3"], ["1"], nil, [], ["1", "2"], ["1", "12"]]
        var expected: [Trade] = []
        for i in 0..<60 {
            expected.append(Trade(symbol: symbols[(i * 7) % symbols.count], price: Double(i) + 0.25, timestamp: Int64(i), volume: 1,
                                  conditions: lists[(i * 5) % lists.count]))
        }
        #expect(try decode(FinnhubCodec.encodeTrades(expected)) == .trades(expected))
        // The same values spelled differently (escapes, spaces) and prefixes of a list seen before.
        let frame = #"{"type":"trade","data":[{"s":"AB","p":1,"t":1,"v":1,"c":["1","12"]},{"s":"AB","p":1,"t":2,"v":1,"c":[ "1","12" ]},"#
            + #"{"s":"AB","p":1,"t":3,"v":1,"c":["1","12","7"]},{"s":"ABC","p":1,"t":4,"v":1,"c":["1"]},{"s":"AB","p":1,"t":5,"v":1,"c":["1","12"]}]}"#
        #expect(try decode(frame) == .trades([
            Trade(symbol: "AB", price: 1, timestamp: 1, volume: 1, conditions: ["1", "12"]),
            Trade(symbol: "AB", price: 1, timestamp: 2, volume: 1, conditions: ["1", "12"]),
            Trade(symbol: "AB", price: 1, timestamp: 3, volume: 1, conditions: ["1", "12", "7"]),
            Trade(symbol: "ABC", price: 1, timestamp: 4, volume: 1, conditions: ["1"]),
            Trade(symbol: "AB", price: 1, timestamp: 5, volume: 1, conditions: ["1", "12"]),
        ]))
        // A list seen before followed by garbage is still an error at the garbage.
        let bad = #"{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1,"c":["1"]},{"s":"A","p":1,"t":2,"v":1,"c":["1"]x}]}"#
        #expect(decodeError(bad)?.path == "data[1]")
    }

    @Test func decodesControlFrames() throws {
        #expect(try decode(#"{"type":"ping"}"#) == .ping)
        #expect(try decode(#" {"type":"error","msg":"Invalid symbol"} "#) == .error(message: "Invalid symbol"))
        #expect(try decode(#"{"type":"news","data":[{"headline":"x","id":7}]}"#) == .unknown(type: "news"))
        #expect(try decode(#"{"data":{"any":[1,2,{"x":null}]},"type":"whatever"}"#) == .unknown(type: "whatever"))
        #expect(try decode(#"{"type":"trade","data":[]}"#) == .trades([]))
    }

    @Test func acceptsAnyKeyOrderWhitespaceAndUnknownKeys() throws {
        let frame = "\n{ \"extra\" : [true, false, null, {\"a\": -1.5e-3}],\r\n \"data\" :\t[ { \"c\" : [ \"1\" ] , \"v\":1.5,"
            + " \"x\":{}, \"t\" : -5 , \"p\" : 0.5 , \"s\" : \"A\" } ] , \"type\" : \"trade\" }\n"
        #expect(try decode(frame) == .trades([Trade(symbol: "A", price: 0.5, timestamp: -5, volume: 1.5, conditions: ["1"])]))
    }

    @Test func missingConditionsDecodeAsNil() throws {
        #expect(try decode(#"{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1}]}"#)
            == .trades([Trade(symbol: "A", price: 1, timestamp: 1, volume: 1, conditions: nil)]))
    }

    @Test func decodesStringEscapes() throws {
        let frame = #"{"type":"trade","data":[{"s":"\u00e9\ud83d\ude00\"\\\/\n\t\u0001 x:y","p":1,"t":1,"v":1,"c":["caf\u00E9"]}]}"#
        #expect(try decode(frame) == .trades([
            Trade(symbol: "é😀\"\\/\n\t\u{1} x:y", price: 1, timestamp: 1, volume: 1, conditions: ["café"]),
        ]))
        #expect(try decode(#"{"t\u0079pe":"ping"}"#) == .ping)
    }

    @Test func wrongTypeNamesPathReasonAndOffset() {
        let frame = #"{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1},{"s":"B","p":"164.06","t":1,"v":1}]}"#
        let error = decodeError(frame)
        let offset = byteOffset(of: #""164.06""#, in: frame)
        #expect(error == FrameDecodingError(path: "data[1].p", reason: "expected a number, found a string", offset: offset))
        #expect(error?.description == "data[1].p: expected a number, found a string (byte \(offset))")
    }

    @Test(arguments: [
        (#"{"s":"A","p":1,"t":1.5,"v":1}"#, "data[0].t"),
        (#"{"s":"A","p":1,"t":"1","v":1}"#, "data[0].t"),
        (#"{"s":"A","p":1,"t":1e3,"v":1}"#, "data[0].t"),
        (#"{"s":"A","p":1,"t":99999999999999999999,"v":1}"#, "data[0].t"),
        (#"{"s":"A","p":1,"t":1,"v":"1"}"#, "data[0].v"),
        (#"{"s":"A","p":1e999,"t":1,"v":1}"#, "data[0].p"),
        (#"{"s":"A","p":01,"t":1,"v":1}"#, "data[0]"),
        (#"{"s":"A","p":1.,"t":1,"v":1}"#, "data[0].p"),
        (#"{"s":"","p":1,"t":1,"v":1}"#, "data[0].s"),
        (#"{"s":7,"p":1,"t":1,"v":1}"#, "data[0].s"),
        (#"{"s":"A","p":1,"t":1,"v":1,"c":["1",2]}"#, "data[0].c[1]"),
        (#"{"s":"A","p":1,"t":1,"v":1,"c":"1"}"#, "data[0].c"),
        (#"{"s":"\ud800","p":1,"t":1,"v":1}"#, "data[0].s"),
        (#"{"s":"\x","p":1,"t":1,"v":1}"#, "data[0].s"),
        ("{\"s\":\"a\u{1}\",\"p\":1,\"t\":1,\"v\":1}", "data[0].s"),
        (#"["s"]"#, "data[0]"),
    ])
    func rejectsBadTradeValues(trade: String, path: String) {
        let error = decodeError(#"{"type":"trade","data":["# + trade + "]}")
        #expect(error?.path == path)
    }

    @Test(arguments: [
        (#"{"s":"A","p":1,"t":1.5,"v":1}"#, "data[0].t"),
        (#"{"s":"A","p":1e999,"t":1,"v":1}"#, "data[0].p"),
        (#"{"s":"A","p":1,"t":1,"v":1,"c":["1",2]}"#, "data[0].c[1]"),
        (#"["s"]"#, "data[0]"),
    ])
    func dataBeforeTypeIsCheckedTheSameWay(trade: String, path: String) {
        let error = decodeError(#"{"data":["# + trade + #"],"type":"trade"}"#)
        #expect(error?.path == path)
        #expect(error?.reason == decodeError(#"{"type":"trade","data":["# + trade + "]}")?.reason)
    }

    @Test func dataBeforeTypeAsFinnhubSendsIt() throws {
        let trades = #"[{"c":null,"p":7296.89,"s":"BINANCE:BTCUSDT","t":1575526691134,"v":0.011467},{"p":1.5,"s":"AAPL","t":1,"v":2}]"#
        func decode(_ s: String) throws -> FinnhubFrame { try Array(s.utf8).withUnsafeBytes { try FinnhubCodec.decode($0) } }
        let dataFirst = try decode(#"{"data":"# + trades + #","type":"trade"}"#)
        #expect(dataFirst == (try decode(#"{"type":"trade","data":"# + trades + "}")))
        guard case .trades(let decoded) = dataFirst else { Issue.record("not trades: \(dataFirst)"); return }
        #expect(decoded.map(\.symbol) == ["BINANCE:BTCUSDT", "AAPL"])
        #expect(try decode(#"{"data":"# + trades + #","type":"news"}"#) == .unknown(type: "news"))
        #expect(try decode(#"{"data":[{"headline":"x"}],"type":"news"}"#) == .unknown(type: "news"))
        #expect(decodeError(#"{"data":[{"headline":"x"],"type":"news"}"#) != nil)
    }

    @Test func consecutiveSymbolsDecodeExactlyWhateverTheirBytes() throws {
        func symbols(_ names: [String]) throws -> [String] {
            let data = names.map { #"{"s":"# + $0 + #","p":1,"t":1,"v":1}"# }.joined(separator: ",")
            let frame = try Array((#"{"type":"trade","data":["# + data + "]}").utf8).withUnsafeBytes { try FinnhubCodec.decode($0) }
            guard case .trades(let trades) = frame else { return [] }
            return trades.map(\.symbol)
        }
        #expect(try symbols([#""AAPL""#, #""AAPL""#, #""AAPX""#, #""AAP""#, #""AAPLL""#]) == ["AAPL", "AAPL", "AAPX", "AAP", "AAPLL"])
        #expect(try symbols([#""AB""#, #""A\u0042""#, #""a\"b""#, #""a\"b""#]) == ["AB", "AB", #"a"b"#, #"a"b"#])
        #expect(decodeError(#"{"type":"trade","data":[{"s":"a\"b","p":1,"t":1,"v":1},{"s":"a"b","p":1,"t":1,"v":1}]}"#) != nil)
    }

    @Test func missingKeysAreNamed() {
        let error = decodeError(#"{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1},{"s":"A","t":1,"v":1}]}"#)
        #expect(error?.path == "data[1]")
        #expect(error?.reason == #"missing key "p""#)
        #expect(decodeError(#"{"type":"trade"}"#)?.reason == #"missing key "data""#)
        #expect(decodeError(#"{"data":[]}"#)?.reason == #"missing key "type""#)
        #expect(decodeError(#"{"type":"error"}"#)?.reason == #"missing key "msg""#)
    }

    @Test func rejectsMalformedFrames() {
        for bad in ["", "   ", "[]", "null", #"{"type":"ping"} x"#, #"{"type":"ping""#, #"{"type":"ping",}"#,
                    #"{"type":ping}"#, #"{"type":"trade","data":{}}"#, #"{"type":"trade","data":[{"s":"A","p":1,"t":1,"v":1}"#,
                    #"{'type':'ping'}"#, "{\"type\":\"ping\"}\u{0}"] {
            #expect(decodeError(bad) != nil, "accepted \(bad)")
        }
        #expect(decodeError(#"{"type":"ping"} x"#) == FrameDecodingError(path: "$", reason: "unexpected 'x' after the end of the JSON value", offset: 16))
        #expect(decodeError(#"{"type":"trade","data":7}"#)?.path == "data")
    }

    @Test func rejectsInvalidUTF8() {
        var bytes = Array(#"{"type":"trade","data":[{"s":"AB","p":1,"t":1,"v":1}]}"#.utf8)
        bytes[31] = 0xFF
        #expect(throws: FrameDecodingError.self) { try bytes.withUnsafeBytes { _ = try FinnhubCodec.decode($0) } }
    }

    @Test func rejectsExcessiveNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(decodeError(#"{"type":"x","junk":"# + deep + "}")?.reason == "nesting too deep")
    }

    @Test func decodesClientMessages() throws {
        #expect(try FinnhubCodec.decodeClientMessage(#"{"type":"subscribe","symbol":"AAPL"}"#) == .subscribe("AAPL"))
        #expect(try FinnhubCodec.decodeClientMessage(#"{ "symbol" : "BINANCE:BTCUSDT", "type" : "unsubscribe" }"#) == .unsubscribe("BINANCE:BTCUSDT"))
        #expect(throws: FrameDecodingError.self) { try FinnhubCodec.decodeClientMessage(#"{"type":"subscribe"}"#) }
        #expect(throws: FrameDecodingError.self) { try FinnhubCodec.decodeClientMessage(#"{"type":"subscribe","symbol":""}"#) }
        do {
            _ = try FinnhubCodec.decodeClientMessage(#"{"type":"sub","symbol":"A"}"#)
            Issue.record("accepted an unknown type")
        } catch {
            #expect(error.path == "type")
            #expect(error.offset == 8)
        }
    }
}

@Suite struct FinnhubEncodingTests {
    @Test func encodesExactBytes() {
        let trades = [
            Trade(symbol: "AAPL", price: 164.06, timestamp: 1_680_286_539_953, volume: 100, conditions: ["1", "12"]),
            Trade(symbol: "BINANCE:BTCUSDT", price: 28432.5, timestamp: 1_680_286_540_001, volume: 0.00012345, conditions: nil),
            Trade(symbol: "X", price: -3, timestamp: -1, volume: 1e300, conditions: []),
        ]
        #expect(FinnhubCodec.encodeTrades(trades) == #"{"type":"trade","data":[{"s":"AAPL","p":164.06,"t":1680286539953,"v":100,"c":["1","12"]},"#
            + #"{"s":"BINANCE:BTCUSDT","p":28432.5,"t":1680286540001,"v":0.00012345,"c":null},{"s":"X","p":-3,"t":-1,"v":1e+300,"c":[]}]}"#)
        #expect(FinnhubCodec.encodeTrades([]) == #"{"type":"trade","data":[]}"#)
    }

    @Test func encodesControlAndClientMessages() throws {
        #expect(FinnhubCodec.encodePing() == #"{"type":"ping"}"#)
        #expect(FinnhubCodec.encodeError("bad \"sym\"\n") == #"{"type":"error","msg":"bad \"sym\"\u000a"}"#)
        #expect(FinnhubCodec.encodeClientMessage(.subscribe("AAPL")) == #"{"type":"subscribe","symbol":"AAPL"}"#)
        #expect(FinnhubCodec.encodeClientMessage(.unsubscribe("A\\B")) == #"{"type":"unsubscribe","symbol":"A\\B"}"#)
        for message in [ClientMessage.subscribe("é 😀:\u{7}"), .unsubscribe("OANDA:EUR_USD")] {
            #expect(try FinnhubCodec.decodeClientMessage(FinnhubCodec.encodeClientMessage(message)) == message)
        }
        #expect(try decode(FinnhubCodec.encodeError("x\u{0}y")) == .error(message: "x\u{0}y"))
    }

    @Test func escapesStringsPerJSON() {
        let trade = Trade(symbol: "a\"b\\c\u{1}\u{1F}\u{7F}é/", price: 1, timestamp: 1, volume: 1, conditions: ["\t"])
        #expect(FinnhubCodec.encodeTrades([trade]) == #"{"type":"trade","data":[{"s":"a\"b\\c\u0001\u001f"# + "\u{7F}é/" + #"","p":1,"t":1,"v":1,"c":["\u0009"]}]}"#)
    }

    @Test func appendsWithoutTouchingExistingBytes() {
        let trades = [Trade(symbol: "AAPL", price: 1.5, timestamp: 3, volume: 2)]
        var buffer = Array("prefix".utf8)
        FinnhubCodec.encodeTrades(trades, into: &buffer)
        #expect(buffer == Array("prefix".utf8) + Array(FinnhubCodec.encodeTrades(trades).utf8))
    }

    @Test func numbersUseShortestRoundTripForm() {
        func text(_ x: Double) -> String {
            var buffer: [UInt8] = []
            JSONWriter.number(x, to: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
        #expect(text(100) == "100")
        #expect(text(-0.5) == "-0.5")
        #expect(text(9_007_199_254_740_991) == "9007199254740991")
        #expect(text(9_007_199_254_740_992) == "9007199254740992.0")
        #expect(text(0.1 + 0.2) == "0.30000000000000004")
        #expect(text(.infinity) == "null")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let x: Double
            switch rng.next() % 4 {
            case 0: x = Double(Int.random(in: -10_000_000...10_000_000, using: &rng)) / 100
            case 1: x = Double(Int.random(in: 1...100_000_000, using: &rng)) / 100_000_000
            case 2: x = Double.random(in: -1e6...1e6, using: &rng)
            default: x = Double(bitPattern: rng.next())
            }
            guard x.isFinite else { continue }
            let t = text(x)
            #expect(Double(t) == x, "\(t) does not round-trip \(x)")
            if x.rounded(.towardZero) == x && x.magnitude < 9_007_199_254_740_992 {
                #expect(t == String(Int64(x)))
            } else {
                #expect(t == x.description)
            }
        }
    }
}

@Suite struct FinnhubRoundTripTests {
    static let alphabet: [Character] = Array("AZaz09 :._-/\\\"'é中😀\u{0}\u{1}\n\t\u{7F}\u{FFFF}\u{10FFFF}")

    static func randomString<R: RandomNumberGenerator>(_ rng: inout R, minLength: Int) -> String {
        String((0..<Int.random(in: minLength...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
    }

    static func randomDouble<R: RandomNumberGenerator>(_ rng: inout R) -> Double {
        while true {
            let x: Double
            switch rng.next() % 5 {
            case 0: x = Double(Int.random(in: 1...5_000_000, using: &rng)) / 100
            case 1: x = Double(Int.random(in: 0...1_000, using: &rng))
            case 2: x = Double.random(in: 0...1, using: &rng)
            case 3: x = -Double.random(in: 0...1e20, using: &rng)
            default: x = Double(bitPattern: rng.next())
            }
            if x.isFinite { return x }
        }
    }

    static func randomTrade<R: RandomNumberGenerator>(_ rng: inout R) -> Trade {
        Trade(symbol: randomString(&rng, minLength: 1), price: randomDouble(&rng),
              timestamp: Int64(bitPattern: rng.next()) >> Int64.random(in: 0...40, using: &rng),
              volume: randomDouble(&rng),
              conditions: rng.next() % 3 == 0 ? nil : (0..<Int.random(in: 0...3, using: &rng)).map { _ in randomString(&rng, minLength: 0) })
    }

    @Test func decodeOfEncodeIsIdentity() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let trades = (0..<Int.random(in: 0...12, using: &rng)).map { _ in Self.randomTrade(&rng) }
            let text = FinnhubCodec.encodeTrades(trades)
            #expect(try decode(text) == .trades(trades), "\(text)")
            var bytes: [UInt8] = []
            FinnhubCodec.encodeTrades(trades, into: &bytes)
            #expect(bytes == Array(text.utf8))
        }
    }

    @Test("trades written as Finnhub writes them and the same trades spaced out decode the same, mixed in one frame")
    func canonicalAndSpacedTradesDecodeTheSame() throws {
        var rng = SystemRandomNumberGenerator()
        let prefix = #"{"type":"trade","data":["#
        for _ in 0..<1_000 {
            let trades = (0..<Int.random(in: 1...12, using: &rng)).map { _ in Self.randomTrade(&rng) }
            // No generated string holds a comma, so `,"` only ever starts a key.
            let objects = trades.map { trade in
                let text = FinnhubCodec.encodeTrades([trade])
                let object = String(text.dropFirst(prefix.count).dropLast(2))
                guard Bool.random(using: &rng) else { return object }
                var spaced = "{ "
                var afterComma = false
                for ch in object.dropFirst() {
                    if ch == "\"" && afterComma { spaced += " " }
                    spaced.append(ch)
                    afterComma = ch == ","
                }
                return spaced
            }
            let frame = prefix + objects.joined(separator: ",") + "]}"
            #expect(try decode(frame) == .trades(trades), "\(frame)")
        }
    }
}
