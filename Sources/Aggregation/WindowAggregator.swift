import MarketData
/// Window geometry and lateness settings (all in milliseconds).
public struct WindowConfig: Sendable, Equatable {
    /// Window length L; must be a positive multiple of `hopMs`.
    public var windowMs: Int64
    /// Hop H; windows are `[k·H, k·H + L)` for every integer k (epoch aligned).
    public var hopMs: Int64
    /// Watermark lag behind the maximum event time seen per symbol (≥ 0).
    public var allowedLatenessMs: Int64
    /// Extra slack used by `closeIdle(nowMs:)` (≥ 0).
    public var idleGraceMs: Int64

    public init(windowMs: Int64 = 60_000, hopMs: Int64 = 10_000, allowedLatenessMs: Int64 = 5_000, idleGraceMs: Int64 = 5_000) {
        self.windowMs = windowMs; self.hopMs = hopMs; self.allowedLatenessMs = allowedLatenessMs; self.idleGraceMs = idleGraceMs
    }
}

public enum WindowConfigError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String { switch self { case .invalid(let m): return "invalid window config: \(m)" } }
}

/// Metrics of one closed window `[windowStart, windowEnd)` of one symbol.
public struct WindowMetrics: Sendable, Equatable {
    public var symbol: String
    public var windowStart: Int64
    public var windowEnd: Int64
    public var tradeCount: Int
    public var volume: Double
    /// Σ(price·volume) / Σvolume; nil when Σvolume == 0.
    public var vwap: Double?
    /// Plain mean of prices.
    public var average: Double
    public var min: Double
    public var max: Double
    /// Price of the earliest-arriving trade merged into this window.
    public var first: Double
    /// Price of the latest-arriving trade merged into this window.
    public var last: Double
    /// (last − first) / first · 100; nil when first == 0.
    public var changePct: Double?

    public init(symbol: String, windowStart: Int64, windowEnd: Int64, tradeCount: Int, volume: Double, vwap: Double?, average: Double,
                min: Double, max: Double, first: Double, last: Double, changePct: Double?) {
        self.symbol = symbol; self.windowStart = windowStart; self.windowEnd = windowEnd; self.tradeCount = tradeCount
        self.volume = volume; self.vwap = vwap; self.average = average; self.min = min; self.max = max
        self.first = first; self.last = last; self.changePct = changePct
    }

    /// Deterministic one-line JSON object (no trailing newline), keys in fixed order:
    /// symbol, window_start, window_end, trade_count, volume, vwap, average, min, max, first, last, change_pct.
    /// Numbers use `JSONOutput.number` (shortest round-trip; integral doubles < 2^53 without fraction; null if undefined).
    public func jsonBytes() -> [UInt8] {
        var w = JSONObjectWriter(capacity: 256)
        w.string("symbol", symbol)
        w.int("window_start", windowStart); w.int("window_end", windowEnd); w.int("trade_count", tradeCount)
        w.number("volume", volume); w.number("vwap", vwap); w.number("average", average)
        w.number("min", min); w.number("max", max); w.number("first", first); w.number("last", last)
        w.number("change_pct", changePct)
        return w.finish()
    }
}

/// Per-symbol sliding-window aggregator in event time, built on per-hop panes (O(1) per trade).
///
/// Contracts (per symbol, H = hop, L = window length, n = L/H):
/// - Trade with timestamp t lies in pane p = ⌊t/H⌋ and in the n windows k = p−n+1 … p, window k = `[k·H, k·H+L)`.
/// - Watermark W = max(event time seen − allowedLateness, value set by `closeIdle`); it never decreases.
///   Window k is closed once W ≥ k·H + L. When a trade arrives, W is advanced first, windows that this closes
///   are emitted (they never contain the trade), then the trade is checked for lateness.
/// - A trade is LATE iff every window containing it is already closed, i.e. t < horizon where
///   horizon = (⌊(W − L)/H⌋ + 1)·H is the start of the earliest open window. Late trades are counted in
///   `lateTrades(for:)` and not merged. A non-late trade is merged into its pane and therefore into all its
///   still-open windows (windows already emitted are never re-emitted).
/// - Trades with non-finite price/volume or negative volume are ignored and counted in `invalidTrades`.
/// - Windows without trades are never emitted. `add` returns windows ordered by window end; `closeIdle`
///   and `flushAll` return windows ordered by (window end, symbol). Output depends only on the trade sequence.
public struct WindowAggregator: Sendable {
    struct Pane {
        var index: Int64 = .min
        var count = 0
        var volume = 0.0, pv = 0.0, psum = 0.0, min = 0.0, max = 0.0
        var first = 0.0, last = 0.0
        var firstSeq: Int64 = 0, lastSeq: Int64 = 0
    }

