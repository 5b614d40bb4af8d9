import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline
import Foundation

/// The end state of one symbol.
public struct SymbolReport: Sendable, Hashable {
    public var symbol: String
    public var position: Double
    public var averageCost: Double
    public var lastPrice: Double
    public var realizedPnL: Double
    /// position × (last price − average cost).
    public var unrealizedPnL: Double
    public var fees: Double
    public var fills: Int
    public var bought: Double
    public var sold: Double
    public var openOrders: Int
}

/// What a run did. Every field depends only on the input trades and the configuration, so the same input gives
/// byte-identical ``jsonBytes()``, ``svg()`` and ``html()``.
public struct BacktestReport: Sendable, Hashable {
    public var strategy: String
    public var parameters: [String]
    public var initialCash: Double
    public var feeBps: Double
    public var latencyMs: Int64
    public var windowMs: Int64
    public var hopMs: Int64
    /// Trades processed (after the symbol filter).
    public var trades: Int
    /// Event time of the first trade and the engine clock at the end (ms; 0 when no trade).
    public var firstTime: Int64
    public var lastTime: Int64
    public var spanMs: Int64
    /// Closed windows delivered to the strategy.
    public var windows: Int
    public var orders: Int
    public var rejectedOrders: Int
    public var fills: Int
    /// Round trips closed (flat → position → flat, or through zero).
    public var roundTrips: Int
    /// Closed round trips whose PnL after fees was > 0.
    public var winningTrips: Int
    /// Cash plus positions marked at their last trade price.
    public var finalEquity: Double
    public var cash: Double
    public var fees: Double
    /// Largest fall of equity from a previous peak (evaluated at every trade).
    public var maxDrawdown: Double
    /// Largest fall from a peak as a percentage of that peak.
    public var maxDrawdownPct: Double
    /// Fraction (0…1) of the event-time span with a non-zero position.
    public var exposure: Double
    public var symbols: [SymbolReport]
    public var curve: [EquityPoint]

    public var pnl: Double { finalEquity - initialCash }
    public var returnPct: Double { pnl / initialCash * 100 }
    /// winningTrips / roundTrips; nil without a closed round trip.
    public var winRate: Double? { roundTrips > 0 ? Double(winningTrips) / Double(roundTrips) : nil }
    public var openOrders: Int { symbols.reduce(0) { $0 + $1.openOrders } }

    // MARK: text

    /// A few lines for the terminal.
    public var text: String {
        func money(_ x: Double) -> String { String(format: "%.2f", x) }
        let params = parameters.isEmpty ? "" : " (" + parameters.joined(separator: ", ") + ")"
        var lines: [String] = []
        lines.append("Backtest \(strategy)\(params): \(trades) trades, \(Self.isoTime(firstTime)) to \(Self.isoTime(lastTime)) (\(Self.span(spanMs)))")
        lines.append("  PnL \(money(pnl)) (\(String(format: "%+.4f", returnPct)) %), equity \(money(initialCash)) -> \(money(finalEquity)), cash \(money(cash))")
        lines.append("  Max drawdown \(money(maxDrawdown)) (\(String(format: "%.4f", maxDrawdownPct)) %), exposure \(String(format: "%.1f", exposure * 100)) % of event time")
        let win = winRate.map { String(format: "%.1f %%", $0 * 100) } ?? "n/a"
        lines.append("  Fills \(fills), round trips \(roundTrips), win rate \(win) (\(winningTrips)/\(roundTrips)), fees \(money(fees)) at \(JSONOutput.number(feeBps)) bps")
        lines.append("  Orders \(orders) (\(rejectedOrders) rejected, \(openOrders) open at the end), latency \(latencyMs) ms, windows \(windows) (\(windowMs / 1000) s every \(hopMs / 1000) s)")
        for s in symbols where s.fills > 0 || s.position != 0 {
            lines.append("  \(s.symbol): position \(JSONOutput.number(s.position)) @ \(money(s.averageCost)), last \(JSONOutput.number(s.lastPrice)), realized \(money(s.realizedPnL)), unrealized \(money(s.unrealizedPnL)), fees \(money(s.fees)), \(s.fills) fills")
        }
        return lines.joined(separator: "\n")
    }

