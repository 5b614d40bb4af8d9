import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` in a task that SIGINT/SIGTERM cancel, and returns its result. While it runs, both
/// signals are handled (not fatal); the default handling is restored afterwards. For commands
/// that stop cleanly on Ctrl-C.
public func runCancellableOnSignal<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let sources = [SIGINT, SIGTERM].map { sig in
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler { task.cancel() }
        s.resume()
        return s
    }
    defer {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
    return try await task.value
}
