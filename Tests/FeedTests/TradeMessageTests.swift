import Foundation
import Feeds
import MarketData
import Exchange
import Recording
import Testing

private func decode(_ text: String) throws(TradeMessageError) -> Trade {
    let bytes = Array(text.utf8)
    let result = bytes.withUnsafeBytes { buffer in
        Result { () throws(TradeMessageError) in try TradeMessage.decode(buffer) }
    }
    return try result.get()
}

private func reason(_ text: String) -> String? {
    do { _ = try decode(text); return nil } catch { return error.reason }
}

@Suite struct TradeMessageTests {
    @Test func encodesExactBytes() {
        let stock = Trade(symbol: "AAPL", price: 164.06, timestamp: 1_680_286_539_953, volume: 100, conditions: ["1", "12"])
        #expect(String(decoding: TradeMessage.encode(stock), as: UTF8.self)
            == #"{"symbol":"AAPL","price":164.06,"volume":100,"timestamp":1680286539953,"conditions":["1","12"]}"#)
        let crypto = Trade(symbol: "BINANCE:BTCUSDT", price: 28432.51, timestamp: 1, volume: 0.0125)
        #expect(String(decoding: TradeMessage.encode(crypto), as: UTF8.self)
            == #"{"symbol":"BINANCE:BTCUSDT","price":28432.51,"volume":0.0125,"timestamp":1,"conditions":null}"#)
        var buffer = Array("k=".utf8)
        TradeMessage.encode(crypto, into: &buffer)
        #expect(buffer == Array("k=".utf8) + TradeMessage.encode(crypto))
    }

