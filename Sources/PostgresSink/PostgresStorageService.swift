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
///   transaction** per connection (``Options/connections`` of them take the partitions modulo their
///   count and commit concurrently; a partition's batches commit in order), which first locks each
///   partition (also one never stored before) and its stored offset and checks it is where this
///   member believes: a member that lost a partition to another (a rebalance it has not seen yet)
///   writes nothing for it, and a transaction still committing is waited for and then seen. So
///   whatever crashes, restarts or rebalances, every record is stored once.
/// - On every assignment the member reads the offsets stored in the database and starts there
///   (Kafka's committed offsets are only used for partitions the database has never seen, and are
///   kept equal to the database's for tools that read them).
/// - Windows (`aggregated-metrics`) are upserted by (topic, symbol, window start); trades and alerts
///   are inserted with primary key (topic, partition, offset), so a record written twice would be an
///   error, never a silent duplicate.
/// - Database unreachable or restarting mid-run: the batch is held (nothing more is consumed), the
///   sink says so in one log line and retries with backoff (0.2 s doubling to 10 s), then says when
///   it is back. A connection that closes while a statement waits fails that statement at once; a
///   statement without an answer for 10 s counts as the database being away (its connection is
///   closed). Either way only that lane's connection is closed. A transaction whose commit was lost
///   in flight is recognised by the stored offsets.
/// - Dead-lettered records are delivered to the dead-letter queue before any transaction moves the
///   stored offsets past them.
public final class PostgresStorageService: Service, Sendable {
    public struct Options: Sendable {
        public var target: PostgresTarget
        public var records: StoredRecords
        public var minimumBackoff: Duration = .milliseconds(200)
        public var maximumBackoff: Duration = .seconds(10)
        /// Connections writing concurrently, each a transaction over its share of the batch's partitions.
        public var connections: Int = 3
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

    /// Records per transaction the consumer should hand over (``ConsumerService/Options/batchSize``):
    /// each transaction costs round trips and a commit, so bigger batches store more rows per second.
    public static let batchSize = 10_000

