import Kafka
import Aggregation
import MarketData
import Foundation

/// What the dashboard knows, as values (``DashboardMonitor/snapshot``).
public struct Snapshot: Sendable {
    public struct Symbol: Sendable, Equatable {
        public var symbol: String
        /// The newest trade's price in `raw-market-data`, else the last window's last price.
        public var last: Double?
        /// The last `aggregated-metrics` window of the symbol.
        public var window: WindowMetrics?
        /// Trades per second of event time over the last window.
        public var tradesPerSecond: Double?
    }
    public struct Partition: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var committed: Int64
        public var end: Int64?
        public var lag: Int64?
        public var lagSeconds: Double?
        /// The oldest unconsumed record arrived before the monitor's first sample: its age is at least `lagSeconds`.
        public var lagSecondsAtLeast: Bool
        /// The group's checkpoint topic (`<group>-state`): the committed offset points at a
        /// checkpoint record instead of marking consumption, so there is no lag.
        public var checkpoint: Bool
    }
    public struct Group: Sendable, Equatable {
        public var id: String
        public var state: String
        public var partitions: [Partition]
        public var lag: Int64 { partitions.reduce(0) { $0 + ($1.lag ?? 0) } }
        public var lagSeconds: Double? { partitions.compactMap(\.lagSeconds).max() }
    }
    public struct Topic: Sendable, Equatable {
        public var topic: String
        public var partitions: Int
        public var end: Int64
        /// Messages per second over the last few passes.
        public var rate: Double?
    }
    public var now: Int64
    public var kafkaError: String?
    public var symbols: [Symbol]
    public var groups: [Group]
    public var topics: [Topic]
    public var alertCount: Int
    public var deadLetterCount: Int
    public var deadLettersByReason: [String: Int]
}

struct GroupCommits: Sendable {
    var id: String
    var state: String
    var offsets: [TopicPartitionOffset]
}

/// The dashboard's state; ``DashboardMonitor`` holds it under a lock.
struct Model: Sendable {
    struct EndSample: Sendable { var firstSeen: Int64; var lastSeen: Int64; var end: Int64 }
    struct ChartPoint: Sendable { var t: Int64; var price: Double; var vwap: Double? }
    struct DeadLetter: Sendable { var offset: Int64; var reason: String; var source: String; var group: String; var timestamp: Int64?; var payload: String }
    struct AlertEntry: Sendable { var offset: Int64; var alert: Alert }

    var version = 0
    var now: Int64 = 0
    var kafkaError: String?
    var partitionCounts: [String: Int] = [:]
    /// Next offset to read per partition of the followed topics.
    var cursors: [TopicPartition: Int64] = [:]
    /// Latest end offset per watched partition.
    var ends: [TopicPartition: Int64] = [:]
    var endHistory: [TopicPartition: [EndSample]] = [:]
    var topicTotals: [String: [(t: Int64, end: Int64)]] = [:]
    var windows: [String: WindowMetrics] = [:]
    var lastTrade: [String: Double] = [:]
    var charts: [String: [ChartPoint]] = [:]
    var alertCount = 0
    var alerts: [AlertEntry] = []
    var deadLetterCount = 0
    var deadLettersByReason: [String: Int] = [:]
    var deadLetters: [DeadLetter] = []
    var groups: [GroupCommits] = []
    var replayStatus: [UInt8]?
    var replayError: String?

    mutating func apply(followed messages: [KafkaMessage], options: DashboardMonitor.Options) {
        for m in messages {
            let tp = TopicPartition(topic: m.topic, partition: m.partition)
            cursors[tp] = max(cursors[tp] ?? 0, m.offset + 1)
            switch m.topic {
            case options.metricsTopic:
                guard let w = WindowMetrics(json: m.value) else { continue }
                windows[w.symbol] = w
                var points = charts[w.symbol] ?? []
                points.append(ChartPoint(t: w.windowEnd, price: w.last, vwap: w.vwap))
                if points.count > options.chartPoints { points.removeFirst(points.count - options.chartPoints) }
                charts[w.symbol] = points
            case options.alertsTopic:
                alertCount += 1
                guard let a = Alert(json: m.value) else { continue }
                alerts.append(AlertEntry(offset: m.offset, alert: a))
                if alerts.count > options.latestAlerts { alerts.removeFirst(alerts.count - options.latestAlerts) }
            case options.deadLetterTopic:
                deadLetterCount += 1
                func header(_ k: String) -> String { m.header(k).map { String(decoding: $0, as: UTF8.self) } ?? "?" }
                let reason = m.header("dlq.reason").map { String(decoding: $0, as: UTF8.self) } ?? "unknown"
                deadLettersByReason[reason, default: 0] += 1
                deadLetters.append(DeadLetter(offset: m.offset, reason: reason,
                                              source: "\(header("dlq.source.topic"))[\(header("dlq.source.partition"))]@\(header("dlq.source.offset"))",
                                              group: header("dlq.consumer.group"), timestamp: m.timestamp,
                                              payload: String(decoding: m.value.prefix(512), as: UTF8.self)))
                if deadLetters.count > options.latestDeadLetters { deadLetters.removeFirst(deadLetters.count - options.latestDeadLetters) }
            default: continue
            }
        }
    }

