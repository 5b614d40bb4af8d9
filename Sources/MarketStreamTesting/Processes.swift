import Kafka
import Pipeline
import Feeds
import MarketData
import SimExchange
import Foundation

/// The package's root folder (where `.build` is).
public func packageRoot() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

/// A product's executable built next to the tests (`swift build --build-tests` builds them all).
public func builtExecutable(_ name: String) -> String? {
    [".build/debug/", ".build/release/"].map { packageRoot() + "/" + $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// One of the project's executables run as a child process, the way a user runs it; its
/// stdout and stderr are appended to `log`. Killed with SIGKILL when dropped.
public final class ChildProcess: @unchecked Sendable {
    public let name: String
    public let arguments: [String]
    private let process = Process()

    public struct NotBuilt: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ name: String, _ arguments: [String], log: String) throws {
        guard let path = builtExecutable(name) else { throw NotBuilt(description: "\(name) is not built; run swift build --build-tests") }
        self.name = name
        self.arguments = arguments
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        out.seekToEndOfFile()
        out.write(Data("--- \(name) \(arguments.joined(separator: " "))\n".utf8))
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = out
        try process.run()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// SIGKILL: the process gets no chance to clean up.
    public func kill9() { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    /// SIGINT (Ctrl-C).
    public func interrupt() { if process.isRunning { kill(process.processIdentifier, SIGINT) } }

    /// SIGTERM (graceful shutdown).
    public func terminate() { if process.isRunning { kill(process.processIdentifier, SIGTERM) } }

    /// Waits for the process to end; its exit status, or nil if it still runs after `timeout`.
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }
}

/// Every record of `topic`, read from the start of each partition to its end.
public func readTopic(_ topic: String, config: KafkaConfig) throws -> [KafkaMessage] {
    let partitions = try KafkaAdmin(config: config).topics()[topic] ?? 0
    let reader = try KafkaPartitionReader(config: config)
    return try reader.read((0..<Int32(partitions)).map { TopicPartitionOffset(topic: topic, partition: $0, offset: 0) }, timeout: .seconds(60))
}

/// A new empty folder under the system's temporary directory, for one test.
public func tempDir(_ prefix: String = "marketstream") -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP request; the status and the body as text (nil status when nothing answered).
public func httpRequest(_ method: String, _ url: String, timeout: Double = 5) async -> (status: Int?, body: String) {
    guard let u = URL(string: url) else { return (nil, "bad URL") }
    var request = URLRequest(url: u, timeoutInterval: timeout)
    request.httpMethod = method
    do {
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode, String(decoding: data, as: UTF8.self))
    } catch {
        return (nil, "\(error)")
    }
}