    static func isoTime(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func span(_ ms: Int64) -> String {
        let s = ms / 1000
        return s >= 3600 ? String(format: "%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60)
            : s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : String(format: "%.3f s", Double(ms) / 1000)
    }

    // MARK: JSON

    /// Indented JSON with keys in a fixed order and numbers written by `JSONOutput.number`; ends with a newline.
    public func jsonBytes() -> [UInt8] {
        var o: [UInt8] = []
        o.reserveCapacity(4096 + curve.count * 32)
        var first = true
        func key(_ k: String) {
            o.append(contentsOf: (first ? "\n  " : ",\n  ").utf8); first = false
            JSONOutput.appendString(k, to: &o); o.append(contentsOf: ": ".utf8)
        }
        func num(_ k: String, _ v: Double?) { key(k); if let v { JSONOutput.appendNumber(v, to: &o) } else { o.append(contentsOf: "null".utf8) } }
        func int(_ k: String, _ v: Int64) { key(k); o.append(contentsOf: String(v).utf8) }
        o.append(UInt8(ascii: "{"))
        key("strategy"); JSONOutput.appendString(strategy, to: &o)
        key("parameters"); o.append(UInt8(ascii: "["))
        for (i, p) in parameters.enumerated() { if i > 0 { o.append(UInt8(ascii: ",")) }; JSONOutput.appendString(p, to: &o) }
        o.append(UInt8(ascii: "]"))
        num("initial_cash", initialCash); num("fee_bps", feeBps); int("latency_ms", latencyMs)
        int("window_ms", windowMs); int("hop_ms", hopMs)
        int("trades", Int64(trades)); int("first_time", firstTime); int("last_time", lastTime); int("span_ms", spanMs)
        int("windows", Int64(windows)); int("orders", Int64(orders)); int("rejected_orders", Int64(rejectedOrders))
        int("open_orders", Int64(openOrders)); int("fills", Int64(fills))
        int("round_trips", Int64(roundTrips)); int("winning_trips", Int64(winningTrips)); num("win_rate", winRate)
        num("final_equity", finalEquity); num("cash", cash); num("pnl", pnl); num("return_pct", returnPct)
        num("fees", fees); num("max_drawdown", maxDrawdown); num("max_drawdown_pct", maxDrawdownPct); num("exposure", exposure)
        key("symbols"); o.append(UInt8(ascii: "["))
        for (i, s) in symbols.enumerated() {
            o.append(contentsOf: (i > 0 ? ",\n    " : "\n    ").utf8)
            o.append(contentsOf: "{\"symbol\": ".utf8); JSONOutput.appendString(s.symbol, to: &o)
            for (k, v) in [("position", s.position), ("average_cost", s.averageCost), ("last_price", s.lastPrice),
                           ("realized_pnl", s.realizedPnL), ("unrealized_pnl", s.unrealizedPnL), ("fees", s.fees),
                           ("bought", s.bought), ("sold", s.sold)] {
                o.append(contentsOf: ", \"\(k)\": ".utf8); JSONOutput.appendNumber(v, to: &o)
            }
            o.append(contentsOf: ", \"fills\": \(s.fills), \"open_orders\": \(s.openOrders)}".utf8)
        }
        o.append(contentsOf: (symbols.isEmpty ? "]" : "\n  ]").utf8)
        key("equity_curve"); o.append(UInt8(ascii: "["))
        for (i, p) in curve.enumerated() {
            o.append(contentsOf: (i > 0 ? ",\n    [" : "\n    [").utf8)
            o.append(contentsOf: String(p.time).utf8); o.append(UInt8(ascii: ",")); JSONOutput.appendNumber(p.equity, to: &o)
            o.append(UInt8(ascii: "]"))
        }
        o.append(contentsOf: (curve.isEmpty ? "]" : "\n  ]").utf8)
        o.append(contentsOf: "\n}\n".utf8)
        return o
    }

    // MARK: pictures

    /// A self-contained SVG of the equity curve (no scripts, fonts or external references).
    public func svg(width: Int = 900, height: Int = 360) -> String {
        let left = 90.0, right = 20.0, top = 36.0, bottom = 40.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        var lo = curve.map(\.equity).min() ?? initialCash, hi = curve.map(\.equity).max() ?? initialCash
        lo = min(lo, initialCash); hi = max(hi, initialCash)
        if hi - lo < 1e-9 * max(1, abs(hi)) { lo -= 1; hi += 1 }
        let t0 = Double(curve.first?.time ?? firstTime), t1 = Double(curve.last?.time ?? lastTime)
        let tspan = t1 > t0 ? t1 - t0 : 1
        func x(_ t: Int64) -> Double { left + (Double(t) - t0) / tspan * w }
        func y(_ e: Double) -> Double { top + (hi - e) / (hi - lo) * h }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
        s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        s += "<text x=\"\(f(left))\" y=\"22\" font-family=\"sans-serif\" font-size=\"14\">\(Self.escape(strategy)) equity: \(String(format: "%.2f", pnl)) PnL (\(String(format: "%+.3f", returnPct)) %), max drawdown \(String(format: "%.3f", maxDrawdownPct)) %</text>\n"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"none\" stroke=\"#999999\"/>\n"
        let base = y(initialCash)
        s += "<line x1=\"\(f(left))\" y1=\"\(f(base))\" x2=\"\(f(left + w))\" y2=\"\(f(base))\" stroke=\"#cccccc\" stroke-dasharray=\"4 3\"/>\n"
        for (label, v) in [(hi, top), (lo, top + h)] {
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(v + 4))\" text-anchor=\"end\" font-family=\"sans-serif\" font-size=\"11\">\(String(format: "%.2f", label))</text>\n"
        }
        s += "<text x=\"\(f(left))\" y=\"\(height - 14)\" font-family=\"sans-serif\" font-size=\"11\">\(Self.isoTime(Int64(t0)))</text>\n"
        s += "<text x=\"\(f(left + w))\" y=\"\(height - 14)\" text-anchor=\"end\" font-family=\"sans-serif\" font-size=\"11\">\(Self.isoTime(Int64(t1)))</text>\n"
        if !curve.isEmpty {
            var pts = "\(f(left)),\(f(y(initialCash)))"
            for p in curve { pts += " \(f(x(p.time))),\(f(y(p.equity)))" }
            s += "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.5\" points=\"\(pts)\"/>\n"
        }
        s += "</svg>\n"
        return s
    }

    /// A self-contained HTML page: the SVG and the report's figures.
    public func html() -> String {
        var rows: [(String, String)] = [
            ("Strategy", strategy + (parameters.isEmpty ? "" : " (" + parameters.joined(separator: ", ") + ")")),
            ("Trades", String(trades)), ("From", Self.isoTime(firstTime)), ("To", Self.isoTime(lastTime)),
            ("PnL", String(format: "%.2f", pnl)), ("Return", String(format: "%.4f %%", returnPct)),
            ("Max drawdown", String(format: "%.2f (%.4f %%)", maxDrawdown, maxDrawdownPct)),
            ("Fills", String(fills)), ("Round trips", String(roundTrips)),
            ("Win rate", winRate.map { String(format: "%.1f %%", $0 * 100) } ?? "n/a"),
            ("Fees", String(format: "%.2f", fees)), ("Exposure", String(format: "%.1f %%", exposure * 100)),
        ]
        rows.append(("Final equity", String(format: "%.2f", finalEquity)))
        var s = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Backtest \(Self.escape(strategy))</title></head>\n<body style=\"font-family:sans-serif\">\n"
        s += svg()
        s += "<table>\n"
        for (k, v) in rows { s += "<tr><th align=\"left\">\(k)</th><td>\(Self.escape(v))</td></tr>\n" }
        s += "</table>\n</body></html>\n"
        return s
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
