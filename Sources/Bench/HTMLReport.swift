import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import Foundation

extension BenchReport {
    /// A self-contained HTML page (inline CSS and SVG, no scripts or external resources): machine
    /// facts, the latency percentile curve per offered rate, throughput per scenario, and the table.
    public func html() -> String {
        let columns = ["scenario", "msgs", "bytes", "seconds", "msgs/s", "MB/s", "cpu s", "vs C", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"]
        var rows = ""
        for r in results {
            rows += "<tr>" + columns.map { "<td>\(escape(r.cell($0)))</td>" }.joined() + "<td class=note>\(escape(r.note ?? ""))</td></tr>\n"
        }
        let header = columns.map { "<th>\(escape($0))</th>" }.joined() + "<th>note</th>"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>bench \(escape(date))</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
        table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
        td:first-child,th:first-child,td.note{text-align:left}td.note{color:#666;font-size:12px}
        h2{margin-top:1.6em}
        </style></head><body>
        <h1>bench report</h1>
        <p>\(escape(date)) · \(cores) cores, \(String(format: "%.0f", memoryGB)) GB · librdkafka \(escape(librdkafka)) · broker \(escape(broker)) · \(escape(build)) build</p>
        <h2>End-to-end latency by percentile</h2>
        <p>Trade → producer → Kafka → aggregator (solid) against the librdkafka C API's produce → Kafka → consume (dashed), one curve per offered rate.</p>
        \(latencySVG())
        <h2>Throughput per scenario</h2>
        \(throughputSVG())
        <h2>All results</h2>
        <table><tr>\(header)</tr>
        \(rows)</table>
        </body></html>

        """
    }

    /// Latency (ms, log scale) against percentile (log scale of 1/(1−p)); "max" at the right edge.
    public func latencySVG() -> String {
        let curves = results.filter { $0.latencyCurve?.isEmpty == false && $0.offeredRate != nil }
        let width = 760.0, height = 400.0, left = 70.0, right = 170.0, top = 20.0, bottom = 50.0
        let plotW = width - left - right, plotH = height - top - bottom
        func xOf(_ p: Double) -> Double {
            let nines = p >= 100 ? 5 : -log10(max(1 - p / 100, 1e-5))
            return left + plotW * nines / 5
        }
        let all = curves.flatMap { $0.latencyCurve!.map(\.ms) }.filter { $0 > 0 }
        let lo = pow(10, floor(log10(all.min() ?? 0.1))), hi = pow(10, ceil(log10(all.max() ?? 10)))
        let span = max(log10(hi) - log10(lo), 1)
        func yOf(_ ms: Double) -> Double { top + plotH * (1 - (log10(max(ms, lo)) - log10(lo)) / span) }
        var svg = #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" font-family="sans-serif" font-size="11">"#
        svg += #"<rect x="0" y="0" width="\#(Int(width))" height="\#(Int(height))" fill="white"/>"#
        for (p, label) in [(0.0, "0%"), (90, "90%"), (99, "99%"), (99.9, "99.9%"), (99.99, "99.99%"), (100, "max")] {
            let x = xOf(p)
            svg += line(x, top, x, top + plotH, "#eee") + text(x, top + plotH + 15, label, anchor: "middle")
        }
        var decade = lo
        while decade <= hi * 1.0001 {
            let y = yOf(decade)
            svg += line(left, y, left + plotW, y, "#eee") + text(left - 6, y + 4, Self.msLabel(decade), anchor: "end")
            decade *= 10
        }
        svg += line(left, top + plotH, left + plotW, top + plotH, "#444") + line(left, top, left, top + plotH, "#444")
        svg += text(left + plotW / 2, height - 10, "percentile", anchor: "middle")
        svg += #"<text x="16" y="\#(Int(top + plotH / 2))" transform="rotate(-90 16 \#(Int(top + plotH / 2)))" text-anchor="middle">latency (ms, log)</text>"#
        let rates = Array(Set(curves.compactMap(\.offeredRate))).sorted()
        let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        var legendY = top + 10
        for r in curves {
            let color = palette[(rates.firstIndex(of: r.offeredRate!) ?? 0) % palette.count]
            let dashed = r.scenario.contains("C floor")
            let points = r.latencyCurve!.map { String(format: "%.1f,%.1f", xOf($0.percentile), yOf($0.ms)) }.joined(separator: " ")
            svg += #"<polyline fill="none" stroke="\#(color)" stroke-width="2"\#(dashed ? #" stroke-dasharray="6 4""# : "") points="\#(points)"/>"#
            svg += #"<line x1="\#(Int(left + plotW + 12))" y1="\#(Int(legendY - 4))" x2="\#(Int(left + plotW + 36))" y2="\#(Int(legendY - 4))" stroke="\#(color)" stroke-width="2"\#(dashed ? #" stroke-dasharray="6 4""# : "")/>"#
            svg += text(left + plotW + 40, legendY, "\(EndToEndScenario.label(r.offeredRate!)) \(dashed ? "C floor" : "Swift")", anchor: "start")
            legendY += 16
        }
        if curves.isEmpty { svg += text(left + plotW / 2, top + plotH / 2, "no end-to-end scenario in this run", anchor: "middle") }
        return svg + "</svg>"
    }

    /// Messages/s per throughput scenario as horizontal bars on a log scale.
    public func throughputSVG() -> String {
        let bars = results.filter { $0.offeredRate == nil && $0.driftMs == nil && $0.messagesPerSecond > 0 }
        let rowH = 22.0, left = 280.0, width = 860.0, right = 110.0, top = 10.0
        let height = top + rowH * Double(bars.count) + 40
        let plotW = width - left - right
        let maxRate = bars.map(\.messagesPerSecond).max() ?? 1
        let lo = 1_000.0, hi = pow(10, ceil(log10(max(maxRate, 10_000))))
        func xOf(_ v: Double) -> Double { left + plotW * (log10(max(v, lo)) - log10(lo)) / (log10(hi) - log10(lo)) }
        var svg = #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" font-family="sans-serif" font-size="11">"#
        svg += #"<rect x="0" y="0" width="\#(Int(width))" height="\#(Int(height))" fill="white"/>"#
        var tick = lo
        let axisY = top + rowH * Double(bars.count)
        while tick <= hi * 1.0001 {
            svg += line(xOf(tick), top, xOf(tick), axisY, "#eee") + text(xOf(tick), axisY + 14, Self.rateLabel(tick), anchor: "middle")
            tick *= 10
        }
        svg += text(left + plotW / 2, axisY + 32, "messages per second (log)", anchor: "middle")
        for (i, r) in bars.enumerated() {
            let y = top + rowH * Double(i)
            let floor = r.scenario.contains("C floor")
            svg += text(left - 8, y + 15, r.scenario, anchor: "end")
            svg += #"<rect x="\#(Int(left))" y="\#(Int(y + 4))" width="\#(String(format: "%.1f", max(1, xOf(r.messagesPerSecond) - left)))" height="\#(Int(rowH - 8))" fill="\#(floor ? "#aaa" : "#1f77b4")"/>"#
            let ratio = r.ratioToFloor.map { String(format: " (%.2f×)", $0) } ?? ""
            svg += text(xOf(r.messagesPerSecond) + 5, y + 15, String(format: "%.0f", r.messagesPerSecond) + ratio, anchor: "start")
        }
        return svg + "</svg>"
    }

    static func msLabel(_ v: Double) -> String { v >= 1 ? String(format: "%.0f", v) : String(format: "%g", v) }
    static func rateLabel(_ v: Double) -> String { v >= 1e6 ? "\(Int(v / 1e6))M" : v >= 1e3 ? "\(Int(v / 1e3))k" : "\(Int(v))" }
}

private func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        .replacingOccurrences(of: "\"", with: "&quot;")
}

private func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ color: String) -> String {
    String(format: #"<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" "#, x1, y1, x2, y2) + #"stroke="\#(color)"/>"#
}

private func text(_ x: Double, _ y: Double, _ s: String, anchor: String) -> String {
    String(format: #"<text x="%.1f" y="%.1f" "#, x, y) + #"text-anchor="\#(anchor)">"# + escape(s) + "</text>"
}
