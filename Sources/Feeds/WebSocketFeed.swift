import MarketData
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A `Feed` over a Finnhub-compatible WebSocket (`wss://ws.finnhub.io?token=…`, `sim-exchange`,
/// any compatible URL).
///
/// Subscribes to every symbol on each connection, reconnects with `reconnect` backoff after
/// any drop and reports each outage as a `.gap`. HTTP 401 is fatal. The token is never
/// logged or put into events or errors. One feed runs once; ``stop()`` (or cancelling the task
/// in ``run(frames:deliver:)``) ends it. Frames are read off the socket as they arrive and wait
/// (unbounded, or the newest `eventBufferLimit`) until `deliver` takes them.
public final class WebSocketFeed: Feed {
    public static let defaultSymbols = ["AAPL", "GOOGL", "MSFT", "TSLA"]

    let events: AsyncStream<FeedEvent>
    public var source: String { displayURL }
    /// The URL with `token=` redacted.
    public let displayURL: String
    let url: String
    let reconnect: Backoff
    let connectTimeout: Duration
    let tlsConfiguration: TLSConfiguration?
    let sniHostname: String?
    let maxFrameSize: Int
    let logger: Logger
    let continuation: AsyncStream<FeedEvent>.Continuation
    let state: Mutex<State>

    struct State {
        var symbols: [String]
        var writer: WebSocketOutboundWriter?
        var stopped = false
        var task: Task<Void, any Error>?
        var lostAt: Int64?
        var frames = false
        var pending: [String] = []
    }

    /// - Parameters:
    ///   - url: `ws://` or `wss://` endpoint; a missing `/` before `?` is added.
    ///   - token: appended as `token=`; `nil` uses the URL as given.
    ///   - trustRootsPEM: PEM file of trusted roots (e.g. a self-signed test certificate) for `wss://`.
    ///   - serverHostname: TLS SNI / verification name; defaults to the URL host, or `localhost` when that is an IP address.
    ///   - eventBufferLimit: newest events kept when the consumer lags; `nil` is unbounded.
    public init(
        url: String, token: String? = nil, symbols: [String] = WebSocketFeed.defaultSymbols, reconnect: Backoff = Backoff(),
        connectTimeout: Duration = .seconds(10), tlsConfiguration: TLSConfiguration? = nil, trustRootsPEM: String? = nil,
        serverHostname: String? = nil, maxFrameSize: Int = 1 << 24, eventBufferLimit: Int? = nil,
        logger: Logger = Logger(label: "feed.websocket")
    ) {
        let full = Self.normalize(url: url, token: token)
        self.url = full
        self.displayURL = Self.redact(full)
        self.reconnect = reconnect
        self.connectTimeout = connectTimeout
        var tls = tlsConfiguration
        if tls == nil, let trustRootsPEM {
            var c = TLSConfiguration.makeClientConfiguration()
            c.trustRoots = .file(trustRootsPEM)
            tls = c
        }
        self.tlsConfiguration = tls
        let host = URLComponents(string: full)?.host ?? ""
        self.sniHostname = serverHostname ?? (Self.isIPAddress(host) ? "localhost" : nil)
        self.maxFrameSize = maxFrameSize
        self.logger = logger
        (events, continuation) = AsyncStream.makeStream(of: FeedEvent.self, bufferingPolicy: eventBufferLimit.map { .bufferingNewest($0) } ?? .unbounded)
        var unique: [String] = []
        for s in symbols where !unique.contains(s) { unique.append(s) }
        state = Mutex(State(symbols: unique))
    }

    /// `ws://h:p?x` → `ws://h:p/?x`, then `token=` added (replacing any present).
    public static func normalize(url: String, token: String?) -> String {
        var u = url
        if let schemeEnd = u.range(of: "://") {
            let rest = u[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            if authorityEnd == rest.endIndex { u += "/" } else if rest[authorityEnd] == "?" { u.insert("/", at: authorityEnd) }
        }
        guard let token else { return u }
        let encoded = token.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+#"))) ?? token
        if var c = URLComponents(string: u) {
            var items = (c.percentEncodedQueryItems ?? []).filter { $0.name != "token" }
            items.append(URLQueryItem(name: "token", value: encoded))
            c.percentEncodedQueryItems = items
            if let s = c.string { return s }
        }
        return u + (u.contains("?") ? "&" : "?") + "token=" + encoded
    }

    /// Replaces every `token=` value with `***`.
    public static func redact(_ text: String) -> String {
        text.replacingOccurrences(of: #"token=[^&\s"']*"#, with: "token=***", options: .regularExpression)
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || (!host.isEmpty && host.allSatisfy { $0.isNumber || $0 == "." })
    }

    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func run(frames: Bool, deliver: (FeedEvent) throws -> Void) async throws {
        state.withLock { $0.frames = frames }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.connectLoop() }
            do {
                for await event in events { try deliver(event) }
            } catch {
                group.cancelAll()
                throw error
            }
            try await group.waitForAll()
        }
    }

    private func connectLoop() async throws {
        let task = Task { try await self.loop() }
        let stopped = state.withLock { s -> Bool in
            s.task = task
            return s.stopped
        }
        if stopped { task.cancel() }
        try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    public func subscribe(_ symbols: [String]) async {
        let (writer, added) = state.withLock { s -> (WebSocketOutboundWriter?, [String]) in
            let added = symbols.filter { !s.symbols.contains($0) }
            s.symbols += added
            return (s.writer, added)
        }
        await send(added.map { .subscribe($0) }, on: writer)
    }

    public func unsubscribe(_ symbols: [String]) async {
        let (writer, removed) = state.withLock { s -> (WebSocketOutboundWriter?, [String]) in
            let removed = s.symbols.filter { symbols.contains($0) }
            s.symbols.removeAll { symbols.contains($0) }
            return (s.writer, removed)
        }
        await send(removed.map { .unsubscribe($0) }, on: writer)
    }

    public func stop() async {
        let task = state.withLock { s in
            s.stopped = true
            return s.task
        }
        task?.cancel()
    }

    /// Sends a text frame (an order, a control message) on the connection, in call order; frames sent
    /// while not connected wait for the next connection.
    public func send(_ text: String) async {
        let writer = state.withLock { s -> WebSocketOutboundWriter? in
            if s.writer == nil { s.pending.append(text) }
            return s.writer
        }
        guard let writer else { return }
        do { try await writer.write(.text(text)) } catch {
            logger.debug("send failed", metadata: ["error": "\(Self.redact(String(describing: error)))"])
        }
    }

    /// The symbols currently wanted.
    public var symbols: [String] { state.withLock { $0.symbols } }

    private func send(_ messages: [ClientMessage], on writer: WebSocketOutboundWriter?) async {
        guard let writer else { return }
        for m in messages {
            do { try await writer.write(.text(FinnhubCodec.encodeClientMessage(m))) } catch {
                logger.debug("send failed", metadata: ["error": "\(Self.redact(String(describing: error)))"])
                return
            }
        }
    }

    private func loop() async throws {
        defer { continuation.finish() }
        var failures = 0
        while !Task.isCancelled, !state.withLock({ $0.stopped }) {
            do {
                let reason = try await connectOnce()
                failures = 0
                markLost()
                continuation.yield(.disconnected(reason: reason))
            } catch FeedError.unauthorized {
                logger.error("\(FeedError.unauthorized.description)")
                continuation.yield(.error(.unauthorized))
                throw FeedError.unauthorized
            } catch {
                let wasConnected = state.withLock { $0.writer != nil }
                markLost()
                if Task.isCancelled || state.withLock({ $0.stopped }) { break }
                let feedError = error as? FeedError ?? .connectionFailed(Self.redact(String(describing: error)))
                if wasConnected {
                    continuation.yield(.disconnected(reason: feedError.description))
                    failures = 0
                } else {
                    continuation.yield(.error(feedError))
                    failures += 1
                }
                if let max = reconnect.maxAttempts, failures >= max {
                    continuation.yield(.error(.retriesExhausted(attempts: failures)))
                    throw FeedError.retriesExhausted(attempts: failures)
                }
            }
            state.withLock { $0.writer = nil }
            if Task.isCancelled || state.withLock({ $0.stopped }) { break }
            let delay = reconnect.delay(attempt: max(1, failures))
            logger.info("reconnecting", metadata: ["url": "\(displayURL)", "delay": "\(delay)"])
            do { try await Task.sleep(for: delay) } catch { break }
        }
    }

    private func markLost() {
        state.withLock { s in
            if s.writer != nil, s.lostAt == nil { s.lostAt = Self.nowMilliseconds() }
            s.writer = nil
        }
    }

    /// One connection; returns the close reason, throws when it could not be established.
    private func connectOnce() async throws -> String {
        var config = WebSocketClientConfiguration(maxFrameSize: maxFrameSize, closeTimeout: .seconds(2))
        config.sniHostname = sniHostname
        let upgraded = Locked(false)
        let client = WebSocketClient(url: url, configuration: config, tlsConfiguration: tlsConfiguration, logger: logger) {
            [self] inbound, outbound, _ in
            upgraded.withLock { $0 = true }
            try await self.handle(inbound: inbound, outbound: outbound)
        }
        let runTask = Task { try await client.run() }
        let timeout = connectTimeout
        let closeFrame: WebSocketCloseFrame?
        do {
            closeFrame = try await Self.race(runTask, timeout: timeout, upgraded: upgraded)
        } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
            let status = try? await UpgradeProbe.status(url: url, tls: tlsConfiguration, sniHostname: sniHostname, timeout: timeout)
            if status == 401 { throw FeedError.unauthorized }
            throw FeedError.upgradeRejected(status: status)
        }
        if let closeFrame { return "closed by server (\(closeFrame.closeCode))" + (closeFrame.reason.map { ": \(Self.redact($0))" } ?? "") }
        return "connection closed"
    }

    /// Waits for `runTask`; when `timeout` passes before the upgrade, or the caller is cancelled,
    /// cancels it and returns at once (a stuck attempt is left to finish on its own).
    private static func race(_ runTask: Task<WebSocketCloseFrame?, any Error>, timeout: Duration, upgraded: Locked<Bool>) async throws -> WebSocketCloseFrame? {
        let slot = Locked<CheckedContinuation<Result<WebSocketCloseFrame?, any Error>, Never>?>(nil)
        let finish: @Sendable (Result<WebSocketCloseFrame?, any Error>) -> Void = { r in slot.withLock { c in c.take() }?.resume(returning: r) }
        let timer = Task {
            try await Task.sleep(for: timeout)
            if !upgraded.withLock({ $0 }) {
                finish(.failure(FeedError.connectTimeout))
                runTask.cancel()
            }
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Result<WebSocketCloseFrame?, any Error>, Never>) in
                slot.withLock { $0 = c }
                Task { finish(await runTask.result) }
            }
        } onCancel: {
            runTask.cancel()
            finish(.failure(CancellationError()))
        }.get()
    }

    private func handle(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let (symbols, lostAt, frames) = state.withLock { s in (s.symbols, s.lostAt, s.frames) }
        logger.info("connected", metadata: ["url": "\(displayURL)", "symbols": "\(symbols.count)"])
        continuation.yield(.connected(url: displayURL))
        for s in symbols { try await outbound.write(.text(FinnhubCodec.encodeClientMessage(.subscribe(s)))) }
        // Frames sent before the connection go out first, in order; later ones go straight to the socket.
        while true {
            let batch = state.withLock { s -> [String] in
                if s.pending.isEmpty { s.writer = outbound; return [] }
                defer { s.pending = [] }
                return s.pending
            }
            if batch.isEmpty { break }
            for text in batch { try await outbound.write(.text(text)) }
        }
        if let lostAt {
            state.withLock { $0.lostAt = nil }
            continuation.yield(.gap(Gap(startMilliseconds: lostAt, endMilliseconds: Self.nowMilliseconds())))
        }
        for try await message in inbound.messages(maxSize: maxFrameSize) {
            guard case .text(let text) = message else { continue }
            if frames { continuation.yield(.frame(FeedFrame(receivedNs: realtimeNs(), text: text))) }
            do {
                switch try FinnhubCodec.decode(text) {
                case .trades(let trades): continuation.yield(.trades(trades))
                case .error(let message): continuation.yield(.serverError(message: message))
                case .ping, .unknown: break
                }
            } catch {
                continuation.yield(.malformedFrame(error, frame: text))
            }
        }
    }
}

final class Locked<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout sending Value) -> sending R) -> sending R { mutex.withLock(body) }
}