    /// One symbol's state; its symbol is `indexBySymbol.symbols[s]` and its panes `panes[s·ringSize ..< (s+1)·ringSize]`
    /// for state index s (kept out of the struct, so the fields a trade touches share fewer cache lines).
    struct SymbolState {
        var watermark: Int64 = .min
        var nextOpen: Int64 = .min
        var seq: Int64 = 0
        var late = 0
        var minPane: Int64 = .max
        var maxPane: Int64 = .min
        /// The pane of the symbol's last trade, its start time (it spans `[paneStart, paneStart + hop)`)
        /// and its ring slot, so a trade in the same pane as the last one divides nothing.
        var pane: Int64 = .min, paneStart: Int64 = .max, paneSlot = 0
        var hasData: Bool { minPane <= maxPane }
    }

    public let config: WindowConfig
    private let hop: Int64, length: Int64, lateness: Int64, panesPerWindow: Int64, ringSize: Int
    private var states: [SymbolState] = []
    private var indexBySymbol = SymbolIndex()
    private var panes: [Pane] = []
    /// Trades ignored because of a non-finite price/volume or a negative volume.
    public private(set) var invalidTrades = 0

    public init(config: WindowConfig = WindowConfig()) throws {
        guard config.hopMs > 0 else { throw WindowConfigError.invalid("hopMs must be > 0") }
        guard config.windowMs > 0, config.windowMs % config.hopMs == 0 else { throw WindowConfigError.invalid("windowMs must be a positive multiple of hopMs") }
        guard config.allowedLatenessMs >= 0, config.idleGraceMs >= 0 else { throw WindowConfigError.invalid("lateness and idle grace must be >= 0") }
        self.config = config
        hop = config.hopMs; length = config.windowMs; lateness = config.allowedLatenessMs
        panesPerWindow = length / hop
        ringSize = Int(panesPerWindow + (lateness + hop - 1) / hop + 2)
    }

    @inline(__always) private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
    @inline(__always) private func slot(_ s: Int, _ p: Int64) -> Int {
        let r = Int(p % Int64(ringSize)); return s &* ringSize + (r < 0 ? r + ringSize : r)
    }

    /// Number of late (dropped) trades seen for `symbol`.
    public func lateTrades(for symbol: String) -> Int { indexBySymbol.index(of: symbol).map { states[$0].late } ?? 0 }
    /// Late-trade counts for every symbol seen.
    public var lateTradeCounts: [String: Int] { Dictionary(uniqueKeysWithValues: zip(indexBySymbol.symbols, states.map(\.late))) }
    /// Late (dropped) trades of all symbols.
    public var lateTradeTotal: Int { states.reduce(0) { $0 + $1.late } }
    /// Current watermark of `symbol` (nil before its first trade).
    public func watermark(for symbol: String) -> Int64? { indexBySymbol.index(of: symbol).map { states[$0].watermark } }
    /// Start of the earliest open window of `symbol`; trades before it are late (nil before its first trade).
    public func lateHorizon(for symbol: String) -> Int64? {
        guard let i = indexBySymbol.index(of: symbol), states[i].nextOpen != .min else { return nil }
        return states[i].nextOpen &* hop
    }

    /// Processes one trade; returns the windows it closed, ordered by window end.
    public mutating func add(_ trade: Trade) -> [WindowMetrics] {
        var out: [WindowMetrics] = []
        add(trade, into: &out)
        return out
    }

    /// Processes one trade, appending the windows it closed (ordered by window end) to `out`.
    public mutating func add(_ trade: Trade, into out: inout [WindowMetrics]) {
        guard trade.price.isFinite, trade.volume.isFinite, trade.volume >= 0 else { invalidTrades += 1; return }
        update(trade, state(of: trade.symbol), into: &out)
    }

    /// ``add(_:into:)`` for a caller that numbers symbols itself: `callerSlot` is its dense index (0, 1,
    /// 2…) of `trade.symbol` (``SymbolIndex/insert(_:slot:)``), which spares hashing the symbol; the
    /// output is the same.
    public mutating func add(_ trade: Trade, callerSlot: Int, into out: inout [WindowMetrics]) {
        precondition(callerSlot >= 0, "caller slots start at 0")
        guard trade.price.isFinite, trade.volume.isFinite, trade.volume >= 0 else { invalidTrades += 1; return }
        update(trade, state(of: trade.symbol, slot: callerSlot), into: &out)
    }

    /// The state index of `symbol` (found by the caller's `slot` when one is given), created at its first trade.
    @inline(__always) private mutating func state(of symbol: String, slot: Int = -1) -> Int {
        let (s, isNew) = indexBySymbol.insert(symbol, slot: slot)
        if isNew {
            states.append(SymbolState())
            panes.append(contentsOf: repeatElement(Pane(), count: ringSize))
        }
        return s
    }

