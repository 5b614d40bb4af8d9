import Pipeline
import Kafka
import Aggregation
import MarketData
import Foundation
import Histogram
import Synchronization

extension EndToEndScenario {
    /// Tick to alert: from a trade's arrival (just before it is handed to `TradePublisher`) to the alert
    /// it triggers being read from the alerts topic by a separate consumer, at `rate` trades/s.
    ///
    /// Rules `*:above:100` and `*:below:100` over 50 symbols whose prices alternate 99 and 101, so every
    /// trade but each symbol's first crosses a level and fires one alert; the alert's timestamp (the
    /// trade's, unique per trade) says which trade it belongs to.
    func tickToAlert(rate: Double, n: Int) async throws -> Run {
        let id = UInt32.random(in: 0...UInt32.max)
        let topic = "bench-tta-in-\(id)", alerts = "bench-tta-alerts-\(id)"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: topic, partitions: partitions)])
        var aggregatorOptions = AggregatorService.Options()
        aggregatorOptions.alertsTopic = alerts
        aggregatorOptions.metricsTopic = "bench-tta-metrics-\(id)"
        aggregatorOptions.alertRules = [AlertRule(symbol: AlertRule.anySymbol, condition: .priceAbove(100)),
                                        AlertRule(symbol: AlertRule.anySymbol, condition: .priceBelow(100))]
        let aggregator = try benchAggregator(config: config, topic: topic, group: "bench-tta-\(id)", options: aggregatorOptions)
        let running = Task { try await aggregator.run() }
        defer { running.cancel() }
        let reader = try KafkaConsumer(config: config, groupID: "bench-tta-reader-\(id)", topics: [alerts])
        let base = Self.nowMs() + 1000
        let sent = SendTimes(count: n)
        let received = Mutex((histogram: Self.histogram(), count: 0, warm: false, lastNs: Int64(0)))
        let readerTask = Task {
            while !Task.isCancelled, let batch = try await reader.nextBatch(timeout: .milliseconds(200)) {
                let now = monotonicNanoseconds()
                received.withLock { r in
                    for m in batch {
                        guard let ts = m.timestamp else { continue }
                        let i = Int(ts - base)
                        guard i >= 0, i < sent.count else { r.warm = true; continue }
                        _ = r.histogram.record(UInt64(max(0, now - sent[i])))
                        r.count += 1
                        r.lastNs = now
                    }
                }
            }
        }
        defer { readerTask.cancel() }
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "bench")
        let deadline = ContinuousClock.now + .seconds(60)
        var flip = 0
        while !received.withLock({ $0.warm }) {
            guard ContinuousClock.now < deadline else { throw KafkaScenarios.Failure(description: "tick-to-alert: no warm-up alert arrived within 60 s") }
            flip += 1
            try publisher.publish([Trade(symbol: "warmup", price: flip % 2 == 0 ? 99 : 101, timestamp: base - 1000 + Int64(flip), volume: 1)])
            try publisher.flush()
            try await Task.sleep(for: .milliseconds(100))
        }
        let symbols = (0..<50).map { "SYM\($0)" }
        let cpu0 = processCPUSeconds(), wall0 = monotonicNanoseconds()
        try await Self.paced(n: n, rate: rate) { i, _ in
            let trade = Trade(symbol: symbols[i % 50], price: (i / 50) % 2 == 0 ? 99 : 101, timestamp: base + Int64(i), volume: 1)
            sent[i] = monotonicNanoseconds()
            try publisher.publish([trade])
        }
        try publisher.flush(timeout: .seconds(60))
        let expected = n - min(n, 50)
        let doneBy = ContinuousClock.now + .seconds(60)
        while received.withLock({ $0.count }) < expected, ContinuousClock.now < doneBy { try await Task.sleep(for: .milliseconds(5)) }
        let (histogram, count, last) = received.withLock { ($0.histogram, $0.count, $0.lastNs) }
        let cpu = processCPUSeconds() - cpu0
        readerTask.cancel()
        _ = try? await readerTask.value
        reader.close()
        aggregator.service.consumer.finish()
        try? await running.value
        try publisher.producer.close()
        guard count == expected else { throw KafkaScenarios.Failure(description: "tick-to-alert: \(count) of \(expected) alerts arrived within 60 s") }
        return Run(histogram: histogram, count: count, seconds: Double(last - wall0) / 1e9, cpu: cpu)
    }
}
