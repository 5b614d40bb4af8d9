import Feeds
import Exchange
import Aggregation
import MarketData
import Recording
import Kafka
import Pipeline
import Foundation
import Logging
import Synchronization

/// Where and how paper trading reads the live tape.
public struct PaperOptions: Sendable {
    /// The pipeline's trade topic (``TradeMessage`` JSON values).
    public var topic = Topics.rawMarketData
    /// A fresh group by default, so paper trading never takes partitions from the pipeline's consumers.
    public var groupID = "backtest-paper-\(UInt32.random(in: 0...UInt32.max))"
    /// When set, windows come from this topic (the pipeline's `aggregated-metrics`) instead of the in-process
    /// aggregator; each is held back until the paper clock reaches its end (no look-ahead).
    public var metricsTopic: String?
    /// When set (e.g. `ws://127.0.0.1:9001/?token=x`), orders go to this `sim-exchange` over its WebSocket
    /// (``OrderProtocol``) and its fills are applied as they arrive, instead of the in-process simulated exchange.
    public var exchangeURL: String?
    /// Start at the oldest retained trade instead of the newest.
    public var fromBeginning = false
    /// Stop after this many trades (nil: until cancelled).
    public var maxTrades: Int?
    /// Stop when no message arrived for this long after the first one (nil: never).
    public var idleTimeout: Duration?
    /// When the newest trade is within this of the wall clock, idle symbols' windows are closed by the wall
    /// clock, as the pipeline's aggregator does (ms).
    public var liveThresholdMs: Int64 = 60_000
    public init() {}
}

/// Paper trading: the backtest engine, strategy and simulated exchange over the live `raw-market-data` topic.
public enum PaperTrading {
    /// Consumes trades until cancellation (Ctrl-C), `maxTrades` or `idleTimeout`, then returns the report.
    /// Throws within 10 s when no broker answers.
    /// Messages that are not valid trades are skipped and counted. `onFill` sees every fill as it happens.
    public static func run<S: Strategy>(kafka: KafkaConfig, options: PaperOptions = PaperOptions(), strategy: S,
                                        config: BacktestConfig = BacktestConfig(),
                                        onFill: (@Sendable (Fill) -> Void)? = nil) async throws -> BacktestResult {
        var kafka = kafka
        _ = try KafkaAdmin(config: kafka).topics(timeout: .seconds(10))
        if kafka.properties["auto.offset.reset"] == nil { kafka.properties["auto.offset.reset"] = options.fromBeginning ? "earliest" : "latest" }
        let consumer = try KafkaConsumer(config: kafka, groupID: options.groupID, topics: [options.topic] + (options.metricsTopic.map { [$0] } ?? []),
                                         commitPolicy: .manual)
        defer { consumer.close() }
        var config = config
        config.externalWindows = options.metricsTopic != nil
        let remote = options.exchangeURL.map { RemoteExchange(url: $0) }
        defer { remote?.close() }
        config.externalFills = remote != nil
        var subscribed: Set<String> = []
        var engine = try BacktestEngine(strategy: Observed(inner: strategy, onFill: onFill), config: config)
        let start = DispatchTime.now().uptimeNanoseconds
        var skipped = 0, newest: Int64 = 0
        var lastMessage: ContinuousClock.Instant?
        loop: while !Task.isCancelled {
            guard let batch = try await consumer.nextBatch(timeout: .milliseconds(200)) else { break }
            if batch.isEmpty {
                if let idle = options.idleTimeout, let last = lastMessage, ContinuousClock.now - last >= idle { break }
            } else {
                lastMessage = .now
            }
            for message in batch {
                if message.topic == options.metricsTopic {
                    if let w = WindowMetrics(json: message.value) { engine.receive(w) } else { skipped += 1 }
                    continue
                }
                let decoded = message.withUnsafeValue { bytes in Result { () throws(TradeMessageError) in try TradeMessage.decode(bytes) } }
                guard case .success(let trade) = decoded else { skipped += 1; continue }
                engine.process(trade)
                newest = max(newest, trade.timestamp)
                if let m = options.maxTrades, engine.tradesProcessed >= m { break loop }
            }
            if let remote {
                for f in remote.takeFills() { engine.applyExternalFill(f) }
                for (id, o) in engine.takeOutgoingOrders() {
                    if subscribed.insert(o.symbol).inserted { remote.send(FinnhubCodec.encodeClientMessage(.subscribe(o.symbol))) }
                    remote.send(OrderProtocol.encode(ClientOrder(id: String(id), order: o)))
                }
            }
            let wall = Int64(Date().timeIntervalSince1970 * 1000)
            if newest > 0, wall - newest < options.liveThresholdMs { engine.closeIdle(wallMs: wall) }
        }
        let report = engine.report()
        return BacktestResult(report: report, wallNs: DispatchTime.now().uptimeNanoseconds - start, skipped: skipped)
    }
}

/// A connection to `sim-exchange` (a ``WebSocketFeed`` with no symbols of its own) that sends order frames,
/// in order, and collects the fill frames it receives.
final class RemoteExchange: Sendable {
    private let outgoing: AsyncStream<String>.Continuation
    private final class Inbox: Sendable { let fills = Mutex<[Fill]>([]) }
    private let inbox = Inbox()
    private let task: Task<Void, Never>

    init(url: String) {
        let (stream, outgoing) = AsyncStream.makeStream(of: String.self)
        self.outgoing = outgoing
        let inbox = self.inbox
        var logger = Logger(label: "backtest.exchange")
        logger.logLevel = .warning
        let feed = WebSocketFeed(url: url, symbols: [], logger: logger)
        task = Task {
            let writer = Task { for await text in stream { await feed.send(text) } }
            defer { writer.cancel() }
            do {
                try await feed.run(frames: true) { event in
                    guard case .frame(let frame) = event, let (id, fill) = OrderProtocol.decodeFill(frame.text), let n = Int(id) else { return }
                    var f = fill
                    f.orderID = n
                    inbox.fills.withLock { $0.append(f) }
                }
            } catch { logger.warning("sim-exchange connection ended: \(error)") }
        }
    }

    func send(_ text: String) { outgoing.yield(text) }

    /// Fills received since the last call, in arrival order.
    func takeFills() -> [Fill] { inbox.fills.withLock { f in defer { f.removeAll() }; return f } }

    func close() {
        outgoing.finish()
        task.cancel()
    }
}

/// Passes every call through to `inner`, telling `onFill` about fills; the report keeps `inner`'s name.
struct Observed<S: Strategy>: Strategy {
    var inner: S
    let onFill: (@Sendable (Fill) -> Void)?
    var name: String { inner.name }
    var parameters: [(String, String)] { inner.parameters }
    mutating func onTrade(_ trade: Trade, _ context: StrategyContext) -> [Order] { inner.onTrade(trade, context) }
    mutating func onWindow(_ window: WindowMetrics, _ context: StrategyContext) -> [Order] { inner.onWindow(window, context) }
    mutating func onFill(_ fill: Fill, _ context: StrategyContext) -> [Order] {
        onFill?(fill)
        return inner.onFill(fill, context)
    }
}
