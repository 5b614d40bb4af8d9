import Dispatch
import Synchronization

/// A bounded FIFO between threads: ``put(_:)`` blocks while `depth` items wait (unless stopped),
/// ``take()`` blocks until an item is there. Items come out in the order they went in.
public final class BlockingQueue<Item: Sendable>: Sendable {
    private let items = Mutex<[Item]>([])
    private let filled = DispatchSemaphore(value: 0)
    private let free: DispatchSemaphore
    private let stopFlag = Atomic<Bool>(false)

    public init(depth: Int) { free = DispatchSemaphore(value: depth) }

    /// Set by the consumer when it gives up early; the producer then ends soon, and ``put(_:)`` never blocks.
    public var stopped: Bool { stopFlag.load(ordering: .relaxed) }
    public func stop() {
        stopFlag.store(true, ordering: .relaxed)
        free.signal()
    }

    /// Items waiting to be taken now (a snapshot: the other side may change it at once).
    public var count: Int { items.withLock { $0.count } }

    public func put(_ item: Item) {
        if !stopped {
            free.wait()
            if stopped { free.signal() }
        }
        items.withLock { $0.append(item) }
        filled.signal()
    }

    public func take() -> Item {
        filled.wait()
        let item = items.withLock { $0.removeFirst() }
        free.signal()
        return item
    }
}