    mutating func apply(tail messages: [KafkaMessage], tradesTopic: String) {
        for m in messages where m.topic == tradesTopic {
            guard let trade = try? m.withUnsafeValue({ bytes throws(TradeMessageError) in try TradeMessage.decode(bytes) }) else { continue }
            lastTrade[trade.symbol] = trade.price
        }
    }

    mutating func sample(ends newEnds: [TopicPartition: Int64], at now: Int64, keep: Int) {
        for (tp, end) in newEnds {
            ends[tp] = end
            var history = endHistory[tp] ?? []
            if let last = history.last, last.end == end {
                history[history.count - 1].lastSeen = now
            } else {
                history.append(EndSample(firstSeen: now, lastSeen: now, end: end))
                if history.count > keep { history.removeFirst(history.count - keep) }
            }
            endHistory[tp] = history
        }
        var totals: [String: Int64] = [:]
        for (tp, end) in ends { totals[tp.topic, default: 0] += end }
        for (topic, total) in totals {
            var series = topicTotals[topic] ?? []
            series.append((now, total))
            if series.count > 6 { series.removeFirst(series.count - 6) }
            topicTotals[topic] = series
        }
    }

    /// Seconds since the record at `offset` arrived (the end offset passed it), and whether that is a lower bound.
    func age(of offset: Int64, in tp: TopicPartition) -> (seconds: Double, atLeast: Bool)? {
        guard let history = endHistory[tp], let latest = history.last else { return nil }
        if offset >= latest.end { return (0, false) }
        guard let i = history.firstIndex(where: { $0.end > offset }) else { return nil }
        if i == 0 { return (Double(now - history[0].firstSeen) / 1000, true) }
        let before = history[i - 1], after = history[i]
        let fraction = Double(offset - before.end + 1) / Double(after.end - before.end)
        let arrived = Double(before.lastSeen) + fraction * Double(after.firstSeen - before.lastSeen)
        return (max(0, (Double(now) - arrived) / 1000), false)
    }

    func snapshot() -> Snapshot {
        let symbols = Set(windows.keys).union(lastTrade.keys).sorted().map { s -> Snapshot.Symbol in
            let w = windows[s]
            let seconds = w.map { Double($0.windowEnd - $0.windowStart) / 1000 } ?? 0
            return Snapshot.Symbol(symbol: s, last: lastTrade[s] ?? w?.last, window: w,
                                   tradesPerSecond: seconds > 0 ? w.map { Double($0.tradeCount) / seconds } : nil)
        }
        let groups = self.groups.map { g in
            Snapshot.Group(id: g.id, state: g.state, partitions: g.offsets.map { o in
                let tp = TopicPartition(topic: o.topic, partition: o.partition)
                let end = ends[tp]
                let checkpoint = o.topic == g.id + "-state"
                let age = end == nil || checkpoint ? nil : self.age(of: o.offset, in: tp)
                return Snapshot.Partition(topic: o.topic, partition: o.partition, committed: o.offset, end: end,
                                          lag: checkpoint ? nil : end.map { max(0, $0 - o.offset) }, lagSeconds: age?.seconds,
                                          lagSecondsAtLeast: age?.atLeast ?? false, checkpoint: checkpoint)
            })
        }
        let topics = partitionCounts.keys.sorted().compactMap { t -> Snapshot.Topic? in
            guard !t.hasPrefix("__") else { return nil }
            let series = topicTotals[t] ?? []
            var rate: Double?
            if let first = series.first, let last = series.last, last.t > first.t { rate = Double(last.end - first.end) * 1000 / Double(last.t - first.t) }
            return Snapshot.Topic(topic: t, partitions: partitionCounts[t] ?? 0, end: series.last?.end ?? 0, rate: rate)
        }
        return Snapshot(now: now, kafkaError: kafkaError, symbols: symbols, groups: groups, topics: topics,
                        alertCount: alertCount, deadLetterCount: deadLetterCount, deadLettersByReason: deadLettersByReason)
    }

