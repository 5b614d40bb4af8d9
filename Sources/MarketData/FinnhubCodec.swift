/// A frame sent by Finnhub's WebSocket server.
public enum FinnhubFrame: Sendable, Equatable {
    case trades([Trade])
    case ping
    case error(message: String)
    /// Any other well-formed frame, e.g. `news`; never a decoding error.
    case unknown(type: String)
}

/// A frame sent by a client to Finnhub.
public enum ClientMessage: Sendable, Equatable {
    case subscribe(String)
    case unsubscribe(String)
}

/// Why and where a frame could not be decoded.
public struct FrameDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// JSON path of the problem, e.g. `data[3].p`, or `$` for the whole frame.
    public var path: String
    /// What was wrong, e.g. `expected a number, found a string`.
    public var reason: String
    /// Byte offset in the frame.
    public var offset: Int

    public init(path: String, reason: String, offset: Int) {
        self.path = path; self.reason = reason; self.offset = offset
    }

    /// `path: reason (byte offset)`.
    public var description: String { "\(path): \(reason) (byte \(offset))" }
}

/// Strict decoding and deterministic encoding of Finnhub WebSocket frames.
public enum FinnhubCodec {
    /// Decodes one server frame. Required keys: `type`; `data` for `trade`; `msg` for `error`;
    /// `s` (non-empty string), `p` and `v` (finite numbers), `t` (integer) per trade. `c` may be an
    /// array of strings, `null` or absent (`nil`). Keys may come in any order; unknown keys are ignored.
    public static func decode(_ frame: UnsafeRawBufferPointer) throws(FrameDecodingError) -> FinnhubFrame {
        var scanner = JSONScanner(frame)
        var path = FramePath()
        do {
            return try decodeFrame(&scanner, &path)
        } catch {
            throw FrameDecodingError(path: path.rendered, reason: error.reason, offset: error.offset)
        }
    }

    /// Decodes one server frame from its text, with the same rules as the byte-buffer overload.
    public static func decode(_ frame: String) throws(FrameDecodingError) -> FinnhubFrame {
        var text = frame
        let result = text.withUTF8 { utf8 in
            Result { () throws(FrameDecodingError) in try decode(UnsafeRawBufferPointer(utf8)) }
        }
        return try result.get()
    }

    /// Decodes `{"type":"subscribe"|"unsubscribe","symbol":"…"}` with a non-empty symbol.
    public static func decodeClientMessage(_ text: String) throws(FrameDecodingError) -> ClientMessage {
        var text = text
        let result = text.withUTF8 { utf8 in
            Result { () throws(FrameDecodingError) in try decodeClient(UnsafeRawBufferPointer(utf8)) }
        }
        return try result.get()
    }

