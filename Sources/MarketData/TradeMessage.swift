/// Why a Kafka trade message was rejected (suitable for a dead-letter queue).
public struct TradeMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The Kafka value for one trade:
/// `{"symbol":"AAPL","price":164.06,"volume":100,"timestamp":1680286539953,"conditions":["1","12"]}`.
public enum TradeMessage {
    /// The largest accepted symbol, in UTF-8 bytes.
    public static let maxSymbolBytes = 256

    /// Appends the message bytes (keys in the order above; `"conditions":null` when nil).
    public static func encode(_ trade: Trade, into buffer: inout [UInt8]) {
        let maxBytes = 80 + 2 * JSONWriter.maxNumberBytes + JSONWriter.maxBytes(trade.symbol) + JSONWriter.maxBytes(trade.conditions)
        JSONWriter.append(to: &buffer, maxBytes: maxBytes) { w in
            w.literal(#"{"symbol":"#)
            w.string(trade.symbol)
            w.literal(#","price":"#)
            w.number(trade.price)
            w.literal(#","volume":"#)
            w.number(trade.volume)
            w.literal(#","timestamp":"#)
            w.integer(trade.timestamp)
            w.literal(#","conditions":"#)
            w.conditions(trade.conditions)
            w.byte(UInt8(ascii: "}"))
        }
    }

    /// The message bytes; see ``encode(_:into:)``.
    public static func encode(_ trade: Trade) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(96)
        encode(trade, into: &buffer)
        return buffer
    }

    /// Decodes and validates one message. Requires a single JSON object (whitespace around it allowed) with
    /// `symbol` (1–256 UTF-8 bytes), `price` (finite, > 0), `volume` (finite, ≥ 0) and `timestamp` (integer > 0);
    /// `conditions` may be an array of strings, `null` or absent. Keys may come in any order; unknown keys are ignored.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(TradeMessageError) -> Trade {
        var memo = Memo(keeps: false)
        return try decode(bytes, memo: &memo)
    }

    /// Symbols and condition lists already built, with their JSON text: a message that repeats one
    /// of those texts gets the value without building it again. Symbols are kept in 64 pairs of
    /// slots chosen by a hash of their first bytes, the first two of a pair staying; the first 4
    /// condition lists are kept. Keep one per batch of messages.
    public struct Memo: Sendable {
        /// The symbols kept, in the order they were first seen.
        var symbols: [(text: [UInt8], value: String)] = []
        /// Per slot, 0 when empty, else 1 + the index of its symbol in `symbols`. Empty until the first
        /// symbol is kept.
        var symbolSlotIndex: [UInt8] = []
        var conditions: [(text: [UInt8], value: [String]?)] = []
        let keeps: Bool
        static let symbolSlots = 128
        public init() { keeps = true }
        init(keeps: Bool) { self.keeps = keeps }

        /// The first slot of the pair for the string whose opening quote is at `start` of `bytes`: the
        /// top bits of a multiplicative hash of the 16 bytes after the quote (fewer at the end of the
        /// input). Bytes past the string's end take part too, so the same symbol followed by other
        /// bytes may land elsewhere; that costs a miss, never a wrong value (the slot's text is compared).
        @inline(__always)
        static func pair(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int {
            var a: UInt64 = 0, b: UInt64 = 0
            if start + 17 <= bytes.count {
                a = bytes.loadUnaligned(fromByteOffset: start + 1, as: UInt64.self)
                b = bytes.loadUnaligned(fromByteOffset: start + 9, as: UInt64.self)
            } else {
                for i in (start + 1)..<min(bytes.count, start + 17) { a = a << 8 ^ b >> 56; b = b << 8 | UInt64(bytes[i]) }
            }
            let h = (a &* 0x9E37_79B9_7F4A_7C15) ^ (b &* 0xC2B2_AE3D_27D4_EB4F)
            return Int(truncatingIfNeeded: h >> 58) &* 2
        }
    }

    /// ``decode(_:)``, reusing the values of `memo` where the message repeats their text.
    public static func decode(_ bytes: UnsafeRawBufferPointer, memo: inout Memo) throws(TradeMessageError) -> Trade {
        var s = JSONScanner(bytes)
        if let trade = decodeCanonical(&s, &memo) { return trade }
        s.pos = 0
        do {
            return try decode(&s, &memo)
        } catch let error as JSONScanError {
            throw TradeMessageError(reason: "not valid JSON: \(error.reason) at byte \(error.offset)")
        } catch let error as TradeMessageError {
            throw error
        } catch {
            throw TradeMessageError(reason: "\(error)")
        }
    }

    private enum Key { case symbol, price, volume, timestamp, conditions, other }

    @inline(__always)
    private static func classify(_ key: UnsafeRawBufferPointer) -> Key {
        switch key.count {
        case 5 where keyEquals(key, "price"): return .price
        case 6 where keyEquals(key, "symbol"): return .symbol
        case 6 where keyEquals(key, "volume"): return .volume
        case 9 where keyEquals(key, "timestamp"): return .timestamp
        case 10 where keyEquals(key, "conditions"): return .conditions
        default: return .other
        }
    }

    private static func decode(_ s: inout JSONScanner, _ memo: inout Memo) throws -> Trade {
        if let c = s.peek(), c != UInt8(ascii: "{") {
            throw TradeMessageError(reason: "expected a JSON object, got \(s.foundInsteadOfObject())")
        }
        var symbol: String?
        var price: Double?
        var volume: Double?
        var timestamp: Int64?
        var conditions: [String]?
        if try s.enterObject() {
            repeat {
                switch try s.readKey(classify) {
                case .symbol:
                    symbol = try readSymbol(&s, &memo)
                case .price:
                    let start = s.pos
                    guard let value = try number(&s), value.isFinite, value > 0 else {
                        throw try invalid("price must be a finite number > 0", &s, start)
                    }
                    price = value
                case .volume:
                    let start = s.pos
                    guard let value = try number(&s), value.isFinite, value >= 0 else {
                        throw try invalid("volume must be a finite number >= 0", &s, start)
                    }
                    volume = value
                case .timestamp:
                    let start = s.pos
                    var value: Int64?
                    if let c = s.peek(), c == UInt8(ascii: "-") || (c &- 0x30) < 10 {
                        value = s.int64Value(try s.readNumber())
                    }
                    guard let value, value > 0 else { throw try invalid("timestamp must be a positive integer", &s, start) }
                    timestamp = value
                case .conditions:
                    conditions = try readConditions(&s, &memo)
                case .other:
                    try s.skipValue()
                }
            } while try s.nextMember()
        }
        s.skipWhitespace()
        guard s.pos == s.bytes.count else { throw TradeMessageError(reason: "trailing data after the JSON object at byte \(s.pos)") }
        guard let symbol else { throw TradeMessageError(reason: #"missing field "symbol""#) }
        guard let price else { throw TradeMessageError(reason: #"missing field "price""#) }
        guard let volume else { throw TradeMessageError(reason: #"missing field "volume""#) }
        guard let timestamp else { throw TradeMessageError(reason: #"missing field "timestamp""#) }
        return Trade(symbol: symbol, price: price, timestamp: timestamp, volume: volume, conditions: conditions)
    }

    /// The message when it is written as ``encode(_:into:)`` writes it: keys `symbol`, `price`,
    /// `volume`, `timestamp`, `conditions` in that order, no whitespace, plain numbers (no exponent),
    /// every value valid. Anything else gives nil and the general decoder reads the message from its
    /// start, so both give the same trade or the same error.
    @inline(__always)
    private static func decodeCanonical(_ s: inout JSONScanner, _ memo: inout Memo) -> Trade? {
        guard s.consumeExactly(#"{"symbol":"#), let symbol = try? readSymbol(&s, &memo),
              s.consumeExactly(#","price":"#), let p = s.readPlainNumber(), case let price = s.doubleValue(p), price.isFinite, price > 0,
              s.consumeExactly(#","volume":"#), let v = s.readPlainNumber(), case let volume = s.doubleValue(v), volume.isFinite, volume >= 0,
              s.consumeExactly(#","timestamp":"#), let t = s.readPlainNumber(), let timestamp = s.int64Value(t), timestamp > 0,
              s.consumeExactly(#","conditions":"#)
        else { return nil }
        let conditions: [String]?
        do { conditions = try readConditions(&s, &memo) } catch { return nil }
        guard s.consumeExactly("}"), s.pos == s.bytes.count else { return nil }
        return Trade(symbol: symbol, price: price, timestamp: timestamp, volume: volume, conditions: conditions)
    }

    /// The `symbol` value at the current position: the memo's value where the text repeats one it
    /// holds, else read, checked (a string of 1–``maxSymbolBytes`` UTF-8 bytes) and remembered.
    @inline(__always)
    private static func readSymbol(_ s: inout JSONScanner, _ memo: inout Memo) throws -> String {
        let start = s.pos
        guard s.peek() == UInt8(ascii: "\"") else { throw try invalid("symbol must be a non-empty string", &s, start) }
        let textStart = s.pos
        var slot: Int?
        if memo.keeps {
            let k = Memo.pair(s.bytes, at: textStart)
            if memo.symbolSlotIndex.isEmpty {
                slot = k
            } else {
                for i in k...k + 1 {
                    let entry = Int(memo.symbolSlotIndex[i])
                    guard entry > 0 else { if slot == nil { slot = i }; continue }
                    let seen = memo.symbols[entry - 1]
                    if seen.text.withUnsafeBytes({ s.consumeRepeat(of: $0) }) { return seen.value }
                }
            }
        }
        let value = try s.readString()
        guard !value.isEmpty else { throw TradeMessageError(reason: "symbol must be a non-empty string, got \"\"") }
        guard value.utf8.count <= maxSymbolBytes else {
            throw TradeMessageError(reason: "symbol must be at most \(maxSymbolBytes) UTF-8 bytes, got \(value.utf8.count)")
        }
        if let slot {
            if memo.symbolSlotIndex.isEmpty { memo.symbolSlotIndex = Array(repeating: 0, count: Memo.symbolSlots) }
            memo.symbols.append((Array(UnsafeRawBufferPointer(rebasing: s.bytes[textStart..<s.pos])), value))
            memo.symbolSlotIndex[slot] = UInt8(memo.symbols.count)
        }
        return value
    }

    /// The `conditions` value at the current position (an array of strings, or `null` for nil): the
    /// memo's value where the text repeats one it holds, else read and remembered.
    @inline(__always)
    private static func readConditions(_ s: inout JSONScanner, _ memo: inout Memo) throws -> [String]? {
        if let seen = memo.conditions.first(where: { seen in seen.text.withUnsafeBytes { s.consumeRepeat(of: $0) } }) {
            return seen.value
        }
        _ = s.peek()
        let start = s.pos
        var conditions: [String]?
        if !s.consumeNull() {
            guard s.peek() == UInt8(ascii: "[") else { throw try invalid("conditions must be an array of strings or null", &s, start) }
            var list: [String] = []
            if try s.enterArray() {
                list.reserveCapacity(4)
                repeat {
                    guard s.peek() == UInt8(ascii: "\"") else {
                        throw try invalid("conditions must be an array of strings or null", &s, start)
                    }
                    list.append(try s.readString())
                } while try s.nextElement()
            }
            conditions = list
        }
        if memo.keeps && memo.conditions.count < 4 { memo.conditions.append((Array(UnsafeRawBufferPointer(rebasing: s.bytes[start..<s.pos])), conditions)) }
        return conditions
    }

    @inline(__always)
    private static func number(_ s: inout JSONScanner) throws -> Double? {
        guard let c = s.peek(), c == UInt8(ascii: "-") || (c &- 0x30) < 10 else { return nil }
        return s.doubleValue(try s.readNumber())
    }

    /// An error quoting the offending value's JSON text (at most 64 bytes of it).
    private static func invalid(_ rule: String, _ s: inout JSONScanner, _ start: Int) throws -> TradeMessageError {
        s.pos = start
        _ = s.peek()
        let valueStart = s.pos
        try s.skipValue()
        let end = min(s.pos, valueStart + 64)
        var text = String(decoding: UnsafeRawBufferPointer(rebasing: s.bytes[valueStart..<end]), as: UTF8.self)
        if end < s.pos { text += "…" }
        return TradeMessageError(reason: "\(rule), got \(text)")
    }
}
