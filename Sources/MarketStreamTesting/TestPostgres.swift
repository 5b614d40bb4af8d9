import PostgresSink
import Kafka
import Foundation
import Synchronization

/// One PostgreSQL server for the whole test process (``LocalPostgres`` on a free port), started on
/// first use and signalled to stop when the process exits (its folder stays in the temporary directory). `POSTGRES_TEST_URL` points the tests at an existing
/// server instead (its superuser, so the tests can create roles).
public enum TestPostgres {
    private static let shared: Result<(LocalPostgres?, String), any Error> = Result {
        if let url = ProcessInfo.processInfo.environment["POSTGRES_TEST_URL"] { return (nil, url) }
        let server = try LocalPostgres(port: try LocalBroker.freePort())
        started.withLock { $0 = server }
        atexit { TestPostgres.started.withLock { $0?.signalStop() } }
        return (server, server.url)
    }
    static let started = Mutex<LocalPostgres?>(nil)

    /// Whether a server can be had (Debian's `postgresql` installed, or `POSTGRES_TEST_URL`).
    public static var available: Bool { ProcessInfo.processInfo.environment["POSTGRES_TEST_URL"] != nil || LocalPostgres.binaries != nil }

    public static func url() throws -> String { try shared.get().1 }

    /// The shared server, to run SQL through `psql`.
    public static func server() throws -> LocalPostgres {
        guard let s = try shared.get().0 else { throw LocalPostgres.Failure(description: "POSTGRES_TEST_URL is set: no local server to run psql against") }
        return s
    }
}