    @inline(__always) private mutating func update(_ trade: Trade, _ s: Int, into out: inout [WindowMetrics]) {
        let t = trade.timestamp
        let w = t &- lateness
        if w > states[s].watermark { advance(s, to: w, into: &out) }
        let p: Int64, i: Int
        if t >= states[s].paneStart, t < states[s].paneStart &+ hop {
            p = states[s].pane; i = states[s].paneSlot
        } else {
            p = Self.floorDiv(t, hop); i = slot(s, p)
            // Wrapping: a pane at the ends of Int64 gets an empty range and is divided for each trade.
            states[s].pane = p; states[s].paneSlot = i; states[s].paneStart = p &* hop
        }
        if p < states[s].nextOpen { states[s].late += 1; return }
        let seq = states[s].seq; states[s].seq = seq + 1
        let price = trade.price, vol = trade.volume
        if panes[i].index != p {
            panes[i] = Pane(index: p, count: 1, volume: vol, pv: price * vol, psum: price, min: price, max: price,
                            first: price, last: price, firstSeq: seq, lastSeq: seq)
            if p < states[s].minPane { states[s].minPane = p }
            if p > states[s].maxPane { states[s].maxPane = p }
        } else {
            panes[i].count += 1
            panes[i].volume += vol; panes[i].pv += price * vol; panes[i].psum += price
            if price < panes[i].min { panes[i].min = price }
            if price > panes[i].max { panes[i].max = price }
            panes[i].last = price; panes[i].lastSeq = seq
        }
    }

    /// Live mode: raises every symbol's watermark to `nowMs − allowedLateness − idleGrace` (if higher) and
    /// returns the windows this closes, ordered by (window end, symbol).
    public mutating func closeIdle(nowMs: Int64) -> [WindowMetrics] {
        let target = nowMs &- lateness &- config.idleGraceMs
        var out: [WindowMetrics] = []
        for s in states.indices where states[s].watermark < target { advance(s, to: target, into: &out) }
        return Self.sorted(out)
    }

    /// End of stream: emits every not-yet-emitted window containing data, ordered by (window end, symbol).
    /// Afterwards all those windows count as closed (later trades in them are late).
    public mutating func flushAll() -> [WindowMetrics] {
        var out: [WindowMetrics] = []
        for s in states.indices where states[s].hasData {
            let target = states[s].maxPane &* hop &+ length
            if target > states[s].watermark { advance(s, to: target, into: &out) }
        }
        return Self.sorted(out)
    }

    private static func sorted(_ m: [WindowMetrics]) -> [WindowMetrics] {
        m.sorted { $0.windowEnd != $1.windowEnd ? $0.windowEnd < $1.windowEnd : $0.symbol < $1.symbol }
    }

    private mutating func advance(_ s: Int, to w: Int64, into out: inout [WindowMetrics]) {
        states[s].watermark = w
        let newNextOpen = Self.floorDiv(w &- length, hop) &+ 1
        let oldNextOpen = states[s].nextOpen
        guard newNextOpen > oldNextOpen else { return }
        states[s].nextOpen = newNextOpen
        guard states[s].hasData else { return }
        let minP = states[s].minPane, maxP = states[s].maxPane
        var k = Swift.max(oldNextOpen, minP - panesPerWindow + 1)
        let kEnd = Swift.min(newNextOpen - 1, maxP)
        while k <= kEnd {
            if let m = combine(s, k, minP, maxP) { out.append(m) }
            k += 1
        }
        if newNextOpen > maxP {
            // minP ≤ maxP (the symbol has data); stepping stops at maxP, which may be Int64.max.
            var p = minP
            while true { let i = slot(s, p); if panes[i].index == p { panes[i] = Pane() }; if p == maxP { break }; p += 1 }
            states[s].minPane = .max; states[s].maxPane = .min
        } else if newNextOpen > minP {
            var newMin: Int64 = .max
            var p = minP
            while true {
                let i = slot(s, p)
                if panes[i].index == p {
                    if p < newNextOpen { panes[i] = Pane() } else if newMin == .max { newMin = p }
                }
                if p == maxP { break }
                p += 1
            }
            states[s].minPane = newMin
            if newMin == .max { states[s].maxPane = .min }
        }
    }

