import MarketData
/// What an alert rule watches.
public enum AlertCondition: Sendable, Hashable {
    /// Fires when a trade price moves from ≤ level to > level.
    case priceAbove(Double)
    /// Fires when a trade price moves from ≥ level to < level.
    case priceBelow(Double)
    /// Fires for every closed window with |change_pct| ≥ percent.
    case changeBeyond(Double)

    public var name: String {
        switch self { case .priceAbove: return "above"; case .priceBelow: return "below"; case .changeBeyond: return "change" }
    }
    public var level: Double {
        switch self { case .priceAbove(let l), .priceBelow(let l), .changeBeyond(let l): return l }
    }
}

/// One rule; `symbol == "*"` matches every symbol.
public struct AlertRule: Sendable, Hashable {
    public static let anySymbol = "*"
    public var symbol: String
    public var condition: AlertCondition
    public init(symbol: String, condition: AlertCondition) { self.symbol = symbol; self.condition = condition }
    public func matches(_ s: String) -> Bool { symbol == Self.anySymbol || symbol == s }
}

public enum AlertRuleParseError: Error, Equatable, CustomStringConvertible {
    case emptyRule(position: Int)
    case missingFields(rule: String)
    case emptySymbol(rule: String)
    case unknownKind(rule: String, kind: String)
    case invalidLevel(rule: String, text: String)
    case nonPositiveChange(rule: String)
    case nonPositiveLevel(rule: String)

    public var description: String {
        switch self {
        case .emptyRule(let i): return "alert rule #\(i + 1) is empty"
        case .missingFields(let r): return "alert rule '\(r)' must look like SYMBOL:above|below|change:NUMBER"
        case .emptySymbol(let r): return "alert rule '\(r)' has an empty symbol (use * for all symbols)"
        case .unknownKind(let r, let k): return "alert rule '\(r)': unknown kind '\(k)' (expected above, below or change)"
        case .invalidLevel(let r, let t): return "alert rule '\(r)': '\(t)' is not a finite number"
        case .nonPositiveChange(let r): return "alert rule '\(r)': change percent must be > 0"
        case .nonPositiveLevel(let r): return "alert rule '\(r)': a price level must be > 0 (trade prices are)"
        }
    }
}

