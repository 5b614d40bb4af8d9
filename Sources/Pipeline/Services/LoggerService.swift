import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
import ServiceLifecycle
import Synchronization

/// Consumer 1 of the seed: prints trades to verify the flow, and a summary line per second
/// (trades, symbols, dead letters). `quiet` prints the summaries only.
public final class LoggerService: Service, Sendable {
    public let service: ConsumerService
    public let quiet: Bool
    private let output: @Sendable (String) -> Void
    private let window = Mutex<(count: Int, symbols: Set<String>, since: ContinuousClock.Instant)>((0, [], .now))

    public init(service: ConsumerService, quiet: Bool, output: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.service = service
        self.quiet = quiet
        self.output = output
    }

    public func run() async throws {
        try await service.run({ [self] batch in
            for (trade, message) in batch {
                if !quiet { output(Self.line(trade, message)) }
            }
            window.withLock { w in
                w.count += batch.count
                for item in batch { w.symbols.insert(item.trade.symbol) }
            }
            summarizeIfDue()
        }, onIdle: { [self] in summarizeIfDue() })
    }

    private func summarizeIfDue() {
        let line: String? = window.withLock { w in
            let elapsed = ContinuousClock.now - w.since
            guard elapsed >= .seconds(1) else { return nil }
            let seconds = elapsed.inSeconds
            defer { w = (0, [], .now) }
            return String(format: "[summary] %d trades in %.1f s (%.0f/s), %d symbols%@, dead letters so far: %d",
                          w.count, seconds, Double(w.count) / seconds, w.symbols.count,
                          w.symbols.isEmpty ? "" : " (\(w.symbols.sorted().prefix(8).map(\.escapingControlCharacters).joined(separator: ", ")))", service.deadLetters.count)
        }
        if let line { output(line) }
    }

    static func line(_ t: Trade, _ m: KafkaMessage) -> String {
        let time = Date(timeIntervalSince1970: Double(t.timestamp) / 1000).formatted(.iso8601.time(includingFractionalSeconds: true))
        return "\(time) \(t.symbol.escapingControlCharacters) \(JSONOutput.number(t.price)) x \(JSONOutput.number(t.volume)) [\(m.topic)/\(m.partition)@\(m.offset)]"
    }
}