    @Test func roundTripsValidTrades() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var trade = FinnhubRoundTripTests.randomTrade(&rng)
            trade.price = trade.price.magnitude + 0.01
            trade.volume = trade.volume.magnitude
            trade.timestamp = Int64.random(in: 1...Int64.max, using: &rng)
            let bytes = TradeMessage.encode(trade)
            #expect(try bytes.withUnsafeBytes { try TradeMessage.decode($0) } == trade)
        }
    }

    /// A memo kept over a batch gives every message the value it decodes to alone, whether the
    /// message repeats a remembered symbol or condition list, differs by a byte, escapes the same
    /// text, or is rejected (and a rejected message leaves the memo as good as before).
    @Test func memoOverABatchDecodesEachMessageAsAlone() throws {
        var texts: [String] = []
        for i in 0..<40 {
            let symbols = ["AAPL", "AAPLX", "A", "BINANCE:BTCUSDT", "caf\\u00e9", "café", "MSFT\\\"Q", "S\(i % 11)", "T\(i % 13)"]
            let conditions = [#"["1","12"]"#, #"["1","1"]"#, #"["1", "12"]"#, "null", "[]", #"["\u0031"]"#]
            let symbol = symbols[i % symbols.count], c = conditions[i % conditions.count]
            texts.append(#"{"symbol":"\#(symbol)","price":1\#(i).5,"volume":\#(i),"timestamp":\#(1000 + i),"conditions":\#(c)}"#)
            if i % 7 == 0 { texts.append(#"{"symbol":"\#(symbol)","price":-1,"volume":1,"timestamp":1}"#) }
            if i % 9 == 0 { texts.append(#"{"symbol": "\#(symbol)" ,"price":2,"volume":1,"timestamp":5}"#) }
        }
        var memo = TradeMessage.Memo()
        var rejected = 0
        for text in texts {
            let alone = Result { () throws(TradeMessageError) in try decode(text) }
            let withMemo = Array(text.utf8).withUnsafeBytes { b in Result { () throws(TradeMessageError) in try TradeMessage.decode(b, memo: &memo) } }
            switch (alone, withMemo) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(text)")
            case (.failure(let a), .failure(let b)): #expect(a == b, "\(text)"); rejected += 1
            default: Issue.record("\(text): alone \(alone), with the memo \(withMemo)")
            }
        }
        #expect(rejected == 6)
        // More symbols than the memo has slots, in an order that makes them displace one another:
        // every message still decodes to what it decodes to alone.
        var rng = SystemRandomNumberGenerator()
        let many = (0..<300).map { "SYM\($0)" } + ["BINANCE:BTCUSDT", "A", "caf\\u00e9", "MSFT\\\"Q"]
        for _ in 0..<5_000 {
            let symbol = many.randomElement(using: &rng)!
            let text = #"{"symbol":"\#(symbol)","price":2.5,"volume":1,"timestamp":7,"conditions":null}"#
            let withMemo = try Array(text.utf8).withUnsafeBytes { b throws(TradeMessageError) in try TradeMessage.decode(b, memo: &memo) }
            #expect(withMemo == (try decode(text)), "\(text)")
        }
    }

    /// A message as the encoder writes it and the same message with whitespace between its members
    /// (which the one-pass read of the encoder's form does not take) decode to the same trade, with
    /// and without a memo.
    @Test func encodedAndSpacedMessagesDecodeTheSame() throws {
        var rng = SystemRandomNumberGenerator()
        var memo = TradeMessage.Memo()
        for _ in 0..<2_000 {
            var trade = FinnhubRoundTripTests.randomTrade(&rng)
            trade.price = trade.price.magnitude + 0.01
            trade.volume = trade.volume.magnitude
            trade.timestamp = Int64.random(in: 1...Int64.max, using: &rng)
            let text = String(decoding: TradeMessage.encode(trade), as: UTF8.self)
            // The keys, in the encoder's order, are the only places `,"` and `":` stand next to a key.
            var spaced = text
            for key in ["price", "volume", "timestamp", "conditions"] {
                spaced = spaced.replacingOccurrences(of: #","\#(key)":"#, with: #" , "\#(key)" : "#)
            }
            #expect(spaced != text)
            for message in [text, spaced] {
                #expect(try decode(message) == trade, "\(message)")
                let withMemo = try Array(message.utf8).withUnsafeBytes { b throws(TradeMessageError) in try TradeMessage.decode(b, memo: &memo) }
                #expect(withMemo == trade, "\(message)")
            }
        }
    }

    @Test func acceptsAnyKeyOrderUnknownKeysAndWhitespace() throws {
        let text = " {\"conditions\" : [], \"timestamp\":5, \"extra\":{\"a\":[1,null]}, \"volume\":0, \"price\":1e-2,\n\"symbol\":\"\\u0041\"} \n"
        #expect(try decode(text) == Trade(symbol: "A", price: 0.01, timestamp: 5, volume: 0, conditions: []))
        #expect(try decode(#"{"symbol":"A","price":1,"volume":1,"timestamp":1}"#).conditions == nil)
    }

    @Test(arguments: [
        ("", "not valid JSON: expected an object, found end of input at byte 0"),
        ("hello", "expected a JSON object, got not JSON: starts with 'hello'"),
        ("test message with a long text", "expected a JSON object, got not JSON: starts with 'test message with a long'…"),
        ("fail\u{1B}[31m", "expected a JSON object, got not JSON: starts with 'fail\\x1B[31m'"),
        ("true", "expected a JSON object, got a boolean"),
        ("null ", "expected a JSON object, got null"),
        ("[1]", "expected a JSON object, got an array"),
        (#"{"symbol":"A","price":1,"volume":1}"#, #"missing field "timestamp""#),
        (#"{"price":1,"volume":1,"timestamp":1}"#, #"missing field "symbol""#),
        (#"{"symbol":"A","volume":1,"timestamp":1}"#, #"missing field "price""#),
        (#"{"symbol":"A","price":1,"timestamp":1}"#, #"missing field "volume""#),
        (#"{"symbol":"A","price":-1,"volume":1,"timestamp":1}"#, "price must be a finite number > 0, got -1"),
        (#"{"symbol":"A","price":0,"volume":1,"timestamp":1}"#, "price must be a finite number > 0, got 0"),
        (#"{"symbol":"A","price":1e999,"volume":1,"timestamp":1}"#, "price must be a finite number > 0, got 1e999"),
        (#"{"symbol":"A","price":"1","volume":1,"timestamp":1}"#, #"price must be a finite number > 0, got "1""#),
        (#"{"symbol":"A","price":1,"volume":-0.5,"timestamp":1}"#, "volume must be a finite number >= 0, got -0.5"),
        (#"{"symbol":"A","price":1,"volume":null,"timestamp":1}"#, "volume must be a finite number >= 0, got null"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1.5}"#, "timestamp must be a positive integer, got 1.5"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":0}"#, "timestamp must be a positive integer, got 0"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":"1"}"#, #"timestamp must be a positive integer, got "1""#),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":99999999999999999999}"#, "timestamp must be a positive integer, got 99999999999999999999"),
        (#"{"symbol":"","price":1,"volume":1,"timestamp":1}"#, #"symbol must be a non-empty string, got """#),
        (#"{"symbol":["A"],"price":1,"volume":1,"timestamp":1}"#, #"symbol must be a non-empty string, got ["A"]"#),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1,"conditions":[1]}"#, "conditions must be an array of strings or null, got [1]"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1,"conditions":"1"}"#, #"conditions must be an array of strings or null, got "1""#),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1} {}"#, "trailing data after the JSON object at byte 50"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1"#, "not valid JSON: expected ',' or '}', found end of input at byte 48"),
        // In the order and form the encoder writes, as the consumers mostly read them.
        (#"{"symbol":"A","price":0,"volume":1,"timestamp":1,"conditions":null}"#, "price must be a finite number > 0, got 0"),
        (#"{"symbol":"A","price":1e999,"volume":1,"timestamp":1,"conditions":null}"#, "price must be a finite number > 0, got 1e999"),
        (#"{"symbol":"A","price":1,"volume":-0.5,"timestamp":1,"conditions":null}"#, "volume must be a finite number >= 0, got -0.5"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":0,"conditions":null}"#, "timestamp must be a positive integer, got 0"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1.5,"conditions":null}"#, "timestamp must be a positive integer, got 1.5"),
        (#"{"symbol":"","price":1,"volume":1,"timestamp":1,"conditions":null}"#, #"symbol must be a non-empty string, got """#),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1,"conditions":[1]}"#, "conditions must be an array of strings or null, got [1]"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1,"conditions":null} {}"#, "trailing data after the JSON object at byte 68"),
        (#"{"symbol":"A","price":1,"volume":1,"timestamp":1,"conditions":null"#, "not valid JSON: expected ',' or '}', found end of input at byte 66"),
    ])
    func rejectsInvalidMessagesWithClearReason(text: String, expected: String) {
        #expect(reason(text) == expected)
    }

    @Test func limitsSymbolToUTF8Bytes() throws {
        func message(_ symbol: String) -> String { #"{"symbol":""# + symbol + #"","price":1,"volume":1,"timestamp":1}"# }
        #expect(try decode(message(String(repeating: "é", count: 128))).symbol.utf8.count == 256)
        #expect(reason(message(String(repeating: "é", count: 128) + "x")) == "symbol must be at most 256 UTF-8 bytes, got 257")
    }

    @Test func quotesLongValuesTruncated() {
        let long = String(repeating: "9", count: 100)
        let r = reason(#"{"symbol":"A","price":1,"volume":1,"timestamp":1."# + long + "}")
        #expect(r == "timestamp must be a positive integer, got 1." + String(repeating: "9", count: 62) + "…")
    }

    @Test func controlCharactersAreEscapedForLogsAndTerminals() {
        #expect("AAPL".escapingControlCharacters == "AAPL")
        #expect("A\nfake log line".escapingControlCharacters == "A\\nfake log line")
        #expect("\u{1B}[31mRED\u{7F}\u{9B}".escapingControlCharacters == "\\u{1B}[31mRED\\u{7F}\\u{9B}")
        #expect("BINANCE:BTCUSDT é".escapingControlCharacters == "BINANCE:BTCUSDT é")
    }
}
