import PostgresNIO
import Logging

/// The tables the sink writes, in schema `marketstream`, created and migrated by the sink itself.
/// `marketstream.schema_version` holds one row per applied migration; a database migrated by a newer
/// version than this binary knows is refused.
///
/// Version 1:
/// - `trades(topic, partition, "offset", symbol, price, volume, traded_at, conditions)`, primary key
///   (topic, partition, offset), index (symbol, traded_at);
/// - `windows(topic, symbol, window_start, window_end, trade_count, volume, vwap, average, min, max,
///   first, last, change_pct, partition, "offset")`, primary key (topic, symbol, window_start): a window
///   written again replaces the row;
/// - `alerts(topic, partition, "offset", symbol, rule, level, price, alerted_at, window_start,
///   window_end, change_pct, message)`, primary key (topic, partition, offset);
/// - `consumer_offsets(consumer_group, topic, partition, next_offset, updated_at)`: where each group
///   continues, written in the same transaction as the rows.
public enum PostgresSchema {
    public static let version = 1

    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            #"CREATE TABLE marketstream.trades (topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL, symbol text NOT NULL, price double precision NOT NULL, volume double precision NOT NULL, traded_at timestamptz NOT NULL, conditions text[], PRIMARY KEY (topic, partition, "offset"))"#,
            "CREATE INDEX trades_symbol_time ON marketstream.trades (symbol, traded_at)",
            #"CREATE TABLE marketstream.windows (topic text NOT NULL, symbol text NOT NULL, window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, trade_count integer NOT NULL, volume double precision NOT NULL, vwap double precision, average double precision NOT NULL, min double precision NOT NULL, max double precision NOT NULL, first double precision NOT NULL, last double precision NOT NULL, change_pct double precision, partition integer NOT NULL, "offset" bigint NOT NULL, PRIMARY KEY (topic, symbol, window_start))"#,
            #"CREATE TABLE marketstream.alerts (topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL, symbol text NOT NULL, rule text NOT NULL, level double precision NOT NULL, price double precision NOT NULL, alerted_at timestamptz NOT NULL, window_start timestamptz, window_end timestamptz, change_pct double precision, message text NOT NULL, PRIMARY KEY (topic, partition, "offset"))"#,
            "CREATE INDEX alerts_time ON marketstream.alerts (alerted_at)",
            "CREATE TABLE marketstream.consumer_offsets (consumer_group text NOT NULL, topic text NOT NULL, partition integer NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer_group, topic, partition))",
        ]),
    ]

    /// Creates the schema or applies the missing migrations, each in its own transaction, under an
    /// advisory lock so that several instances starting at once migrate once.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_lock(7426110)", logger: logger)
        do {
            try await connection.query("CREATE SCHEMA IF NOT EXISTS marketstream", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS marketstream.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", logger: logger)
            var current = 0
            for try await v in try await connection.query("SELECT coalesce(max(version), 0) FROM marketstream.schema_version", logger: logger).decode(Int.self) { current = v }
            guard current <= version else {
                throw PostgresSinkError("the database's marketstream schema is version \(current), newer than this binary's \(version): upgrade marketstream")
            }
            for migration in migrations where migration.version > current {
                try await connection.withTransaction(logger: logger) { tx in
                    for statement in migration.statements { try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await tx.query("INSERT INTO marketstream.schema_version (version) VALUES (\(migration.version))", logger: logger)
                }
                logger.notice("PostgreSQL: marketstream schema migrated to version \(migration.version)")
            }
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(7426110)", logger: logger)
            throw error
        }
        try await connection.query("SELECT pg_advisory_unlock(7426110)", logger: logger)
    }
}
