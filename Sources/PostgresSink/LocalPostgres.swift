import Foundation

/// A throwaway PostgreSQL server on 127.0.0.1 for tests and `bench`: `initdb` into a new temporary
/// folder, `pg_ctl start` on a free port, `stop()` (also on deinit) stops it and removes the folder.
/// It uses Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`, or `PG_BIN`); as root
/// the server runs as the `postgres` user, since PostgreSQL refuses to run as root. Trust
/// authentication, for tests only; `url` names the `postgres` superuser and database.
public final class LocalPostgres: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public let port: Int
    public let directory: String
    private let bin: String
    private var running = true

    public var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    /// The server binaries' folder, or nil when PostgreSQL is not installed.
    public static var binaries: String? {
        if let dir = ProcessInfo.processInfo.environment["PG_BIN"] { return dir }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return versions.last.map { "\(root)/\($0)/bin" }.flatMap { FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl") ? $0 : nil }
    }

    public init(port: Int) throws {
        guard let bin = Self.binaries else { throw Failure(description: "PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql)") }
        self.bin = bin
        self.port = port
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("marketstream-pg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run("/bin/chown", ["postgres", directory]) }
        try asServerUser(bin + "/initdb", ["-D", directory + "/data", "-A", "trust", "-U", "postgres", "--no-sync"])
        try start()
    }

    deinit { stop() }

    /// Starts the server (again, after ``stop(removing:)`` with `removing: false`); waits until it accepts connections.
    public func start() throws {
        try asServerUser(bin + "/pg_ctl", ["-D", directory + "/data", "-w", "-t", "30", "-l", directory + "/log", "-o",
                                           "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start"])
        running = true
    }

    /// Stops the server at once (`-m fast`: open transactions are rolled back) and, unless told otherwise, removes its folder.
    public func stop(removing: Bool = true) {
        if running {
            _ = try? asServerUser(bin + "/pg_ctl", ["-D", directory + "/data", "-m", "fast", "-w", "stop"])
            running = false
        }
        if removing { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Asks the server to stop with a signal only (fast shutdown), for process-exit handlers, where
    /// starting a process is not safe.
    public func signalStop() {
        guard running, let pid = postmaster else { return }
        kill(pid, SIGINT)
        running = false
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the server and all its processes: while stopped it
    /// accepts TCP connections but answers nothing, like a database behind a network partition.
    public func freeze(_ frozen: Bool) throws {
        guard let pid = postmaster else { throw Failure(description: "the server is not running") }
        var pids = [pid]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after the command: state, parent pid, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == pid { pids.append(child) }
        }
        for p in pids { kill(p, frozen ? SIGSTOP : SIGCONT) }
    }

    /// The server's main process (the first line of `postmaster.pid`), nil when it is not running.
    private var postmaster: pid_t? {
        (try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8))?.split(separator: "\n").first.flatMap { pid_t($0) }
    }

    /// Runs SQL through `psql` as the superuser; its output (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String) throws -> String {
        try Self.run(bin + "/psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
    }

    private func asServerUser(_ tool: String, _ arguments: [String]) throws {
        if getuid() == 0 { try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments) } else { try Self.run(tool, arguments) }
    }

    /// Runs `tool` to completion with its output in a temporary file (posix_spawn and waitpid:
    /// `pg_ctl start` leaves a daemon behind, which Foundation's `Process` can wait on forever).
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("marketstream-pg-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(tool): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0, code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw Failure(description: "\((tool as NSString).lastPathComponent) \(arguments.joined(separator: " ")) failed: \(text.suffix(500))")
        }
        return text
    }
}
