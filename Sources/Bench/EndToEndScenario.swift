import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import CKafkaFloor
import Foundation
import Histogram
import Logging
import Synchronization

/// Trade → producer → Kafka → aggregator at fixed offered rates, with HDR latency percentiles,
/// next to the librdkafka C API doing produce → Kafka → consume at the same rate, message size,
/// keys, partitions and client settings (`cfloor_end_to_end`).
///
/// Latency is send time (just before the trade is handed to `TradePublisher`) to the moment the
/// aggregator has processed the trade's batch and handed its windows to the producer. Both sides
/// pace by absolute sleeps on `CLOCK_MONOTONIC`, so a late send does not delay the next one.
public struct EndToEndScenario: Sendable {
    public var config: KafkaConfig
    public var rates: [Double]
    public var seconds: Double
    public var partitions = 6
    /// Each rate runs as this many C-floor / Swift rounds whose histograms are merged, in the order
    /// C S, S C, C S, … so a disturbance on the machine lands on both sides rather than on one, and a
    /// broker that slows as it fills (Tansu keeps every message in memory) favours neither.
    public var rounds = 4

    public init(config: KafkaConfig, rates: [Double], seconds: Double) {
        self.config = config; self.rates = rates; self.seconds = seconds
    }

    public func run() async throws -> [BenchResult] {
        var results: [BenchResult] = []
        for rate in rates {
            let perRound = max(50, Int(rate * seconds) / rounds)
            var c = Run(), swift = Run()
            for round in 0..<rounds {
                if round % 2 == 0 {
                    c.merge(try cFloor(rate: rate, n: perRound))
                    swift.merge(try await swiftLayer(rate: rate, n: perRound))
                } else {
                    swift.merge(try await swiftLayer(rate: rate, n: perRound))
                    c.merge(try cFloor(rate: rate, n: perRound))
                }
            }
            let floor = Self.result("end-to-end @ \(Self.label(rate)) (C floor)", rate: rate, run: c,
                                    note: "librdkafka C API: produce → Kafka → consume in one process; \(roundsText(rounds))")
            var s = Self.result("end-to-end @ \(Self.label(rate)) (trade → aggregator)", rate: rate, run: swift,
                                note: "TradePublisher → Kafka → AggregatorService; \(roundsText(rounds)); vs C = p99 ratio")
            if let cp = floor.latencyMs?["p99"], let sp = s.latencyMs?["p99"], cp > 0 { s.p99RatioToFloor = sp / cp }
            var delay = swift
            delay.histogram = swift.publishDelay
            let late = Self.result("publish delay @ \(Self.label(rate)) (trade → TradePublisher)", rate: rate, run: delay,
                                   note: "how late each trade was handed to the producer against its schedule (OpenMessaging Benchmark's publish delay), same runs as the row above")
            let alerts = Self.result("tick-to-alert @ \(Self.label(rate)) (trade → price-alerts)", rate: rate,
                                     run: try await tickToAlert(rate: rate, n: perRound * 2),
                                     note: "a trade's arrival to its alert read from the alerts topic by another consumer; every trade but 50 fires one alert")
            results += [floor, s, late, alerts]
        }
        return results
    }

    /// Latencies and time of one or more rounds.
    struct Run {
        var histogram = EndToEndScenario.histogram()
        /// How late each send was against its schedule (the Swift side only).
        var publishDelay = EndToEndScenario.histogram()
        var count = 0
        var seconds = 0.0
        var cpu = 0.0
        mutating func merge(_ other: Run) {
            histogram.add(other.histogram)
            publishDelay.add(other.publishDelay)
            count += other.count; seconds += other.seconds; cpu += other.cpu
        }
    }

    static func label(_ rate: Double) -> String { rate >= 1000 ? "\(Int(rate / 1000))k/s" : "\(Int(rate))/s" }

    /// A trade message like the Swift side sends; the C floor sends copies of it (first 8 bytes replaced by the send time).
    static let template = TradeMessage.encode(Trade(symbol: "SYM42", price: 100.25, timestamp: 1_700_000_000_000, volume: 12_345, conditions: ["1"]))
    static var messageBytes: Int { template.count }

