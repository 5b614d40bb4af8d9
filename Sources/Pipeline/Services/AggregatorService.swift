import Feed
import Foundation
import Metrics
import Synchronization

/// Consumer 2 of the seed: sliding event-time windows per symbol → `aggregated-metrics`
/// (keyed by symbol, Kafka timestamp = window end), and alerts → `price-alerts`.
///
/// Output depends only on the trades and their order per partition, never on wall-clock
/// speed, so a replay at 1×, 10× or max speed gives byte-identical messages. Idle rule: when
/// the newest trade seen is within `liveThreshold` of the wall clock (a live feed), symbols with
/// no trades get their windows closed by the wall clock (``WindowAggregator/closeIdle(nowMs:)``)
/// every idle checkpoint; replays of older sessions never trigger it.
public final class AggregatorService: Sendable {
    public struct Options: Sendable {
        public var window = WindowConfig()
        public var alertRules: [AlertRule] = []
        public var metricsTopic = Topics.aggregatedMetrics
        public var alertsTopic = Topics.priceAlerts
        public var liveThreshold: Int64 = 60_000
        /// Called with each batch once its windows and alerts are handed to the producer
        /// (`bench` times end-to-end latency here). Runs on the consuming task; keep it short.
        public var onProcessed: (@Sendable ([(trade: Trade, message: KafkaMessage)]) -> Void)?
        public init() {}
    }

    public let service: ConsumerService
    public let options: Options
    private let state: Mutex<(aggregator: WindowAggregator, alerts: AlertEngine, newest: Int64)>
    private let windowsOut: Counter
    private let alertsOut: Counter
    private let lateTrades: Gauge

    public init(service: ConsumerService, options: Options) throws {
        self.service = service
        self.options = options
        state = Mutex((try WindowAggregator(config: options.window), AlertEngine(rules: options.alertRules), 0))
        windowsOut = Counter(label: "pipeline_windows_out_total")
        alertsOut = Counter(label: "pipeline_alerts_out_total")
        lateTrades = Gauge(label: "pipeline_late_trades")
    }

    public func run() async throws {
        try await service.run({ [self] batch in
            let (windows, alerts, late) = state.withLock { s -> ([WindowMetrics], [Alert], Int) in
                var windows: [WindowMetrics] = []
                var alerts: [Alert] = []
                for (trade, _) in batch {
                    s.aggregator.add(trade, into: &windows)
                    alerts += s.alerts.evaluate(trade)
                    s.newest = max(s.newest, trade.timestamp)
                }
                for w in windows { alerts += s.alerts.evaluate(w) }
                return (windows, alerts, s.aggregator.lateTradeCounts.values.reduce(0, +))
            }
            try publish(windows, alerts)
            lateTrades.record(late)
            options.onProcessed?(batch)
        }, onIdle: { [self] in
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let (windows, alerts) = state.withLock { s -> ([WindowMetrics], [Alert]) in
                guard s.newest > 0, now - s.newest < options.liveThreshold else { return ([], []) }
                let windows = s.aggregator.closeIdle(nowMs: now)
                return (windows, windows.flatMap { s.alerts.evaluate($0) })
            }
            try publish(windows, alerts)
        })
    }

    private func publish(_ windows: [WindowMetrics], _ alerts: [Alert]) throws {
        let producer = service.producer
        for w in windows {
            try producer.enqueue(topic: options.metricsTopic, key: Array(w.symbol.utf8), value: w.jsonBytes(), timestamp: w.windowEnd)
        }
        for a in alerts {
            try producer.enqueue(topic: options.alertsTopic, key: Array(a.symbol.utf8), value: a.jsonBytes(), timestamp: a.timestamp)
        }
        windowsOut.increment(by: windows.count)
        alertsOut.increment(by: alerts.count)
    }
}