    /// `{"type":"trade","data":[{"s":…,"p":…,"t":…,"v":…,"c":…},…]}` with keys in exactly this order.
    public static func encodeTrades(_ trades: [Trade]) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(32 + trades.count * 80)
        encodeTrades(trades, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Appends the bytes of ``encodeTrades(_:)`` to `buffer`.
    public static func encodeTrades(_ trades: [Trade], into buffer: inout [UInt8]) {
        var maxBytes = 32
        for trade in trades {
            maxBytes += 40 + 2 * JSONWriter.maxNumberBytes + JSONWriter.maxBytes(trade.symbol) + JSONWriter.maxBytes(trade.conditions)
        }
        JSONWriter.append(to: &buffer, maxBytes: maxBytes) { w in
            w.literal(#"{"type":"trade","data":["#)
            for i in trades.indices {
                let trade = trades[i]
                w.literal(i == 0 ? #"{"s":"# : #",{"s":"#)
                w.string(trade.symbol)
                w.literal(#","p":"#)
                w.number(trade.price)
                w.literal(#","t":"#)
                w.integer(trade.timestamp)
                w.literal(#","v":"#)
                w.number(trade.volume)
                w.literal(#","c":"#)
                w.conditions(trade.conditions)
                w.byte(UInt8(ascii: "}"))
            }
            w.literal("]}")
        }
    }

    /// `{"type":"ping"}`.
    public static func encodePing() -> String { #"{"type":"ping"}"# }

    /// `{"type":"error","msg":"…"}`.
    public static func encodeError(_ message: String) -> String {
        var buffer: [UInt8] = []
        JSONWriter.append(to: &buffer, maxBytes: 32 + JSONWriter.maxBytes(message)) { w in
            w.literal(#"{"type":"error","msg":"#)
            w.string(message)
            w.byte(UInt8(ascii: "}"))
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// `{"type":"subscribe","symbol":"…"}` or `{"type":"unsubscribe","symbol":"…"}`.
    public static func encodeClientMessage(_ message: ClientMessage) -> String {
        let (type, symbol): (StaticString, String)
        switch message {
        case .subscribe(let s): (type, symbol) = (#"{"type":"subscribe","symbol":"#, s)
        case .unsubscribe(let s): (type, symbol) = (#"{"type":"unsubscribe","symbol":"#, s)
        }
        var buffer: [UInt8] = []
        JSONWriter.append(to: &buffer, maxBytes: 40 + JSONWriter.maxBytes(symbol)) { w in
            w.literal(type)
            w.string(symbol)
            w.byte(UInt8(ascii: "}"))
        }
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Where the decoder is, kept as plain values and rendered only on error.
private struct FramePath {
    var top: StaticString = "$"
    var index = -1
    var field: StaticString = ""
    var element = -1

    var rendered: String {
        var s = top.description
        if index >= 0 { s += "[\(index)]" }
        if field.utf8CodeUnitCount > 0 { s += "." + field.description }
        if element >= 0 { s += "[\(element)]" }
        return s
    }
}

private enum TopKey { case type, data, msg, symbol, other }
private enum TradeKey { case s, p, t, v, c, other }

@inline(__always)
private func classifyTopKey(_ key: UnsafeRawBufferPointer) -> TopKey {
    if keyEquals(key, "type") { return .type }
    if keyEquals(key, "data") { return .data }
    if keyEquals(key, "msg") { return .msg }
    if keyEquals(key, "symbol") { return .symbol }
    return .other
}

@inline(__always)
private func classifyTradeKey(_ key: UnsafeRawBufferPointer) -> TradeKey {
    guard key.count == 1 else { return .other }
    switch key[0] {
    case UInt8(ascii: "s"): return .s
    case UInt8(ascii: "p"): return .p
    case UInt8(ascii: "t"): return .t
    case UInt8(ascii: "v"): return .v
    case UInt8(ascii: "c"): return .c
    default: return .other
    }
}

extension FinnhubCodec {
    private static func decodeFrame(_ s: inout JSONScanner, _ path: inout FramePath) throws(JSONScanError) -> FinnhubFrame {
        let objectStart = s.pos
        var type: String?
        var trades: [Trade]?
        var deferredData: Int?
        var message: String?
        if try s.enterObject() {
            repeat {
                switch try s.readKey(classifyTopKey) {
                case .type:
                    path.top = "type"
                    type = try s.readString()
                case .data:
                    path.top = "data"
                    if type == "trade" {
                        trades = try decodeTrades(&s, &path)
                    } else {
                        _ = s.peek()
                        let start = s.pos
                        // Finnhub sends "data" before "type": decode it as trades at once and drop it if
                        // "type" turns out otherwise; if it does not decode, skip it and decide (and name
                        // the error) once "type" is known.
                        if type == nil, let decoded = try? decodeTrades(&s, &path) {
                            trades = decoded
                        } else {
                            s.pos = start
                            path.index = -1
                            path.field = ""
                            deferredData = start
                            try s.skipValue()
                        }
                    }
                case .msg:
                    path.top = "msg"
                    message = try s.readString()
                case .symbol, .other:
                    try s.skipValue()
                }
                path.top = "$"
            } while try s.nextMember()
        }
        try s.expectEnd()
        guard let type else { throw JSONScanError(reason: #"missing key "type""#, offset: objectStart) }
        switch type {
        case "trade":
            if let trades, deferredData == nil { return .trades(trades) }
            guard let deferredData else { throw JSONScanError(reason: #"missing key "data""#, offset: objectStart) }
            path.top = "data"
            s.pos = deferredData
            return .trades(try decodeTrades(&s, &path))
        case "ping":
            return .ping
        case "error":
            guard let message else { throw JSONScanError(reason: #"missing key "msg""#, offset: objectStart) }
            return .error(message: message)
        default:
            return .unknown(type: type)
        }
    }

    /// Values already built in one frame: its symbols, and its condition lists by where their bytes are.
    private struct FrameMemo {
        var symbols: [JSONScanner.SeenString] = []
        var conditions: [(start: Int, end: Int, value: [String]?)] = []
        init() { symbols.reserveCapacity(8); conditions.reserveCapacity(4) }
    }

    private static func decodeTrades(_ s: inout JSONScanner, _ path: inout FramePath) throws(JSONScanError) -> [Trade] {
        var trades: [Trade] = []
        guard try s.enterArray() else { return trades }
        trades.reserveCapacity(16)
        var memo = FrameMemo()
        repeat {
            path.index = trades.count
            trades.append(try decodeTrade(&s, &path, &memo))
        } while try s.nextElement()
        path.index = -1
        return trades
    }

    /// The trade at the current position when it is written as Finnhub and ``encodeTrades(_:)``
    /// write it: keys `s`, `p`, `t`, `v`, then optionally `c`, in that order, no whitespace, plain
    /// numbers. Anything else (or anything invalid) gives nil with nothing consumed, and the general
    /// decoder reads it, so both give the same trade or the same error.
    @inline(__always)
    private static func decodeCanonicalTrade(_ s: inout JSONScanner, _ memo: inout FrameMemo) -> Trade? {
        let start = s.pos
        guard s.consumeExactly(#"{"s":"#),
              let symbol = try? s.readString(reusingAny: &memo.symbols, limit: 8), !symbol.isEmpty,
              s.consumeExactly(#","p":"#), let p = s.readPlainNumber(),
              s.consumeExactly(#","t":"#), let t = s.readPlainNumber(), let timestamp = s.int64Value(t),
              s.consumeExactly(#","v":"#), let v = s.readPlainNumber()
        else { s.pos = start; return nil }
        var conditions: [String]?
        if s.consumeExactly(#","c":"#) {
            var path = FramePath()
            do { conditions = try readConditions(&s, &path, &memo) } catch { s.pos = start; return nil }
        }
        guard s.consumeExactly("}") else { s.pos = start; return nil }
        return Trade(symbol: symbol, price: s.doubleValue(p), timestamp: timestamp, volume: s.doubleValue(v), conditions: conditions)
    }

    private static func decodeTrade(_ s: inout JSONScanner, _ path: inout FramePath, _ memo: inout FrameMemo) throws(JSONScanError) -> Trade {
        _ = s.peek()
        if let trade = decodeCanonicalTrade(&s, &memo) { return trade }
        let objectStart = s.pos
        var symbol: String?
        var price: Double?
        var timestamp: Int64?
        var volume: Double?
        var conditions: [String]?
        if try s.enterObject() {
            repeat {
                switch try s.readKey(classifyTradeKey) {
                case .s:
                    path.field = "s"
                    _ = s.peek()
                    let start = s.pos
                    let value = try s.readString(reusingAny: &memo.symbols, limit: 8)
                    guard !value.isEmpty else { throw JSONScanError(reason: "expected a non-empty string", offset: start) }
                    symbol = value
                case .p:
                    path.field = "p"
                    price = try readFinite(&s)
                case .t:
                    path.field = "t"
                    timestamp = try readInteger(&s)
                case .v:
                    path.field = "v"
                    volume = try readFinite(&s)
                case .c:
                    path.field = "c"
                    conditions = try readConditions(&s, &path, &memo)
                case .other:
                    try s.skipValue()
                }
                path.field = ""
            } while try s.nextMember()
        }
        guard let symbol else { throw JSONScanError(reason: #"missing key "s""#, offset: objectStart) }
        guard let price else { throw JSONScanError(reason: #"missing key "p""#, offset: objectStart) }
        guard let timestamp else { throw JSONScanError(reason: #"missing key "t""#, offset: objectStart) }
        guard let volume else { throw JSONScanError(reason: #"missing key "v""#, offset: objectStart) }
        return Trade(symbol: symbol, price: price, timestamp: timestamp, volume: volume, conditions: conditions)
    }

    @inline(__always)
    private static func readFinite(_ s: inout JSONScanner) throws(JSONScanError) -> Double {
        let n = try s.readNumber()
        let value = s.doubleValue(n)
        guard value.isFinite else { throw JSONScanError(reason: "number out of range", offset: n.start) }
        return value
    }

    @inline(__always)
    private static func readInteger(_ s: inout JSONScanner) throws(JSONScanError) -> Int64 {
        let n = try s.readNumber()
        guard let value = s.int64Value(n) else {
            let reason = n.isIntegerSyntax ? "integer out of range" : "expected an integer, found a number with a fraction or exponent"
            throw JSONScanError(reason: reason, offset: n.start)
        }
        return value
    }

    private static func readConditions(_ s: inout JSONScanner, _ path: inout FramePath, _ memo: inout FrameMemo) throws(JSONScanError) -> [String]? {
        if s.consumeNull() { return nil }
        for seen in memo.conditions where s.consumeRepeat(of: seen.start, seen.end) { return seen.value }
        let start = s.pos
        var conditions: [String] = []
        if try s.enterArray() {
            repeat {
                path.element = conditions.count
                conditions.append(try s.readString())
            } while try s.nextElement()
            path.element = -1
        }
        if memo.conditions.count < 4 { memo.conditions.append((start, s.pos, conditions)) }
        return conditions
    }

    private static func decodeClient(_ bytes: UnsafeRawBufferPointer) throws(FrameDecodingError) -> ClientMessage {
        var s = JSONScanner(bytes)
        var path = FramePath()
        do throws(JSONScanError) {
            var type: String?
            var typeOffset = 0
            var symbol: String?
            if try s.enterObject() {
                repeat {
                    switch try s.readKey(classifyTopKey) {
                    case .type:
                        path.top = "type"
                        _ = s.peek()
                        typeOffset = s.pos
                        type = try s.readString()
                    case .symbol:
                        path.top = "symbol"
                        _ = s.peek()
                        let start = s.pos
                        let value = try s.readString()
                        guard !value.isEmpty else { throw JSONScanError(reason: "expected a non-empty string", offset: start) }
                        symbol = value
                    case .data, .msg, .other:
                        try s.skipValue()
                    }
                    path.top = "$"
                } while try s.nextMember()
            }
            try s.expectEnd()
            guard let type else { throw JSONScanError(reason: #"missing key "type""#, offset: 0) }
            guard let symbol else { throw JSONScanError(reason: #"missing key "symbol""#, offset: 0) }
            switch type {
            case "subscribe": return .subscribe(symbol)
            case "unsubscribe": return .unsubscribe(symbol)
            default:
                path.top = "type"
                throw JSONScanError(reason: #"expected "subscribe" or "unsubscribe", found "\#(type)""#, offset: typeOffset)
            }
        } catch {
            throw FrameDecodingError(path: path.rendered, reason: error.reason, offset: error.offset)
        }
    }
}