    private func topic(_ kind: String) throws -> String {
        let name = "bench-e2e-\(kind)-\(UInt32.random(in: 0...UInt32.max))"
        try KafkaAdmin(config: config).ensureTopics([TopicSpec(name: name, partitions: partitions)])
        return name
    }

    func cFloor(rate: Double, n: Int) throws -> Run {
        let topic = try topic("c")
        var latencies = [Int64](repeating: 0, count: n)
        var seconds = 0.0
        let group = "bench-e2e-c-\(UInt32.random(in: 0...UInt32.max))"
        let timing = try measure {
            try CFloor.run("C end-to-end", config: config) { producer, consumer, err, errlen in
                latencies.withUnsafeMutableBufferPointer { buf in
                    cfloor_end_to_end(producer, consumer, topic, group, Int64(n), rate,
                                      Self.template, Int32(Self.messageBytes), buf.baseAddress, &seconds, err, errlen)
                }
            }
        }
        var run = Run(count: n, seconds: seconds, cpu: timing.cpu)
        for l in latencies { _ = run.histogram.record(UInt64(max(l, 0))) }
        return run
    }

    func swiftLayer(rate: Double, n: Int) async throws -> Run {
        let topic = try topic("swift")
        try KafkaAdmin(config: config).ensureTopics([
            TopicSpec(name: Topics.aggregatedMetrics, partitions: 3), TopicSpec(name: Topics.priceAlerts, partitions: 2),
        ])
        let sent = SendTimes(count: n)
        let received = Mutex((histogram: Self.histogram(), count: 0, ready: false, lastNs: Int64(0)))
        var aggregatorOptions = AggregatorService.Options()
        aggregatorOptions.onProcessed = { batch in
            let now = monotonicNanoseconds()
            received.withLock { r in
                for (trade, _) in batch {
                    let id = Int(trade.volume) - 1
                    guard id >= 0, id < sent.count else { r.ready = true; continue }
                    _ = r.histogram.record(UInt64(max(0, now - sent[id])))
                    r.count += 1
                    r.lastNs = now
                }
            }
        }
        let aggregator = try benchAggregator(config: config, topic: topic, group: "bench-e2e-swift-\(UInt32.random(in: 0...UInt32.max))", options: aggregatorOptions)
        let running = Task { try await aggregator.run() }
        defer { running.cancel() }
        let publisher = TradePublisher(producer: try KafkaProducer(config: config), topic: topic, source: "bench")
        let symbols = (0..<50).map { "SYM\($0)" }
        let deadline = ContinuousClock.now + .seconds(60)
        while !received.withLock({ $0.ready }) {
            guard ContinuousClock.now < deadline else { throw KafkaScenarios.Failure(description: "end-to-end: the aggregator never received the warm-up trades") }
            try publisher.publish([Trade(symbol: "warmup", price: 1, timestamp: Self.nowMs(), volume: 0, conditions: ["1"])])
            try publisher.flush()
            try await Task.sleep(for: .milliseconds(200))
        }

        let cpu0 = processCPUSeconds()
        let wall0 = monotonicNanoseconds()
        let due = SendTimes(count: n)
        try await Self.paced(n: n, rate: rate) { i, scheduled in
            let trade = Trade(symbol: symbols[i % 50], price: 100 + Double(i % 997) / 100, timestamp: Self.nowMs(), volume: Double(i + 1), conditions: ["1"])
            due[i] = scheduled
            sent[i] = monotonicNanoseconds()
            try publisher.publish([trade])
        }
        var publishDelay = Self.histogram()
        for i in 0..<n { _ = publishDelay.record(UInt64(max(0, sent[i] - due[i]))) }
        try publisher.flush(timeout: .seconds(60))
        let doneBy = ContinuousClock.now + .seconds(60)
        while received.withLock({ $0.count }) < n, ContinuousClock.now < doneBy { try await Task.sleep(for: .milliseconds(5)) }
        let seconds = Double(received.withLock { $0.lastNs } - wall0) / 1e9
        let cpu = processCPUSeconds() - cpu0
        aggregator.service.consumer.finish()
        try? await running.value
        try publisher.producer.close()
        let (histogram, count) = received.withLock { ($0.histogram, $0.count) }
        guard count == n else { throw KafkaScenarios.Failure(description: "end-to-end: the aggregator processed \(count) of \(n) trades within 60 s") }
        return Run(histogram: histogram, publishDelay: publishDelay, count: n, seconds: seconds, cpu: cpu)
    }