public enum AlertRules {
    /// Parses comma-separated rules `SYMBOL:KIND:NUMBER` (KIND = above | below | change, case-insensitive).
    /// The symbol is everything before the last two `:`-separated fields, so `BINANCE:BTCUSDT:above:1` works.
    /// Whitespace around rules and fields is ignored; an all-blank string yields no rules; an empty rule
    /// (e.g. `a,,b` or a trailing comma) is an error. Levels must be finite; price levels and change percent must be > 0.
    public static func parse(_ text: String) throws -> [AlertRule] {
        if text.allSatisfy(\.isWhitespace) { return [] }
        return try text.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { i, raw in
            let rule = raw.trimmingWhitespace()
            guard !rule.isEmpty else { throw AlertRuleParseError.emptyRule(position: i) }
            var parts = rule.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
            guard parts.count >= 3 else { throw AlertRuleParseError.missingFields(rule: rule) }
            let levelText = parts.removeLast(), kind = parts.removeLast().lowercased()
            let symbol = parts.joined(separator: ":")
            guard !symbol.isEmpty else { throw AlertRuleParseError.emptySymbol(rule: rule) }
            guard let level = Double(levelText), level.isFinite else { throw AlertRuleParseError.invalidLevel(rule: rule, text: levelText) }
            switch kind {
            case "above", "below":
                guard level > 0 else { throw AlertRuleParseError.nonPositiveLevel(rule: rule) }
                return AlertRule(symbol: symbol, condition: kind == "above" ? .priceAbove(level) : .priceBelow(level))
            case "change":
                guard level > 0 else { throw AlertRuleParseError.nonPositiveChange(rule: rule) }
                return AlertRule(symbol: symbol, condition: .changeBeyond(level))
            default: throw AlertRuleParseError.unknownKind(rule: rule, kind: kind)
            }
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// A fired alert. Price alerts carry the trade price/timestamp; change alerts carry the window
/// (timestamp = window end, price = window last price).
public struct Alert: Sendable, Equatable {
    public var symbol: String
    /// "above", "below" or "change".
    public var rule: String
    public var level: Double
    public var price: Double
    public var timestamp: Int64
    public var windowStart: Int64?
    public var windowEnd: Int64?
    public var changePct: Double?
    public var message: String

    public init(symbol: String, rule: String, level: Double, price: Double, timestamp: Int64,
                windowStart: Int64? = nil, windowEnd: Int64? = nil, changePct: Double? = nil, message: String) {
        self.symbol = symbol; self.rule = rule; self.level = level; self.price = price; self.timestamp = timestamp
        self.windowStart = windowStart; self.windowEnd = windowEnd; self.changePct = changePct; self.message = message
    }

    /// Deterministic JSON. Price alerts: symbol, rule, level, price, timestamp, message.
    /// Change alerts: symbol, rule, level, window_start, window_end, change_pct, price, timestamp, message.
    public func jsonBytes() -> [UInt8] {
        var w = JSONObjectWriter(capacity: 192)
        w.string("symbol", symbol); w.string("rule", rule); w.number("level", level)
        if let windowStart, let windowEnd {
            w.int("window_start", windowStart); w.int("window_end", windowEnd); w.number("change_pct", changePct)
        }
        w.number("price", price); w.int("timestamp", timestamp); w.string("message", message)
        return w.finish()
    }

    /// Decodes a `price-alerts` value (``jsonBytes()``); nil when it is not one.
    public init?(json: [UInt8]) {
        guard let o = JSONValue.parse(json), let symbol = o["symbol"]?.string, let rule = o["rule"]?.string,
              let level = o["level"]?.double, let price = o["price"]?.double, let timestamp = o["timestamp"]?.int64,
              let message = o["message"]?.string else { return nil }
        self.init(symbol: symbol, rule: rule, level: level, price: price, timestamp: timestamp, windowStart: o["window_start"]?.int64,
                  windowEnd: o["window_end"]?.int64, changePct: o["change_pct"]?.double, message: message)
    }
}

/// Evaluates rules. Price rules fire once per crossing: per (rule, symbol) the engine remembers whether the
/// last price was on the alert side (strictly above / strictly below the level). The first trade of a symbol
/// only establishes that side (no alert, even if already beyond the level); an alert fires on each transition
/// to the alert side; moving back re-arms. Alerts of one trade come in rule order.
public struct AlertEngine: Sendable {
    struct Key: Hashable { var rule: Int; var symbol: String }
    public let rules: [AlertRule]
    private var onAlertSide: [Key: Bool] = [:]
    private let hasPriceRules: Bool

    public init(rules: [AlertRule]) {
        self.rules = rules
        hasPriceRules = rules.contains { if case .changeBeyond = $0.condition { return false } else { return true } }
    }

    /// Price-crossing alerts triggered by `trade`.
    public mutating func evaluate(_ trade: Trade) -> [Alert] {
        guard hasPriceRules, trade.price.isFinite else { return [] }
        var out: [Alert] = []
        for (i, r) in rules.enumerated() where r.matches(trade.symbol) {
            let side: Bool
            switch r.condition {
            case .priceAbove(let l): side = trade.price > l
            case .priceBelow(let l): side = trade.price < l
            case .changeBeyond: continue
            }
            let key = Key(rule: i, symbol: trade.symbol)
            let previous = onAlertSide.updateValue(side, forKey: key)
            guard side, previous == false else { continue }
            let name = r.condition.name, level = r.condition.level
            out.append(Alert(symbol: trade.symbol, rule: name, level: level, price: trade.price, timestamp: trade.timestamp,
                             message: "\(trade.symbol) crossed \(name) \(JSONOutput.number(level)) at \(JSONOutput.number(trade.price))"))
        }
        return out
    }

    /// Change alerts for a closed window (stateless: every qualifying window fires).
    public func evaluate(_ window: WindowMetrics) -> [Alert] {
        guard let pct = window.changePct else { return [] }
        var out: [Alert] = []
        for r in rules where r.matches(window.symbol) {
            guard case .changeBeyond(let x) = r.condition, abs(pct) >= x else { continue }
            out.append(Alert(symbol: window.symbol, rule: "change", level: x, price: window.last, timestamp: window.windowEnd,
                             windowStart: window.windowStart, windowEnd: window.windowEnd, changePct: pct,
                             message: "\(window.symbol) changed \(JSONOutput.number(pct))% in window [\(window.windowStart), \(window.windowEnd)) (threshold \(JSONOutput.number(x))%)"))
        }
        return out
    }
}

extension AlertEngine {
    /// Writes which side of its level each (rule, symbol) was last on.
    public func encode(into w: inout StateWriter) {
        let sides = onAlertSide.sorted { ($0.key.rule, $0.key.symbol) < ($1.key.rule, $1.key.symbol) }
        w.int(sides.count)
        for (key, side) in sides { w.int(key.rule); w.string(key.symbol); w.bool(side) }
    }

    /// An engine over `rules` in the state ``encode(into:)`` wrote with the same rules.
    public init(rules: [AlertRule], restoring r: inout StateReader) throws {
        self.init(rules: rules)
        for _ in 0..<(try r.count()) {
            let rule = Int(try r.int()), symbol = try r.string(), side = try r.bool()
            guard rules.indices.contains(rule) else { throw StateDecodingError(reason: "alert rule #\(rule) does not exist") }
            onAlertSide[Key(rule: rule, symbol: symbol)] = side
        }
    }
}
