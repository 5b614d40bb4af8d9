import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Dispatch
import Foundation
import Synchronization

/// Publishes through a ``TradePublisher`` from a thread of its own. ``publish(_:)`` only encodes
/// the trades (on the caller's thread) and hands them over, so a replay decodes the next frame
/// while librdkafka takes the last one.
///
/// Contract:
/// - Messages are produced in the order of the ``publish(_:)`` calls.
/// - Trades are handed over once `coalesce` of them are pending (1: on every call), and by
///   ``flush(timeout:)``. At most `depth` batches wait; past that ``publish(_:)`` blocks.
/// - A produce failure is thrown by the next ``publish(_:)`` or ``flush(timeout:)``; the trades
///   handed over after it are dropped, not produced.
/// - ``flush(timeout:)`` returns once every trade published before it is acknowledged.
/// - ``close()`` (or deinit) ends the thread after the batches already handed over.
public final class PipelinedPublisher: Sendable {
    public let publisher: TradePublisher
    public let coalesce: Int
    private let pending: Mutex<KafkaRecordBatch>
    private let queue: BlockingQueue<Item>
    private let failure: FirstFailure
    private let finished = DispatchSemaphore(value: 0)
    private let closed = Atomic<Bool>(false)

    private final class FirstFailure: Sendable {
        private let error = Mutex<KafkaError?>(nil)
        var value: KafkaError? { error.withLock { $0 } }
        func record(_ e: KafkaError) { error.withLock { if $0 == nil { $0 = e } } }
    }

    private enum Item: Sendable {
        case batch(KafkaRecordBatch)
        case flushed(DispatchSemaphore)
        case stop
    }

    public init(_ publisher: TradePublisher, coalesce: Int = 1, depth: Int = 8) {
        self.publisher = publisher
        self.coalesce = max(1, coalesce)
        pending = Mutex(KafkaRecordBatch(capacity: max(1, coalesce)))
        queue = BlockingQueue(depth: max(1, depth))
        failure = FirstFailure()
        let queue = queue, failure = failure, finished = finished
        let thread = Thread {
            loop: while true {
                switch queue.take() {
                case .batch(let batch):
                    guard failure.value == nil else { continue }
                    do throws(KafkaError) { try publisher.publish(batch) } catch { failure.record(error) }
                case .flushed(let done): done.signal()
                case .stop: break loop
                }
            }
            finished.signal()
        }
        thread.name = "trade-publisher"
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit { close() }

    /// Encodes `trades` and hands them over once `coalesce` are pending.
    /// - Throws: a failure of an earlier batch.
    public func publish(_ trades: [Trade]) throws(KafkaError) {
        if let error = failure.value { throw error }
        handOff(adding: trades, atLeast: coalesce)
    }

    /// Hands over what is pending, waits until the thread has produced it, then until the
    /// producer has every message acknowledged.
    /// - Throws: the first failure seen, or the producer's flush timeout.
    public func flush(timeout: Duration = .seconds(30)) throws(KafkaError) {
        handOff()
        let done = DispatchSemaphore(value: 0)
        queue.put(.flushed(done))
        done.wait()
        if let error = failure.value { throw error }
        try publisher.flush(timeout: timeout)
    }

    /// Ends the thread once it has produced what was handed over; pending trades are handed over first.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        handOff()
        queue.put(.stop)
        finished.wait()
    }

    /// Encodes `trades` into the pending batch and hands the batch over once it holds `minimum` or more.
    private func handOff(adding trades: [Trade] = [], atLeast minimum: Int = 1) {
        let ready: KafkaRecordBatch? = pending.withLock { batch in
            TradePublisher.encode(trades, into: &batch)
            guard batch.count >= minimum else { return nil }
            defer { batch = KafkaRecordBatch(capacity: coalesce) }
            return batch
        }
        if let ready { queue.put(.batch(ready)) }
    }
}