    public let service: ConsumerService
    public let options: Options
    private let topic: String
    private let group: String
    private let state = Mutex(State())
    /// One connection per lane.
    private let connections = Mutex<[Int: PostgresConnection]>([:])
    /// The attempt using each open connection, failed at once when that connection closes.
    private let users = Mutex<[ObjectIdentifier: Attempt]>([:])
    /// Each lane's batch being written.
    private let inFlight = Mutex<[Int: Task<Void, any Error>]>([:])
    /// When the database stopped answering (nil while it answers), and when it last came back.
    private let outage = Mutex<(since: ContinuousClock.Instant?, recovered: ContinuousClock.Instant?)>((nil, nil))
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
        do { c = try await open() } catch {
            throw PostgresSinkError.from(error, doing: "connect to PostgreSQL", at: options.target)
        }
        do { try await PostgresSchema.migrate(c, logger: logger) } catch {
            try? await c.close()
            throw PostgresSinkError.from(error, doing: "create or migrate the marketstream tables", at: options.target)
        }
        connections.withLock { $0[0] = c }
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
        defer { closeConnections() }
        switch options.records {
        case .trades:
            try await service.run(decode: { m in
                m.withUnsafeValue { bytes in
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
        let read = blocking { [self] in try await withRetry("read the stored offsets") { try await self.storedOffsets(mine) } }
        guard case .success(let stored)? = read else {
            if case .failure(let e)? = read { logger.error("\(e); the partitions just assigned are not written by this member") }
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
        // Batches of revoked partitions commit before the partitions go (their errors surface on the next batch).
        let tasks = inFlight.withLock { Array($0.values) }
        if !tasks.isEmpty, blocking(timeout: .seconds(30), { for t in tasks { _ = try? await t.value } }) == nil {
            logger.warning("the batches being written were not committed within 30 s of the revocation; the database's offsets decide what the next owner writes")
        }
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
        let c = try await open()
        defer {
            users.withLock { $0[ObjectIdentifier(c)] = nil }
            Task { try? await c.close() }
        }
        var result: [Int32: Int64] = [:]
        let rows = try await c.query("SELECT partition, next_offset FROM marketstream.consumer_offsets WHERE consumer_group = \(group) AND topic = \(topic) AND partition = ANY(\(partitions)::integer[])", logger: logger)
        for try await (p, next) in rows.decode((Int32, Int64).self) { result[p] = next }
        return result
    }

    // MARK: - Writing

    typealias Insert<R> = @Sendable (PostgresConnection, String, [(record: R, message: KafkaMessage)], Logger) async throws -> Void

    /// What one transaction found per partition.
    struct Outcome: Sendable {
        /// Rows and offsets written by this transaction.
        var written: [Int32] = []
        /// Already stored up to the batch end (a commit whose answer was lost).
        var done: [Int32] = []
        /// Stored offsets another member moved: partition → where the database says it continues.
        var fenced: [Int32: Int64] = [:]
    }

    /// Hands a batch to its lanes and returns once each lane has taken it.
    ///
    /// Partitions are spread over ``Options/connections`` lanes (partition modulo lanes). Each lane
    /// writes its share of a batch in one transaction on its own connection, in the background, while
    /// the consumer decodes the next batch; a lane takes a new batch only when its previous one is
    /// committed, so at most one batch per lane is in flight and a partition's batches commit in order.
    /// ``drain()`` waits for all of them (before every checkpoint, on revocation and at the end).
    private func store<R: Sendable>(_ batch: [(record: R, message: KafkaMessage)], insert: @escaping Insert<R>) async throws {
        guard !batch.isEmpty else { return }
        try flushDeadLetters()
        for (lane, rows) in Dictionary(grouping: batch, by: { lane(of: $0.message.partition) }).sorted(by: { $0.key < $1.key }) {
            let previous = inFlight.withLock { $0[lane] }
            try await previous?.value
            let task = Task { [self] in try await storeLane(lane, rows, insert: insert) }
            inFlight.withLock { $0[lane] = task }
        }
    }

    /// Waits until every lane's batch is committed; rethrows what failed one.
    private func drain() async throws {
        let tasks = inFlight.withLock { f in defer { f.removeAll() }; return f }
        var failure: (any Error)?
        for (_, t) in tasks.sorted(by: { $0.key < $1.key }) {
            do { try await t.value } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    /// Writes one lane's rows of owned, unfenced partitions and moves their stored offsets, in one
    /// transaction; retries while the database is unreachable.
    private func storeLane<R: Sendable>(_ lane: Int, _ batch: [(record: R, message: KafkaMessage)], insert: @escaping Insert<R>) async throws {
        let rows = state.withLock { s in
            batch.filter { item in
                let p = item.message.partition
                guard s.owned.contains(p), !s.fenced.contains(p) else { return false }
                guard let expected = s.expected[p] ?? nil else { return true }
                return item.message.offset >= expected
            }
        }
        guard !rows.isEmpty else { return }
        var ends: [Int32: Int64] = [:]
        for r in rows { ends[r.message.partition] = max(ends[r.message.partition] ?? 0, r.message.offset + 1) }
        let skips = state.withLock { $0.skipTo }
        for (p, n) in ends { if let skip = skips[p], skip > n { ends[p] = skip } }
        let next = ends
        let expected = state.withLock { s in Dictionary(uniqueKeysWithValues: next.keys.map { ($0, s.expected[$0] ?? nil) }) }
        let (topic, group, logger) = (topic, group, logger)
        let outcome = try await withRetry("store \(rows.count) rows") { [self] in
            try await liveConnection(lane).withTransaction(logger: logger) { tx in
                let partitions = next.keys.sorted()
                let stored = try await Self.lockOffsets(tx, group: group, topic: topic, partitions, logger: logger)
                var o = Outcome()
                for p in partitions {
                    if stored[p] == expected[p] ?? nil { o.written.append(p) }
                    else if stored[p] == next[p] { o.done.append(p) }
                    else { o.fenced[p] = stored[p] ?? -1 }
                }
                let keep = Set(o.written)
                let selected = rows.filter { keep.contains($0.message.partition) }
                if !selected.isEmpty { try await insert(tx, topic, selected, logger) }
                try await Self.moveOffsets(tx, group: group, topic: topic, o.written.map { ($0, next[$0]!) }, logger: logger)
                return o
            }
        }
        let stored = Set(outcome.written + outcome.done)
        rowsStored.add(rows.count { stored.contains($0.message.partition) }, ordering: .relaxed)
        state.withLock { s in
            for p in stored where s.owned.contains(p) {
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
        try await drain()
        let skips = state.withLock { s in s.skipTo.filter { s.owned.contains($0.key) && !s.fenced.contains($0.key) } }
        guard !skips.isEmpty else { return }
        try flushDeadLetters()
        let expected = state.withLock { s in Dictionary(uniqueKeysWithValues: skips.keys.map { ($0, s.expected[$0] ?? nil) }) }
        let (topic, group, logger) = (topic, group, logger)
        let moved = try await withRetry("store the offsets past dead letters") { [self] in
            try await liveConnection(0).withTransaction(logger: logger) { tx -> [Int32] in
                let stored = try await Self.lockOffsets(tx, group: group, topic: topic, skips.keys.sorted(), logger: logger)
                let movable = skips.keys.sorted().filter { stored[$0] == expected[$0] ?? nil }
                try await Self.moveOffsets(tx, group: group, topic: topic, movable.map { ($0, skips[$0]!) }, logger: logger)
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

    /// The stored next offsets of `partitions` (ascending), locked until the transaction ends.
    ///
    /// Each (group, topic, partition) is first locked as a whole with a transaction-level advisory
    /// lock, then its offset row with `FOR UPDATE`: a partition with no row yet has nothing to lock
    /// row-wise, so without the first lock a transaction writing its first batch would not see an
    /// earlier one still committing (a commit the sink gave up waiting for) and would insert the same
    /// rows again. The reading waits until such a transaction has ended, then sees what it stored.
    /// Locks are taken in ascending partition order, so writers never deadlock.
    private static func lockOffsets(_ tx: PostgresConnection, group: String, topic: String, _ partitions: [Int32], logger: Logger) async throws -> [Int32: Int64] {
        try await tx.query("SELECT pg_advisory_xact_lock(hashtext(\(group) || chr(31) || \(topic)), p) FROM unnest(\(partitions)::integer[]) WITH ORDINALITY AS u(p, i) ORDER BY i", logger: logger)
        var stored: [Int32: Int64] = [:]
        let locked = try await tx.query("SELECT partition, next_offset FROM marketstream.consumer_offsets WHERE consumer_group = \(group) AND topic = \(topic) AND partition = ANY(\(partitions)::integer[]) FOR UPDATE", logger: logger)
        for try await (p, n) in locked.decode((Int32, Int64).self) { stored[p] = n }
        return stored
    }

    /// Sets the stored next offset of each partition.
    private static func moveOffsets(_ tx: PostgresConnection, group: String, topic: String, _ offsets: [(partition: Int32, next: Int64)], logger: Logger) async throws {
        guard !offsets.isEmpty else { return }
        try await tx.query("""
            INSERT INTO marketstream.consumer_offsets (consumer_group, topic, partition, next_offset) \
            SELECT \(group), \(topic), p, n FROM unnest(\(offsets.map(\.partition))::integer[], \(offsets.map(\.next))::bigint[]) AS u(p, n) \
            ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
            """, logger: logger)
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
            SELECT \(topic), p, o, s, pr, v, t, CASE WHEN c = chr(30) THEN NULL WHEN c = '' THEN '{}'::text[] ELSE string_to_array(c, chr(31)) END \
            FROM unnest(\(rows.map { $0.message.partition })::integer[], \(rows.map { $0.message.offset })::bigint[], \(rows.map { $0.record.symbol })::text[], \
            \(rows.map { $0.record.price })::float8[], \(rows.map { $0.record.volume })::float8[], \(rows.map { Millis($0.record.timestamp) })::timestamptz[], \(conditions)::text[]) \
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

    private func lane(of partition: Int32) -> Int { Int(partition) % max(1, options.connections) }

    private func liveConnection(_ lane: Int) async throws -> PostgresConnection {
        if let c = connections.withLock({ $0[lane] }), use(c) { return c }
        let c = try await open()
        connections.withLock { $0[lane] = c }
        return c
    }

    /// A new connection, used by the current attempt. When a connection closes, whichever side
    /// closed it, the attempt using it fails at once: PostgresNIO never answers a query that was in
    /// flight on a connection that closed, so without this the attempt would wait for its deadline.
    private func open() async throws -> PostgresConnection {
        let c = try await Self.connect(options.target, logger: logger)
        let id = ObjectIdentifier(c)
        c.closeFuture.whenComplete { [weak self] _ in
            let attempt = self?.users.withLock { $0.removeValue(forKey: id) }
            attempt?.fail(.connectionClosed)
        }
        guard use(c) else {
            Task { try? await c.close() }
            throw AttemptFailure.connectionClosed
        }
        return c
    }

    /// Marks `c` as used by the current attempt (if any), which is closed if the attempt fails;
    /// false when `c` is closed (checked after marking, so a close is never missed) or the attempt
    /// has ended (an operation left behind never gets a connection to go on with).
    private func use(_ c: PostgresConnection) -> Bool {
        guard let attempt = Attempt.current else { return !c.isClosed }
        guard attempt.connections.withLock({ u in
            guard !u.ended else { return false }
            u.list.append(c)
            return true
        }) else { return false }
        users.withLock { $0[ObjectIdentifier(c)] = attempt }
        guard c.isClosed else { return true }
        release([c], from: attempt)
        return false
    }

    /// `connections` are no longer used by `attempt` (those another attempt took stay its).
    private func release(_ connections: [PostgresConnection], from attempt: Attempt) {
        users.withLock { u in for c in connections where u[ObjectIdentifier(c)] === attempt { u[ObjectIdentifier(c)] = nil } }
    }

    /// Ends `attempt`: its connections are no longer its; when it failed they are closed and
    /// replaced on next use, since a failed attempt may have left them in any state.
    private func end(_ attempt: Attempt, failed: Bool) {
        let used = attempt.connections.withLock { c in
            defer { c = (ended: true, list: []) }
            return c.list
        }
        release(used, from: attempt)
        guard failed else { return }
        connections.withLock { lanes in for (lane, c) in lanes where used.contains(where: { $0 === c }) { lanes[lane] = nil } }
        for c in used { Task { try? await c.close() } }
    }

    private func closeConnections() {
        let all = connections.withLock { c in defer { c.removeAll() }; return Array(c.values) }
        for c in all { Task { try? await c.close() } }
    }

    /// Runs `operation` until it succeeds; while the database is unreachable it logs once, backs off and
    /// retries. Errors that retrying cannot fix (permissions, bad SQL, a record stored twice) are thrown.
    private func withRetry<T: Sendable>(_ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        var delay = options.minimumBackoff
        while true {
            let attempt = ContinuousClock.now
            do {
                let result = try await withDeadline(.seconds(10), operation)
                let back = outage.withLock { o -> ContinuousClock.Instant? in
                    guard let since = o.since else { return nil }
                    o = (nil, .now)
                    return since
                }
                if let back {
                    logger.notice("PostgreSQL at \(options.target) is back after \(String(format: "%.1f", (ContinuousClock.now - back).inSeconds)) s; consuming again")
                }
                return result
            } catch {
                let e = PostgresSinkError.from(error, doing: what, at: options.target)
                guard e.retriable else { throw e }
                // One line per outage, whichever lane notices first; an attempt begun before the
                // database came back belongs to the outage already reported.
                let first = outage.withLock { o -> Bool in
                    guard o.since == nil, o.recovered.map({ attempt > $0 }) ?? true else { return false }
                    o.since = attempt
                    return true
                }
                if first {
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

    /// `operation` as one attempt: its result, or a retriable error once `limit` passed or once a
    /// connection it uses closes. A failed attempt's connections are closed and its operation left
    /// behind, so a query waiting on a server that went away never holds the consumer; other
    /// lanes' connections are untouched.
    private func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = Race<T>()
        let attempt = Attempt { race.finish(with: .failure($0)) }
        let work = Attempt.$current.withValue(attempt) {
            Task { _ = race.finish(with: await Result(catching: { try await operation() })) }
        }
        attempt.started(work)
        let timer = Task {
            try await Task.sleep(for: limit)
            attempt.fail(.noAnswer(within: limit))
        }
        defer { timer.cancel() }
        do {
            let value = try await race.value()
            end(attempt, failed: false)
            return value
        } catch {
            end(attempt, failed: true)
            throw error
        }
    }

    /// Runs `work` on a task and waits for its result on this thread (librdkafka's, inside a rebalance
    /// callback), at most `timeout` when given; nil when that passed first.
    private func blocking<T: Sendable>(timeout: Duration? = nil, _ work: @escaping @Sendable () async throws -> T) -> Result<T, any Error>? {
        let box = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let r: Result<T, any Error>
            do { r = .success(try await work()) } catch { r = .failure(error) }
            box.withLock { $0 = r }
            done.signal()
        }
        if let timeout {
            guard done.wait(timeout: .now() + timeout.inSeconds) == .success else { return nil }
        } else {
            done.wait()
        }
        return box.withLock { $0 }
    }
}

/// Milliseconds since 1970 as a `timestamptz`, exactly (PostgreSQL counts microseconds since 2000).
struct Millis: PostgresNonThrowingEncodable, PostgresArrayEncodable {
    var value: Int64
    init(_ value: Int64) { self.value = value }
    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlArrayType: PostgresDataType { .timestamptzArray }
    static var psqlFormat: PostgresFormat { .binary }
    func encode<E: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
        buffer.writeInteger((value - 946_684_800_000) &* 1000)
    }
}

/// One try of an operation against the database (``PostgresStorageService/withDeadline(_:_:)``):
/// how it fails, its task, and the connections it used.
private final class Attempt: Sendable {
    @TaskLocal static var current: Attempt?
    /// Whether the failure was the attempt's outcome (nothing else had ended it).
    private let failing: @Sendable (any Error) -> Bool
    private let work = Mutex<Task<Void, Never>?>(nil)
    /// The connections it used; no more are taken once it has ended.
    let connections = Mutex<(ended: Bool, list: [PostgresConnection])>((false, []))

    init(failing: @escaping @Sendable (any Error) -> Bool) { self.failing = failing }

    func started(_ task: Task<Void, Never>) { work.withLock { $0 = task } }

    /// Ends the attempt with `error` unless it has ended; its operation is cancelled.
    func fail(_ error: AttemptFailure) {
        if failing(error) { work.withLock { $0 }?.cancel() }
    }
}

/// Why an attempt ended without an answer from the server (both retriable).
enum AttemptFailure: Error, CustomStringConvertible {
    case connectionClosed
    case noAnswer(within: Duration)

    var description: String {
        switch self {
        case .connectionClosed: "the connection closed while an answer was awaited"
        case .noAnswer(let limit): "no answer within \(limit)"
        }
    }
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
