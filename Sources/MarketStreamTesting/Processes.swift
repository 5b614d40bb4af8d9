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
    /// The log file and its size when this process started: where its part of the log begins.
    public let log: String
    private let logStart: UInt64
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
        self.log = log
        logStart = out.seekToEndOfFile()
        out.write(Data("--- \(name) \(arguments.joined(separator: " "))\n".utf8))
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = out
        try process.run()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    /// Whether the log from this process's start on holds `text` (lines of processes writing the same
    /// log after it started included).
    public func logged(_ text: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: log) else { return false }
        defer { try? h.close() }
        h.seek(toFileOffset: logStart)
        return String(decoding: h.readDataToEndOfFile(), as: UTF8.self).contains(text)
    }

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

/// One HTTP/1.1 request (with a JSON `body` when given) over a plain socket; the status and the
/// body as text (nil status when nothing answered). It reads headers however the server spaces
/// them (chromedriver writes `Content-Length:251`, which URLSession on Linux refuses) and
/// decodes chunked bodies.
public func httpRequest(_ method: String, _ url: String, body: String? = nil, timeout: Double = 5) async -> (status: Int?, body: String) {
    await withCheckedContinuation { done in
        DispatchQueue.global().async { done.resume(returning: blockingHTTPRequest(method, url, body: body, timeout: timeout)) }
    }
}

private func blockingHTTPRequest(_ method: String, _ url: String, body: String?, timeout: Double) -> (status: Int?, body: String) {
    guard let u = URLComponents(string: url), let host = u.host, u.scheme == "http" else { return (nil, "bad URL \(url)") }
    let port = u.port ?? 80
    var hints = addrinfo()
    hints.ai_family = AF_INET
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var info: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &info) == 0, let address = info else { return (nil, "cannot resolve \(host)") }
    defer { freeaddrinfo(info) }
    let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
    guard fd >= 0 else { return (nil, "no socket") }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    guard connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else { return (nil, "connection refused by \(host):\(port)") }
    var path = u.percentEncodedPath.isEmpty ? "/" : u.percentEncodedPath
    if let q = u.percentEncodedQuery { path += "?" + q }
    let payload = Array((body ?? "").utf8)
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(payload.count)\r\n"
    if body != nil { head += "Content-Type: application/json\r\n" }
    let request = Array((head + "\r\n").utf8) + payload
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { return (nil, "could not send to \(host):\(port)") }
        sent += n
    }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    /// Whether `response` holds the whole answer (servers may keep the connection open).
    func complete() -> Bool {
        guard let split = response.firstRange(of: Array("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self).lowercased().replacingOccurrences(of: " ", with: "")
        if let line = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }), let length = Int(line.dropFirst(15)) {
            return response.count - split.upperBound >= length
        }
        return head.contains("transfer-encoding:chunked") && response.suffix(5) == Array("0\r\n\r\n".utf8)[...]
    }
    while !complete() {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += chunk[0..<n]
    }
    guard let split = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
        return (nil, response.isEmpty ? "no answer from \(host):\(port)" : "incomplete answer")
    }
    let lines = String(decoding: response[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusLine = lines.first?.split(separator: " ") ?? []
    let status = statusLine.count > 1 ? Int(statusLine[1]) : nil
    let chunked = lines.dropFirst().contains { $0.lowercased().replacingOccurrences(of: " ", with: "") == "transfer-encoding:chunked" }
    var content = Array(response[split.upperBound...])
    if chunked {
        var decoded: [UInt8] = [], i = 0
        while let end = content[i...].firstRange(of: Array("\r\n".utf8)),
              let size = Int(String(decoding: content[i..<end.lowerBound], as: UTF8.self).split(separator: ";").first ?? "", radix: 16), size > 0,
              end.upperBound + size <= content.count {
            decoded += content[end.upperBound..<(end.upperBound + size)]
            i = end.upperBound + size + 2
            guard i <= content.count else { break }
        }
        content = decoded
    }
    return (status, String(decoding: content, as: UTF8.self))
}
