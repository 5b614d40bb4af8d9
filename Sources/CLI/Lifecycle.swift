import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// How every long-running command runs and stops: its services in one `ServiceGroup`.
///
/// Contract:
/// - SIGINT or SIGTERM starts a graceful shutdown: each service finishes what it holds (flush,
///   commit, close files) and returns. A second SIGINT or SIGTERM while that runs exits the process
///   at once with status 130, without waiting.
/// - A service that returns or throws shuts the others down gracefully; ``run(_:logger:)`` rethrows
///   the first error a service threw.
/// - A service that is stopped before its real work started (still connecting, see
///   ``interruptible(_:)``) throws ``Interrupted``; ``run(_:logger:)`` then throws `ExitCode(130)`.
public enum Lifecycle {
    public static func run(_ services: [any Service], logger: Logger) async throws {
        let failure = FirstError()
        let wrapped: [ServiceGroupConfiguration.ServiceConfiguration] = services.map {
            .init(service: Catching(service: $0, failure: failure), successTerminationBehavior: .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        let group = ServiceGroup(configuration: .init(services: wrapped, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let force = Task { await forceOnSecondSignal() }
        defer { force.cancel() }
        try await group.run()
        guard let error = failure.value else { return }
        if error is Interrupted || error is CancellationError {
            FileHandle.standardError.write(Data("interrupted before anything started: exiting\n".utf8))
            throw ExitCode(Interrupted.status)
        }
        throw error
    }

    /// Runs one service body with ``run(_:logger:)``.
    public static func run(_ name: String, logger: Logger, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await run([ServiceBody(name: name, body: body)], logger: logger)
    }
}

/// The command was stopped by a signal before its real work started.
public struct Interrupted: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted" }
    /// The conventional status of a process stopped by SIGINT.
    public static let status: Int32 = 130
}

/// A service made of a closure.
public struct ServiceBody: Service, CustomStringConvertible {
    public let name: String
    let body: @Sendable () async throws -> Void
    public init(name: String, body: @escaping @Sendable () async throws -> Void) { self.name = name; self.body = body }
    public func run() async throws { try await body() }
    public var description: String { name }
}

/// Runs a blocking call (a broker round trip, a DNS lookup) on a thread of its own and waits for it;
/// at graceful shutdown or cancellation it stops waiting and throws ``Interrupted`` (the call is left
/// to end by itself).
public func interruptible<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let slot = Slot<T>()
    return try await cancelWhenGracefulShutdown {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
                slot.set(c)
                let thread = Thread { slot.resume(Result { try body() }) }
                thread.start()
            }
        } onCancel: {
            slot.resume(.failure(Interrupted()))
        }
    }
}

/// A continuation resumed once: by the blocking call's result, or by cancellation, whichever comes first
/// (a result that comes before the continuation is set is kept for it).
private final class Slot<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, early: Result<T, any Error>?)>((nil, nil))
    func set(_ c: CheckedContinuation<T, any Error>) {
        let early = state.withLock { s -> Result<T, any Error>? in
            if s.early == nil { s.continuation = c }
            return s.early
        }
        if let early { c.resume(with: early) }
    }
    func resume(_ r: Result<T, any Error>) {
        let c = state.withLock { s -> CheckedContinuation<T, any Error>? in
            if let c = s.continuation { s.continuation = nil; return c }
            if s.early == nil { s.early = r }
            return nil
        }
        c?.resume(with: r)
    }
}

private final class FirstError: Sendable {
    private let error = Mutex<(any Error)?>(nil)
    var value: (any Error)? { error.withLock { $0 } }
    func record(_ e: any Error) { error.withLock { if $0 == nil { $0 = e } } }
}

private struct Catching: Service, CustomStringConvertible {
    let service: any Service
    let failure: FirstError
    func run() async throws {
        do { try await service.run() } catch {
            failure.record(error)
        }
    }
    var description: String { "\(service)" }
}

/// Counts SIGINT/SIGTERM (deliveries within 200 ms of each other count once); the second ends the process.
private func forceOnSecondSignal() async {
    var first: ContinuousClock.Instant?
    for await signal in await UnixSignalsSequence(trapping: .sigint, .sigterm) {
        let now = ContinuousClock.now
        guard let seen = first else { first = now; continue }
        if now - seen < .milliseconds(200) { continue }
        FileHandle.standardError.write(Data("second signal (\(signal)): exiting without waiting\n".utf8))
        exit(Interrupted.status)
    }
}
