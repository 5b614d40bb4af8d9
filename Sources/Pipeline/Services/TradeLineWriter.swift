import MarketData
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes trades as JSON lines (the Kafka message value, ``TradeMessage``) to a file descriptor, in order.
/// One caller at a time (the ingest service's task).
///
/// `write` only collects trades; a background thread encodes and writes them in chunks, so decoding
/// (the caller) and encoding run on two cores. At most `maxPendingChunks` chunks wait; `write` blocks
/// beyond that. `flush()` returns once everything written so far has reached the descriptor.
public final class TradeLineWriter: TradeSink, @unchecked Sendable {
    private let worker: Worker
    private let chunkSize: Int
    private var chunk: [Trade] = []

    public let flushesEveryPublish: Bool

    /// Writes to file descriptor `fd` (default: standard output) through its own `FILE` stream.
    public init(fd: Int32 = 1, chunkSize: Int = 4096, maxPendingChunks: Int = 4, flushesEveryPublish: Bool = false) {
        self.flushesEveryPublish = flushesEveryPublish
        worker = Worker(stream: fdopen(fd, "w")!, maxPendingChunks: maxPendingChunks)
        self.chunkSize = chunkSize
        chunk.reserveCapacity(chunkSize)
        let worker = worker
        let thread = Thread { worker.drainLoop() }
        thread.name = "trade-line-writer"
        thread.start()
    }

    /// Collects `trades`; with `flushesEveryPublish` (paced replays) they reach the descriptor before it returns.
    public func publish(_ trades: [Trade]) {
        write(trades)
        if flushesEveryPublish { flush() }
    }

    public func write(_ trades: [Trade]) {
        chunk.append(contentsOf: trades)
        if chunk.count >= chunkSize { handOff() }
    }

    public func flush() {
        if !chunk.isEmpty { handOff() }
        worker.put([])
        worker.drained.wait()
    }

    private func handOff() {
        worker.put(chunk)
        chunk = []
        chunk.reserveCapacity(chunkSize)
    }

    deinit {
        flush()
        worker.put(nil)
        worker.finished.wait()
    }

    /// The encoding thread's side: chunks in order; `[]` means flush, `nil` means stop.
    private final class Worker: @unchecked Sendable {
        let stream: UnsafeMutablePointer<FILE>
        let queue: BlockingQueue<[Trade]?>
        let drained = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)

        init(stream: UnsafeMutablePointer<FILE>, maxPendingChunks: Int) {
            self.stream = stream
            queue = BlockingQueue(depth: maxPendingChunks)
        }

        func put(_ chunk: [Trade]?) { queue.put(chunk) }

        func drainLoop() {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            while true {
                guard let next = queue.take() else { break }
                if next.isEmpty {
                    fflush(stream)
                    drained.signal()
                    continue
                }
                for t in next {
                    TradeMessage.encode(t, into: &buffer)
                    buffer.append(0x0A)
                }
                buffer.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, stream) }
                buffer.removeAll(keepingCapacity: true)
            }
            finished.signal()
        }
    }
}