    private func combine(_ s: Int, _ k: Int64, _ minP: Int64, _ maxP: Int64) -> WindowMetrics? {
        var count = 0
        var vol = 0.0, pv = 0.0, psum = 0.0, mn = 0.0, mx = 0.0, first = 0.0, last = 0.0
        var firstSeq = Int64.max, lastSeq = Int64.min
        var p = Swift.max(k, minP)
        let pEnd = Swift.min(k + panesPerWindow - 1, maxP)
        while p <= pEnd {
            let pane = panes[slot(s, p)]
            if pane.index == p && pane.count > 0 {
                if count == 0 { mn = pane.min; mx = pane.max } else { mn = Swift.min(mn, pane.min); mx = Swift.max(mx, pane.max) }
                count += pane.count; vol += pane.volume; pv += pane.pv; psum += pane.psum
                if pane.firstSeq < firstSeq { firstSeq = pane.firstSeq; first = pane.first }
                if pane.lastSeq > lastSeq { lastSeq = pane.lastSeq; last = pane.last }
            }
            p += 1
        }
        guard count > 0 else { return nil }
        let start = k * hop
        return WindowMetrics(symbol: indexBySymbol.symbols[s], windowStart: start, windowEnd: start + length, tradeCount: count, volume: vol,
                             vwap: vol == 0 ? nil : pv / vol, average: psum / Double(count), min: mn, max: mx,
                             first: first, last: last, changePct: first == 0 ? nil : (last - first) / first * 100)
    }
}

extension WindowAggregator {
    /// Writes the complete state (every symbol's watermark, open panes, sequence and counters),
    /// so that ``init(config:restoring:)`` continues exactly where this aggregator is.
    public func encode(into w: inout StateWriter) {
        w.int(invalidTrades)
        w.int(states.count)
        for (s, st) in states.enumerated() {
            w.string(indexBySymbol.symbols[s])
            w.int(st.watermark); w.int(st.nextOpen); w.int(st.seq); w.int(st.late)
            w.int(st.minPane); w.int(st.maxPane)
            let live = st.hasData ? (st.minPane...st.maxPane).filter { panes[slot(s, $0)].index == $0 } : []
            w.int(live.count)
            for p in live {
                let pane = panes[slot(s, p)]
                w.int(pane.index); w.int(pane.count)
                w.double(pane.volume); w.double(pane.pv); w.double(pane.psum); w.double(pane.min); w.double(pane.max)
                w.double(pane.first); w.double(pane.last); w.int(pane.firstSeq); w.int(pane.lastSeq)
            }
        }
    }

    /// An aggregator in the state ``encode(into:)`` wrote, under `config` (which must be the one
    /// it was written with: the caller checks).
    public init(config: WindowConfig, restoring r: inout StateReader) throws {
        try self.init(config: config)
        invalidTrades = Int(try r.int())
        let n = try r.count()
        for _ in 0..<n {
            let symbol = try r.string()
            var st = SymbolState()
            st.watermark = try r.int(); st.nextOpen = try r.int(); st.seq = try r.int(); st.late = Int(try r.int())
            st.minPane = try r.int(); st.maxPane = try r.int()
            guard indexBySymbol.insert(symbol).inserted else { throw StateDecodingError(reason: "symbol \(symbol) twice") }
            let s = states.count
            states.append(st)
            panes.append(contentsOf: repeatElement(Pane(), count: ringSize))
            for _ in 0..<(try r.count()) {
                var pane = Pane()
                pane.index = try r.int(); pane.count = Int(try r.int())
                pane.volume = try r.double(); pane.pv = try r.double(); pane.psum = try r.double(); pane.min = try r.double(); pane.max = try r.double()
                pane.first = try r.double(); pane.last = try r.double(); pane.firstSeq = try r.int(); pane.lastSeq = try r.int()
                guard st.hasData, pane.index >= st.minPane, pane.index <= st.maxPane else { throw StateDecodingError(reason: "pane \(pane.index) of \(symbol) outside its range") }
                panes[slot(s, pane.index)] = pane
            }
        }
    }
}

extension WindowMetrics {
    /// Decodes the pipeline's `aggregated-metrics` value (``WindowMetrics/jsonBytes()``); nil when it is not one.
    public init?(json: [UInt8]) {
        guard let o = JSONValue.parse(json), let symbol = o["symbol"]?.string, let start = o["window_start"]?.int64,
              let end = o["window_end"]?.int64, let count = o["trade_count"]?.int64.map(Int.init)
        else { return nil }
        func number(_ k: String) -> Double? { o[k]?.double }
        guard let volume = number("volume"), let average = number("average"), let mn = number("min"), let mx = number("max"),
              let first = number("first"), let last = number("last") else { return nil }
        self.init(symbol: symbol, windowStart: start, windowEnd: end, tradeCount: count, volume: volume, vwap: number("vwap"),
                  average: average, min: mn, max: mx, first: first, last: last, changePct: number("change_pct"))
    }
}
