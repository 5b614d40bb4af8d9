import Pipeline
import Kafka
import Aggregation
import MarketData
import PostgresNIO
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What a topic's records are, and so which table they go to.
public enum StoredRecords: String, Sendable, CaseIterable {
    case trades, windows, alerts

    /// `aggregated-metrics` holds windows, `price-alerts` alerts, anything else trades.
    public static func of(topic: String) -> StoredRecords {
        switch topic {
        case Topics.aggregatedMetrics: .windows
        case Topics.priceAlerts: .alerts
        default: .trades
        }
    }
}

/// The storage consumer writing into PostgreSQL with exactly-once effect.
///
/// - Each batch's rows and the group's next offset of every partition in it are written in **one
///   transaction**, which first locks the stored offsets and checks they are where this member
///   believes: a member that lost a partition to another (a rebalance it has not seen yet) writes
///   nothing for it. So whatever crashes, restarts or rebalances, every record is stored once.
/// - On every assignment the member reads the offsets stored in the database and starts there
///   (Kafka's committed offsets are only used for partitions the database has never seen, and are
///   kept equal to the database's for tools that read them).
/// - Windows (`aggregated-metrics`) are upserted by (topic, symbol, window start); trades and alerts
///   are inserted with primary key (topic, partition, offset), so a record written twice would be an
///   error, never a silent duplicate.
/// - Database unreachable or restarting mid-run: the batch is held (nothing more is consumed), the
///   sink says so in one log line and retries with backoff (0.2 s doubling to 10 s), then says when
///   it is back. A statement without an answer for 10 s counts as the database being away (its
///   connection is closed). A transaction whose commit was lost in flight is recognised by the
///   stored offsets.
/// - Dead-lettered records are delivered to the dead-letter queue before any transaction moves the
///   stored offsets past them.
public final class PostgresStorageService: Service, Sendable {
    public struct Options: Sendable {
        public var target: PostgresTarget
        public var records: StoredRecords
        public var minimumBackoff: Duration = .milliseconds(200)
        public var maximumBackoff: Duration = .seconds(10)
        public init(target: PostgresTarget, records: StoredRecords) { self.target = target; self.records = records }
    }

    struct State {
        var owned: Set<Int32> = []
        /// The stored next offset this member believes per owned partition (nil: none stored yet).
        var expected: [Int32: Int64?] = [:]
        /// Partitions another member wrote: ignored until they are assigned again.
        var fenced: Set<Int32> = []
        /// Next offsets past dead-lettered records that follow everything stored.
        var skipTo: [Int32: Int64] = [:]
        var deadLettersFlushed = 0
    }

    public let service: ConsumerService
    public let options: Options
    private let topic: String
    private let group: String
    private let state = Mutex(State())
    private let connection = Mutex<PostgresConnection?>(nil)
    private let logger: Logger
    private let rowsStored = Atomic<Int>(0)

    /// Connects and migrates the schema; a bad URL, password or permission fails here in one line.
    public init(service: ConsumerService, options: Options) async throws(PostgresSinkError) {
        self.service = service
        self.options = options
        topic = service.options.topic
        group = service.options.groupID
        logger = service.logger
        let c: PostgresConnection
        do { c = try await Self.connect(options.target, logger: logger) } catch {
            throw PostgresSinkError.from(error, doing: "connect to PostgreSQL", at: options.target)
        }
        do { try await PostgresSchema.migrate(c, logger: logger) } catch {
            try? await c.close()
            throw PostgresSinkError.from(error, doing: "create or migrate the marketstream tables", at: options.target)
        }
        connection.withLock { $0 = c }
        logger.info("storing \(topic) (\(options.records.rawValue)) into \(options.target), schema marketstream v\(PostgresSchema.version)")
    }

    /// Rows written so far by this instance.
    public var stored: Int { rowsStored.load(ordering: .relaxed) }

