import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` in a task that SIGINT/SIGTERM cancel, and returns its result; a second signal ends
/// the process at once (``SignalExit``). For commands that stop cleanly on Ctrl-C.
public func runCancellableOnSignal<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    SignalExit.started()
    let task = Task { try await body() }
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let sources = [SIGINT, SIGTERM].map { sig in
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler { task.cancel() }
        s.resume()
        return s
    }
    defer { sources.forEach { $0.cancel() } }
    return try await task.value
}

/// How a command ends on SIGINT/SIGTERM around its real work. After ``install()`` and before
/// ``started()`` (while it checks flags and connects), the first signal ends the process at once
/// with status 130: nothing is in flight yet. After ``started()`` the first signal is left to the
/// command's graceful shutdown (a `ServiceGroup`, ``runCancellableOnSignal(_:)``) and a second one
/// ends the process without waiting. Deliveries within 200 ms of each other count as one signal.
public enum SignalExit {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var running = false
    nonisolated(unsafe) private static var count = 0
    nonisolated(unsafe) private static var first: ContinuousClock.Instant?

    /// Starts handling both signals; idempotent.
    public static func install() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { received() }
            source.resume()
            sources.append(source)
        }
    }

    /// The real work begins: from now on the first signal is the command's graceful stop.
    public static func started() {
        install()
        lock.lock(); running = true; lock.unlock()
    }

    private static func received() {
        lock.lock()
        let now = ContinuousClock.now
        if let first, now - first < .milliseconds(200) { lock.unlock(); return }
        if first == nil { first = now }
        count += 1
        let (isRunning, n) = (running, count)
        lock.unlock()
        if !isRunning {
            FileHandle.standardError.write(Data("interrupted before anything started: exiting\n".utf8))
            exit(130)
        }
        if n >= 2 {
            FileHandle.standardError.write(Data("second signal: exiting without waiting\n".utf8))
            exit(130)
        }
    }
}
