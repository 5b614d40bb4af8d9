import MarketData
import Foundation

/// A Tansu broker on 127.0.0.1 run as a child process, for tests, `bench` and the demo.
///
/// The broker is found at `$TANSU_BIN`, then `.deps/bin/tansu` (where `scripts/setup.sh`
/// puts it), then on `PATH`. It stops with ``stop()``, on deinit, and also when this process
/// dies (a watchdog ends it), so no broker outlives its owner.
public final class LocalBroker: @unchecked Sendable {
    public let port: Int
    public var bootstrapServers: String { "127.0.0.1:\(port)" }
    private let process: Process

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts a broker on `port` (0: a free port) and returns once it accepts connections.
    public init(port: Int = 0, readyTimeout: Duration = .seconds(10)) throws {
        guard let tansu = Self.locateTansu() else {
            throw StartError(description: "the Tansu broker was not found; run scripts/setup.sh (or set TANSU_BIN)")
        }
        let chosen = port == 0 ? try Self.freePort() : port
        if Self.isListening(port: chosen) { throw StartError(description: "port \(chosen) on 127.0.0.1 is already in use") }
        let url = "tcp://127.0.0.1:\(chosen)"
        // Children inherit the spawning thread's blocked signals, so only SIGKILL is reliable.
        let script = """
        "$0" broker --listener-url "$1" --advertised-listener-url "$1" >/dev/null 2>&1 & child=$!
        echo $child
        while kill -0 \(getpid()) 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done
        kill -9 $child 2>/dev/null
        """
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, tansu, url]
        process.standardInput = FileHandle.nullDevice
        let pidPipe = Pipe()
        process.standardOutput = pidPipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.port = chosen
        let line = String(decoding: pidPipe.fileHandleForReading.availableDataUntilNewline(), as: UTF8.self)
        brokerPID = pid_t(line.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let deadline = ContinuousClock.now + readyTimeout
        while !Self.isListening(port: chosen) {
            if !process.isRunning || ContinuousClock.now > deadline {
                stop()
                throw StartError(description: "Tansu did not accept connections on 127.0.0.1:\(chosen) within \(readyTimeout)")
            }
            usleep(20_000)
        }
    }

    private let brokerPID: pid_t

    deinit { stop() }

    /// Ends the broker and its watchdog. Idempotent.
    public func stop() {
        if brokerPID > 0 { kill(brokerPID, SIGKILL) }
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static func locateTansu() -> String? {
        let fm = FileManager.default
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TANSU_BIN"] { candidates.append(env) }
        candidates.append(packageRoot + "/.deps/bin/tansu")
        candidates.append(fm.currentDirectoryPath + "/.deps/bin/tansu")
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/tansu") }
        return candidates.first { fm.isExecutableFile(atPath: $0) }
    }

    /// The checkout this file was compiled from.
    public static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw StartError(description: "could not find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

extension FileHandle {
    /// Reads byte by byte up to and including the first newline (or end of file).
    func availableDataUntilNewline() -> Data {
        var data = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty || byte == Data([10]) { return data }
            data.append(byte)
        }
    }
}