    public func run() async throws {
        let rebalance = RebalanceHandler(assigned: { [self] in assigned($0) }, revoked: { [self] in revoked($0) })
        let before: @Sendable (Bool) async throws -> [TopicPartitionOffset]? = { [self] _ in try await passDeadLetteredTails(); return nil }
        let skipped: @Sendable ([KafkaMessage]) throws -> Void = { [self] rejected in
            state.withLock { s in
                for m in rejected where s.owned.contains(m.partition) { s.skipTo[m.partition] = max(s.skipTo[m.partition] ?? 0, m.offset + 1) }
            }
        }
        defer { closeConnection() }
        switch options.records {
        case .trades:
            try await service.run(decode: { m in
                m.value.withUnsafeBytes { bytes in
                    Result { () throws(TradeMessageError) in try TradeMessage.decode(bytes) }.mapError { ConsumerService.DecodeFailure(reason: $0.reason) }
                }
            }, records: { [self] batch in try await store(batch, insert: Self.insertTrades) },
            beforeCheckpoint: before, rebalance: rebalance, deadLettered: skipped)
        case .windows:
            try await service.run(decode: { m in
                WindowMetrics(json: m.value).map { .success($0) } ?? .failure(.init(reason: "not an aggregated-metrics window"))
            }, records: { [self] batch in try await store(batch, insert: Self.upsertWindows) },
            beforeCheckpoint: before, rebalance: rebalance, deadLettered: skipped)
        case .alerts:
            try await service.run(decode: { m in
                Alert(json: m.value).map { .success($0) } ?? .failure(.init(reason: "not a price alert"))
            }, records: { [self] batch in try await store(batch, insert: Self.insertAlerts) },
            beforeCheckpoint: before, rebalance: rebalance, deadLettered: skipped)
        }
    }

    // MARK: - Assignment

    private func assigned(_ partitions: [TopicPartition]) -> [TopicPartitionOffset] {
        let mine = partitions.filter { $0.topic == topic }.map(\.partition)
        guard !mine.isEmpty else { return [] }
        guard let stored = blocking({ [self] in try await withRetry("read the stored offsets") { try await self.storedOffsets(mine) } }) else {
            state.withLock { s in for p in mine { s.owned.insert(p); s.fenced.insert(p) } }
            return []
        }
        state.withLock { s in
            for p in mine {
                s.owned.insert(p)
                s.fenced.remove(p)
                s.skipTo[p] = nil
                s.expected[p] = .some(stored[p])
            }
        }
        logger.info("resuming \(mine.sorted().map { "\(topic)[\($0)] at \(stored[$0].map(String.init) ?? "the group's committed offset")" }.joined(separator: ", ")) (offsets stored in PostgreSQL)")
        return mine.compactMap { p in stored[p].map { TopicPartitionOffset(topic: topic, partition: p, offset: $0) } }
    }

