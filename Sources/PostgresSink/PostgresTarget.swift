import PostgresNIO
import NIOSSL
import Foundation

/// A problem with the PostgreSQL sink, in one line that never contains a password.
public struct PostgresSinkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// Worth retrying (the server is down or restarting, the connection dropped), as opposed to
    /// a wrong URL, password or permission.
    public var retriable: Bool
    public init(_ description: String, retriable: Bool = false) { self.description = description; self.retriable = retriable }

    /// `error` from postgres-nio as one line: the server's message and SQLSTATE, or what failed on the wire.
    static func from(_ error: any Error, doing what: String, at target: PostgresTarget) -> PostgresSinkError {
        if let e = error as? PostgresSinkError { return e }
        if let tx = error as? PostgresTransactionError, let inner = tx.beginError ?? tx.closureError ?? tx.commitError ?? tx.rollbackError {
            return from(inner, doing: what, at: target)
        }
        guard let psql = error as? PSQLError else { return PostgresSinkError("\(what) at \(target): \(error)", retriable: true) }
        if let info = psql.serverInfo {
            let state = info[.sqlState] ?? ""
            let message = info[.message] ?? "server error"
            // Class 08 (connection), 53 (resources), 57P (shutdown, cannot connect now), 40001/40P01 (serialization, deadlock) are transient.
            let transient = state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57P") || state == "40001" || state == "40P01"
            return PostgresSinkError("\(what) at \(target): \(message) (SQLSTATE \(state))", retriable: transient)
        }
        let underlying = psql.underlying.map { " (\(String(describing: $0).split(separator: "\n").first ?? ""))" } ?? ""
        let retriable = [PSQLError.Code.connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection].contains(psql.code)
        return PostgresSinkError("\(what) at \(target): \(psql.code)\(underlying)", retriable: retriable)
    }
}

/// Where the sink writes: `postgres://user:password@host:port/database?sslmode=disable|prefer|require`
/// (`postgresql://` too). A password missing from the URL is taken from `PGPASSWORD`. The
/// description (used in every log line and error) leaves the password out.
public struct PostgresTarget: Sendable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require }
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(PostgresSinkError) {
        guard let c = URLComponents(string: url), let scheme = c.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw PostgresSinkError("invalid PostgreSQL URL \(Self.redacted(url)): use postgres://user:password@host:5432/database")
        }
        guard let host = c.host, !host.isEmpty else { throw PostgresSinkError("invalid PostgreSQL URL \(Self.redacted(url)): no host") }
        guard let user = c.user, !user.isEmpty else { throw PostgresSinkError("invalid PostgreSQL URL \(Self.redacted(url)): no user name") }
        let database = String(c.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw PostgresSinkError("invalid PostgreSQL URL \(Self.redacted(url)): no database name (…/database)") }
        self.host = host
        port = c.port ?? 5432
        username = user.removingPercentEncoding ?? user
        password = (c.password?.removingPercentEncoding ?? c.password) ?? environment["PGPASSWORD"]
        self.database = database.removingPercentEncoding ?? database
        let mode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard let tls = TLSMode(rawValue: mode) else {
            throw PostgresSinkError("invalid PostgreSQL URL \(Self.redacted(url)): sslmode \(mode) (use disable, prefer or require)")
        }
        self.tls = tls
    }

    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    /// `url` with any password replaced by `***`.
    public static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? "(unreadable URL)"
    }

    func configuration() throws -> PostgresConnection.Configuration {
        let tlsConfig: PostgresConnection.Configuration.TLS
        switch tls {
        case .disable: tlsConfig = .disable
        case .prefer: tlsConfig = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tlsConfig = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var config = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tlsConfig)
        config.options.connectTimeout = .seconds(5)
        return config
    }
}