    func json(chartSymbol: String?, bootstrap: String, replayURL: URL?) -> [UInt8] {
        let s = snapshot()
        var w = JSONObjectWriter(capacity: 4096)
        w.int("now", s.now)
        w.string("bootstrap", bootstrap)
        var kafka = JSONObjectWriter(capacity: 128)
        kafka.bool("ok", s.kafkaError == nil && s.now > 0)
        kafka.string("error", s.kafkaError ?? (s.now == 0 ? "connecting…" : nil))
        w.raw("kafka", kafka.finish())
        w.array("symbols", s.symbols.map { sym in
            var o = JSONObjectWriter(capacity: 256)
            o.string("symbol", sym.symbol)
            o.number("last", sym.last)
            o.number("vwap", sym.window?.vwap)
            o.number("change_pct", sym.window?.changePct)
            o.number("volume", sym.window?.volume)
            o.number("trades_per_s", sym.tradesPerSecond)
            o.number("trade_count", sym.window.map { Double($0.tradeCount) })
            o.number("window_start", sym.window.map { Double($0.windowStart) })
            o.number("window_end", sym.window.map { Double($0.windowEnd) })
            return o.finish()
        })
        let chosen = chartSymbol.flatMap { charts[$0] == nil && windows[$0] == nil ? nil : $0 } ?? s.symbols.first?.symbol
        var chart = JSONObjectWriter(capacity: 1024)
        chart.string("symbol", chosen)
        chart.array("points", (chosen.flatMap { charts[$0] } ?? []).map { p in
            var o = JSONObjectWriter(capacity: 64)
            o.int("t", p.t); o.number("price", p.price); o.number("vwap", p.vwap)
            return o.finish()
        })
        w.raw("chart", chart.finish())
        var alertsJSON = JSONObjectWriter(capacity: 1024)
        alertsJSON.int("total", s.alertCount)
        alertsJSON.array("latest", alerts.reversed().map { e in
            var o = JSONObjectWriter(capacity: 192)
            o.int("offset", e.offset); o.string("symbol", e.alert.symbol); o.string("rule", e.alert.rule)
            o.number("price", e.alert.price); o.int("timestamp", e.alert.timestamp); o.string("message", e.alert.message)
            return o.finish()
        })
        w.raw("alerts", alertsJSON.finish())
        var dlq = JSONObjectWriter(capacity: 1024)
        dlq.int("total", s.deadLetterCount)
        dlq.array("by_reason", s.deadLettersByReason.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { reason, count in
            var o = JSONObjectWriter(capacity: 96)
            o.string("reason", reason); o.int("count", count)
            return o.finish()
        })
        dlq.array("latest", deadLetters.reversed().map { d in
            var o = JSONObjectWriter(capacity: 256)
            o.int("offset", d.offset); o.string("reason", d.reason); o.string("source", d.source); o.string("group", d.group)
            o.number("timestamp", d.timestamp.map(Double.init)); o.string("payload", d.payload)
            return o.finish()
        })
        w.raw("dead_letters", dlq.finish())
        w.array("groups", s.groups.map { g in
            var o = JSONObjectWriter(capacity: 512)
            o.string("group", g.id); o.string("state", g.state); o.int("lag", g.lag); o.number("lag_seconds", g.lagSeconds)
            o.array("partitions", g.partitions.map { p in
                var po = JSONObjectWriter(capacity: 160)
                po.string("topic", p.topic); po.int("partition", Int(p.partition)); po.int("committed", p.committed)
                po.number("end", p.end.map(Double.init)); po.number("lag", p.lag.map(Double.init)); po.number("lag_seconds", p.lagSeconds)
                po.bool("lag_seconds_at_least", p.lagSecondsAtLeast)
                po.bool("checkpoint", p.checkpoint)
                return po.finish()
            })
            return o.finish()
        })
        w.array("topics", s.topics.map { t in
            var o = JSONObjectWriter(capacity: 128)
            o.string("topic", t.topic); o.int("partitions", t.partitions); o.int("end", t.end); o.number("rate", t.rate)
            return o.finish()
        })
        if let replayURL {
            var r = JSONObjectWriter(capacity: 512)
            r.string("url", replayURL.absoluteString)
            r.bool("ok", replayError == nil && replayStatus != nil)
            r.string("error", replayError)
            if let replayStatus { r.raw("status", replayStatus) } else { r.null("status") }
            w.raw("replay", r.finish())
        } else {
            w.null("replay")
        }
        return w.finish()
    }
}