    private func revoked(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions where tp.topic == topic {
                s.owned.remove(tp.partition)
                s.expected[tp.partition] = nil
                s.fenced.remove(tp.partition)
                s.skipTo[tp.partition] = nil
            }
        }
    }

    /// The stored next offsets of `partitions`, on a connection of its own (the batch connection may be in a transaction).
    private func storedOffsets(_ partitions: [Int32]) async throws -> [Int32: Int64] {
        let c = try await Self.connect(options.target, logger: logger)
        defer { Task { try? await c.close() } }
        var result: [Int32: Int64] = [:]
        let rows = try await c.query("SELECT partition, next_offset FROM marketstream.consumer_offsets WHERE consumer_group = \(group) AND topic = \(topic) AND partition = ANY(\(partitions)::integer[])", logger: logger)
        for try await (p, next) in rows.decode((Int32, Int64).self) { result[p] = next }
        return result
    }

    // MARK: - Writing

    typealias Insert<R> = @Sendable (PostgresConnection, String, [(record: R, message: KafkaMessage)], Logger) async throws -> Void

    /// Writes the rows of owned, unfenced partitions and moves their stored offsets, in one transaction; retries while the database is unreachable.
    private func store<R: Sendable>(_ batch: [(record: R, message: KafkaMessage)], insert: @escaping Insert<R>) async throws {
        let rows = state.withLock { s in
            batch.filter { item in
                let p = item.message.partition
                guard s.owned.contains(p), !s.fenced.contains(p) else { return false }
                guard let expected = s.expected[p] ?? nil else { return true }
                return item.message.offset >= expected
            }
        }
        guard !rows.isEmpty else { return }
        try flushDeadLetters()
        var ends: [Int32: Int64] = [:]
        for r in rows { ends[r.message.partition] = max(ends[r.message.partition] ?? 0, r.message.offset + 1) }
        let skips = state.withLock { $0.skipTo }
        for (p, n) in ends { if let skip = skips[p], skip > n { ends[p] = skip } }
        let next = ends
        let expected = state.withLock { s in Dictionary(uniqueKeysWithValues: next.keys.map { ($0, s.expected[$0] ?? nil) }) }
        let (topic, group) = (topic, group)
        let outcome = try await withRetry("store \(rows.count) rows") { [self] in
            let c = try await liveConnection()
            return try await c.withTransaction(logger: logger) { tx -> (written: [Int32], done: [Int32], fenced: [Int32: Int64]) in
                var stored: [Int32: Int64] = [:]
                let partitions = next.keys.sorted()
                let locked = try await tx.query("SELECT partition, next_offset FROM marketstream.consumer_offsets WHERE consumer_group = \(group) AND topic = \(topic) AND partition = ANY(\(partitions)::integer[]) FOR UPDATE", logger: logger)
                for try await (p, n) in locked.decode((Int32, Int64).self) { stored[p] = n }
                var written: [Int32] = [], done: [Int32] = [], fenced: [Int32: Int64] = [:]
                for p in partitions {
                    if stored[p] == expected[p] ?? nil { written.append(p) }
                    else if stored[p] == next[p] { done.append(p) }
                    else { fenced[p] = stored[p] ?? -1 }
                }
                let keep = Set(written)
                let selected = rows.filter { keep.contains($0.message.partition) }
                if !selected.isEmpty { try await insert(tx, topic, selected, logger) }
                if !written.isEmpty {
                    try await tx.query("""
                        INSERT INTO marketstream.consumer_offsets (consumer_group, topic, partition, next_offset) \
                        SELECT \(group), \(topic), p, n FROM unnest(\(written)::integer[], \(written.map { next[$0]! })::bigint[]) AS u(p, n) \
                        ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
                        """, logger: logger)
                }
                return (written, done, fenced)
            }
        }
        let count = rows.filter { Set(outcome.written).contains($0.message.partition) }.count
        rowsStored.add(count, ordering: .relaxed)
        state.withLock { s in
            for p in outcome.written + outcome.done where s.owned.contains(p) {
                s.expected[p] = .some(next[p]!)
                if let skip = s.skipTo[p], skip <= next[p]! { s.skipTo[p] = nil }
            }
            for p in outcome.fenced.keys { s.fenced.insert(p) }
        }
        for (p, n) in outcome.fenced.sorted(by: { $0.key < $1.key }) {
            logger.warning("\(topic)[\(p)]: the database says group \(group) continues at \(n), not \(expected[p].flatMap { $0 }.map(String.init) ?? "none"); another member owns it now, so this one writes nothing for it until it is assigned again")
        }
    }

    /// Moves the stored offsets past dead-lettered records that follow everything stored (once they are delivered).
    private func passDeadLetteredTails() async throws {
        let skips = state.withLock { s in s.skipTo.filter { s.owned.contains($0.key) && !s.fenced.contains($0.key) } }
        guard !skips.isEmpty else { return }
        try flushDeadLetters()
        let expected = state.withLock { s in Dictionary(uniqueKeysWithValues: skips.keys.map { ($0, s.expected[$0] ?? nil) }) }
        let (topic, group) = (topic, group)
        let moved = try await withRetry("store the offsets past dead letters") { [self] in
            let c = try await liveConnection()
            return try await c.withTransaction(logger: logger) { tx -> [Int32] in
                var stored: [Int32: Int64] = [:]
                let partitions = skips.keys.sorted()
                let locked = try await tx.query("SELECT partition, next_offset FROM marketstream.consumer_offsets WHERE consumer_group = \(group) AND topic = \(topic) AND partition = ANY(\(partitions)::integer[]) FOR UPDATE", logger: logger)
                for try await (p, n) in locked.decode((Int32, Int64).self) { stored[p] = n }
                let movable = partitions.filter { stored[$0] == expected[$0] ?? nil }
                if !movable.isEmpty {
                    try await tx.query("""
                        INSERT INTO marketstream.consumer_offsets (consumer_group, topic, partition, next_offset) \
                        SELECT \(group), \(topic), p, n FROM unnest(\(movable)::integer[], \(movable.map { skips[$0]! })::bigint[]) AS u(p, n) \
                        ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
                        """, logger: logger)
                }
                return movable
            }
        }
        state.withLock { s in
            for p in moved where s.skipTo[p] == skips[p] {
                s.expected[p] = .some(skips[p]!)
                s.skipTo[p] = nil
            }
        }
    }

    private func flushDeadLetters() throws {
        let sent = service.deadLetters.count
        guard sent > state.withLock({ $0.deadLettersFlushed }) else { return }
        try service.producer.flush(timeout: .seconds(60))
        state.withLock { $0.deadLettersFlushed = max($0.deadLettersFlushed, sent) }
    }

    static let insertTrades: Insert<Trade> = { tx, topic, rows, logger in
        let conditions = rows.map { $0.record.conditions.map { $0.joined(separator: "\u{1F}") } ?? "\u{1E}" }
        try await tx.query("""
            INSERT INTO marketstream.trades (topic, partition, "offset", symbol, price, volume, traded_at, conditions) \
            SELECT \(topic), p, o, s, pr, v, to_timestamp(t / 1000.0), CASE WHEN c = chr(30) THEN NULL WHEN c = '' THEN '{}'::text[] ELSE string_to_array(c, chr(31)) END \
            FROM unnest(\(rows.map { $0.message.partition })::integer[], \(rows.map { $0.message.offset })::bigint[], \(rows.map { $0.record.symbol })::text[], \
            \(rows.map { $0.record.price })::float8[], \(rows.map { $0.record.volume })::float8[], \(rows.map { $0.record.timestamp })::bigint[], \(conditions)::text[]) \
            AS u(p, o, s, pr, v, t, c)
            """, logger: logger)
    }

    static let upsertWindows: Insert<WindowMetrics> = { tx, topic, rows, logger in
        // One row per (symbol, window start): the latest in the batch wins, as it would across batches.
        var latest: [String: Int] = [:]
        for (i, r) in rows.enumerated() { latest["\(r.record.symbol)\u{0}\(r.record.windowStart)"] = i }
        let unique = latest.values.sorted().map { rows[$0] }
        let w = unique.map(\.record)
        try await tx.query("""
            INSERT INTO marketstream.windows (topic, symbol, window_start, window_end, trade_count, volume, vwap, average, min, max, first, last, change_pct, partition, "offset") \
            SELECT \(topic), s, to_timestamp(ws / 1000.0), to_timestamp(we / 1000.0), c, v, NULLIF(vw, 'NaN'::float8), a, mn, mx, f, l, NULLIF(ch, 'NaN'::float8), p, o \
            FROM unnest(\(w.map(\.symbol))::text[], \(w.map(\.windowStart))::bigint[], \(w.map(\.windowEnd))::bigint[], \(w.map { Int32(clamping: $0.tradeCount) })::integer[], \
            \(w.map(\.volume))::float8[], \(w.map { $0.vwap ?? .nan })::float8[], \(w.map(\.average))::float8[], \(w.map(\.min))::float8[], \(w.map(\.max))::float8[], \
            \(w.map(\.first))::float8[], \(w.map(\.last))::float8[], \(w.map { $0.changePct ?? .nan })::float8[], \(unique.map { $0.message.partition })::integer[], \
            \(unique.map { $0.message.offset })::bigint[]) AS u(s, ws, we, c, v, vw, a, mn, mx, f, l, ch, p, o) \
            ON CONFLICT (topic, symbol, window_start) DO UPDATE SET window_end = EXCLUDED.window_end, trade_count = EXCLUDED.trade_count, \
            volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, average = EXCLUDED.average, min = EXCLUDED.min, max = EXCLUDED.max, first = EXCLUDED.first, \
            last = EXCLUDED.last, change_pct = EXCLUDED.change_pct, partition = EXCLUDED.partition, "offset" = EXCLUDED."offset"
            """, logger: logger)
    }

    static let insertAlerts: Insert<Alert> = { tx, topic, rows, logger in
        let a = rows.map(\.record)
        try await tx.query("""
            INSERT INTO marketstream.alerts (topic, partition, "offset", symbol, rule, level, price, alerted_at, window_start, window_end, change_pct, message) \
            SELECT \(topic), p, o, s, r, lv, pr, to_timestamp(t / 1000.0), CASE WHEN ws < 0 THEN NULL ELSE to_timestamp(ws / 1000.0) END, \
            CASE WHEN we < 0 THEN NULL ELSE to_timestamp(we / 1000.0) END, NULLIF(ch, 'NaN'::float8), m \
            FROM unnest(\(rows.map { $0.message.partition })::integer[], \(rows.map { $0.message.offset })::bigint[], \(a.map(\.symbol))::text[], \(a.map(\.rule))::text[], \
            \(a.map(\.level))::float8[], \(a.map(\.price))::float8[], \(a.map(\.timestamp))::bigint[], \(a.map { $0.windowStart ?? -1 })::bigint[], \
            \(a.map { $0.windowEnd ?? -1 })::bigint[], \(a.map { $0.changePct ?? .nan })::float8[], \(a.map(\.message))::text[]) \
            AS u(p, o, s, r, lv, pr, t, ws, we, ch, m)
            """, logger: logger)
    }

    // MARK: - Connection

    static func connect(_ target: PostgresTarget, logger: Logger) async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration: try target.configuration(), id: Int.random(in: 0...Int.max), logger: logger)
    }

    private func liveConnection() async throws -> PostgresConnection {
        if let c = connection.withLock({ $0 }), !c.isClosed { return c }
        let c = try await Self.connect(options.target, logger: logger)
        connection.withLock { $0 = c }
        return c
    }

    private func closeConnection() {
        if let c = connection.withLock({ c in defer { c = nil }; return c }) { Task { try? await c.close() } }
    }

    /// Runs `operation` until it succeeds; while the database is unreachable it logs once, backs off and
    /// retries. Errors that retrying cannot fix (permissions, bad SQL, a record stored twice) are thrown.
    private func withRetry<T: Sendable>(_ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        var delay = options.minimumBackoff
        var since: ContinuousClock.Instant?
        while true {
            let attempt = ContinuousClock.now
            do {
                let result = try await withDeadline(.seconds(10), operation)
                if let since {
                    logger.notice("PostgreSQL at \(options.target) is back after \(String(format: "%.1f", (ContinuousClock.now - since).inSeconds)) s; consuming again")
                }
                return result
            } catch {
                let e = PostgresSinkError.from(error, doing: what, at: options.target)
                closeConnection()
                guard e.retriable else { throw e }
                if since == nil {
                    since = attempt
                    logger.warning("\(e); not consuming until it answers (retrying with backoff up to \(options.maximumBackoff))")
                }
                if Task.isCancelled || Task.isShuttingDownGracefully {
                    throw PostgresSinkError("stopped while PostgreSQL at \(options.target) was unreachable; nothing of the held batch was stored, it is read again on the next start")
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, options.maximumBackoff)
            }
        }
    }

    /// `operation`, or a retriable error once `limit` passed: the connection is closed and the
    /// operation left behind, so a query waiting on a server that went away never holds the consumer.
    private func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = Race<T>()
        let target = options.target
        let work = Task { race.finish(with: await Result(catching: { try await operation() })) }
        let timer = Task { [self] in
            try await Task.sleep(for: limit)
            if race.finish(with: .failure(PostgresSinkError("no answer from PostgreSQL at \(target) within \(limit)", retriable: true))) {
                closeConnection()
                work.cancel()
            }
        }
        defer { timer.cancel() }
        return try await race.value()
    }

    /// Runs async work from a librdkafka callback thread and waits for it; nil (logged) when it failed.
    private func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) -> T? {
        let box = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let r: Result<T, any Error>
            do { r = .success(try await work()) } catch { r = .failure(error) }
            box.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        switch box.withLock({ $0 })! {
        case .success(let v): return v
        case .failure(let e):
            logger.error("\(e); the partitions just assigned are not written by this member")
            return nil
        }
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The first of several results, handed to one waiter.
private final class Race<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    private var waiter: CheckedContinuation<T, any Error>?

    /// Whether `r` was the first.
    @discardableResult
    func finish(with r: Result<T, any Error>) -> Bool {
        lock.lock()
        guard result == nil else { lock.unlock(); return false }
        result = r
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume(with: r)
        return true
    }

    func value() async throws -> T {
        try await withCheckedThrowingContinuation { c in
            lock.lock()
            if let result { lock.unlock(); c.resume(with: result) } else { waiter = c; lock.unlock() }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