    /// Calls `body(i, due)` for i in 0..<n at `rate` per second on a dedicated thread, each call due at
    /// `due` = start + i/rate (`CLOCK_MONOTONIC` ns); rethrows the first error. Like Kafka's own `ThroughputThrottler`, it sleeps
    /// only when more than ``pacingSlackNs`` ahead (absolute sleeps, no drift), so at high rates the
    /// calls come in bursts a millisecond apart rather than costing a timer wake-up each.
    static func paced(n: Int, rate: Double, _ body: @escaping @Sendable (Int, Int64) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                let start = monotonicNanoseconds()
                let interval = 1e9 / rate
                do {
                    for i in 0..<n {
                        let due = start + Int64(Double(i) * interval)
                        if due - monotonicNanoseconds() > pacingSlackNs { sleepUntil(due) }
                        try body(i, due)
                    }
                    done.resume()
                } catch { done.resume(throwing: error) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1_000, highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three)
    }

    static let curvePercentiles: [Double] = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100]

    static func result(_ name: String, rate: Double, run: Run, note: String) -> BenchResult {
        func ms(_ v: UInt64) -> Double { Double(v) / 1e6 }
        let h = run.histogram
        var r = BenchResult(scenario: name, messages: run.count, messageBytes: messageBytes, seconds: run.seconds, cpuSeconds: run.cpu,
                            latencyMs: ["p50": ms(h.valueAtPercentile(50)), "p90": ms(h.valueAtPercentile(90)), "p99": ms(h.valueAtPercentile(99)),
                                        "p99.9": ms(h.valueAtPercentile(99.9)), "max": ms(h.max)],
                            note: note)
        r.offeredRate = rate
        r.latencyCurve = curvePercentiles.map { p in LatencyPoint(percentile: p, ms: ms(p >= 100 ? h.max : h.valueAtPercentile(p))) }
        return r
    }
}

/// Send times written by the pacing thread and read by the consumer after Kafka delivered the
/// message (the produce → fetch round trip orders the write before the read).
final class SendTimes: @unchecked Sendable {
    let count: Int
    private let storage: UnsafeMutablePointer<Int64>
    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
    }
    deinit { storage.deallocate() }
    subscript(i: Int) -> Int64 {
        get { storage[i] }
        set { storage[i] = newValue }
    }
}

/// "1 round", or "N rounds in the order C S, S C" for the notes of scenarios that alternate with a floor.
func roundsText(_ rounds: Int) -> String {
    rounds == 1 ? "1 round" : "\(rounds) rounds in the order C S, S C"
}

/// The aggregator the bench scenarios run: a new consumer group `group` over `topic`, logging errors only.
func benchAggregator(config: KafkaConfig, topic: String, group: String, options: AggregatorService.Options = .init()) throws -> AggregatorService {
    var consumer = ConsumerService.Options(groupID: group)
    consumer.topic = topic
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    return try AggregatorService(service: try ConsumerService(config: config, options: consumer, logger: logger), options: options)
}

/// How far ahead of schedule an end-to-end sender may run before it sleeps; the C floor uses the
/// same value (`PACING_SLACK_NS` in floor.c).
let pacingSlackNs: Int64 = 1_000_000

/// `CLOCK_MONOTONIC` in nanoseconds (the clock the C floor uses).
func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Sleeps until `CLOCK_MONOTONIC` reaches `ns` (absolute, so lateness never accumulates).
func sleepUntil(_ ns: Int64) {
    var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) != 0 {}
}
