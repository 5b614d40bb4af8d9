import SimExchange
import Feeds
import MarketData
import Exchange
import Foundation
import Logging
import Synchronization
import Testing

/// Records a feed's events in the background so tests can wait for conditions.
final class Box<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

final class EventLog: Sendable {
    let events = Box<[FeedEvent]>([])
    let finished = Box(false)
    let feed: any Feed

    init(_ feed: some Feed) { self.feed = feed }

    /// Runs the feed, keeping every event it delivers.
    func run() async throws {
        defer { finished.withLock { $0 = true } }
        let events = self.events
        try await feed.run(frames: false) { e in events.withLock { $0.append(e) } }
    }

    var snapshot: [FeedEvent] { events.withLock { $0 } }
    var trades: [Trade] { snapshot.flatMap { if case .trades(let t) = $0 { t } else { [Trade]() } } }

    /// Waits until `condition` holds on the events so far; false on timeout.
    @discardableResult
    func wait(timeout: Duration = .seconds(10), _ condition: ([FeedEvent]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(snapshot) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(snapshot)
    }
}

func count(_ events: [FeedEvent], _ predicate: (FeedEvent) -> Bool) -> Int { events.filter(predicate).count }
func isConnected(_ e: FeedEvent) -> Bool { if case .connected = e { true } else { false } }
func isGap(_ e: FeedEvent) -> Bool { if case .gap = e { true } else { false } }
func isTrades(_ e: FeedEvent) -> Bool { if case .trades = e { true } else { false } }
func serverErrors(_ events: [FeedEvent]) -> [String] { events.compactMap { if case .serverError(let m) = $0 { m } else { nil } } }

let quietLogger: Logger = {
    var l = Logger(label: "test")
    l.logLevel = .warning
    return l
}()

func startServer(_ configure: (inout SimExchangeConfig) -> Void) async throws -> (SimExchangeServer, Int) {
    var config = SimExchangeConfig()
    config.port = 0
    configure(&config)
    let server = SimExchangeServer(config: config, logger: quietLogger)
    let port = try await server.start()
    return (server, port)
}

let fastBackoff = Backoff(initial: .milliseconds(10), max: .milliseconds(50), multiplier: 2, jitter: 0)

@discardableResult
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}
