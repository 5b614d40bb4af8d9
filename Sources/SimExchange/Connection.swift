import Feeds
import Exchange
import MarketData
import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// One client connection: reads subscriptions, sends pings and paced trade frames, injects faults.
final class Connection: Sendable {
    let config: SimExchangeConfig
    let outbound: WebSocketOutboundWriter
    let channel: any Channel
    let logger: Logger
    let state = Mutex(State())
    let subscribed: AsyncStream<Void>
    let subscribedContinuation: AsyncStream<Void>.Continuation

    struct State {
        var symbols: [String] = []
        var start: Int64?
        var source: (any TradeSource)?
        var orders: OrderDesk?
    }

    init(config: SimExchangeConfig, outbound: WebSocketOutboundWriter, channel: any Channel, logger: Logger) {
        self.config = config
        self.outbound = outbound
        self.channel = channel
        var logger = logger
        logger[metadataKey: "peer"] = "\(channel.remoteAddress?.description ?? "?")"
        self.logger = logger
        (subscribed, subscribedContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func run(inbound: WebSocketInboundStream) async throws {
        let budget = max(config.outboundBudgetBytes, 2)
        try? await channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: budget / 2, high: budget)).get()
        logger.debug("client connected")
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.frames() }
            group.addTask { await self.pings() }
            if let seconds = config.dropAfterSeconds {
                group.addTask {
                    guard (try? await Task.sleep(for: .seconds(seconds))) != nil else { return }
                    self.logger.info("fault: dropping connection after \(seconds) s")
                    self.channel.close(promise: nil)
                }
            }
            do {
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    guard case .text(let text) = message else { continue }
                    await handle(text)
                }
            } catch {
                logger.debug("inbound ended: \(error)")
            }
            group.cancelAll()
        }
        subscribedContinuation.finish()
        logger.debug("client disconnected")
    }

    func handle(_ text: String) async {
        if let order = OrderProtocol.decodeOrder(text) { return await handle(order) }
        guard let message = try? FinnhubCodec.decodeClientMessage(text) else {
            if let object = JSONValue.parse(text), object["type"]?.string == "subscribe", object["symbol"]?.string != nil {
                return await send(FinnhubCodec.encodeError("Invalid symbol"))
            }
            logger.info("ignoring malformed client frame", metadata: ["frame": "\(String(text.prefix(200)).escapingControlCharacters)"])
            return
        }
        switch message {
        case .subscribe(let symbol):
            guard config.isValid(symbol: symbol) else { return await send(FinnhubCodec.encodeError("Invalid symbol")) }
            let outcome = state.withLock { s -> Bool? in
                if s.symbols.contains(symbol) { return nil }
                guard s.symbols.count < config.maxSymbols else { return false }
                s.symbols.append(symbol)
                if s.start == nil { s.start = config.startMilliseconds ?? Int64(Date().timeIntervalSince1970 * 1000) }
                s.source?.add(symbol: symbol)
                return true
            }
            if outcome == false { await send(FinnhubCodec.encodeError("Subscribing to too many symbols")) }
            if outcome == true { subscribedContinuation.yield() }
        case .unsubscribe(let symbol):
            state.withLock { s in
                s.symbols.removeAll { $0 == symbol }
                s.source?.remove(symbol: symbol)
            }
        }
    }

    func send(_ text: String) async {
        do { try await outbound.write(.text(text)) } catch { logger.debug("write failed: \(error)") }
    }

    func pings() async {
        while (try? await Task.sleep(for: .seconds(config.pingInterval))) != nil {
            await send(FinnhubCodec.encodePing())
        }
    }

    func nextTrades(milliseconds: Int64) -> [Trade] {
        state.withLock { s in
            if s.source == nil { s.source = config.makeSource(symbols: s.symbols, start: s.start ?? 0) }
            let trades = s.source!.advance(byMilliseconds: milliseconds)
            if s.symbols.count == 1 { return trades.filter { $0.symbol == s.symbols[0] } }
            let wanted = Set(s.symbols)
            return trades.allSatisfy { wanted.contains($0.symbol) } ? trades : trades.filter { wanted.contains($0.symbol) }
        }
    }

    func frames() async {
        var iterator = subscribed.makeAsyncIterator()
        guard await iterator.next() != nil else { return }
        let clock = ContinuousClock()
        let t0 = clock.now
        let step = config.frameIntervalMilliseconds
        let interval = Duration.milliseconds(step)
        let paced = !config.asFastAsPossible
        var due = t0 + min(interval, .milliseconds(100))
        var nextStall = config.stallEverySeconds.map { t0 + .seconds($0) }
        var sent = 0, dropped = 0, sinceHop = 0
        var bytes: [UInt8] = []
        defer {
            if dropped > 0 { logger.warning("slow client: dropped \(dropped) frames (outbound budget \(config.outboundBudgetBytes) bytes)") }
        }
        do {
            try await Task.sleep(until: due, clock: clock)
            while !Task.isCancelled {
                if paced {
                    try await Task.sleep(until: due, clock: clock)
                    due += interval
                }
                if let stall = nextStall, clock.now >= stall, let every = config.stallEverySeconds {
                    logger.info("fault: stalling for \(config.stallForSeconds) s")
                    try await Task.sleep(for: .seconds(config.stallForSeconds))
                    nextStall = stall + .seconds(every)
                }
                let trades = nextTrades(milliseconds: step)
                let fills = state.withLock { $0.orders?.match(trades) ?? [] }
                var index = 0
                while index < trades.count {
                    let chunk = trades[index..<min(index + config.maxTradesPerFrame, trades.count)]
                    index += chunk.count
                    bytes.removeAll(keepingCapacity: true)
                    FinnhubCodec.encodeTrades(Array(chunk), into: &bytes)
                    if let every = config.malformedEvery, every > 0, (sent + 1) % every == 0 {
                        bytes.removeLast(bytes.count / 2)
                    }
                    if paced && !channel.isWritable {
                        dropped += 1
                        continue
                    }
                    var buffer = channel.allocator.buffer(capacity: bytes.count)
                    buffer.writeBytes(bytes)
                    try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: buffer)))
                    sent += 1
                    sinceHop += 1
                    if sinceHop >= (paced ? 32 : 256) {
                        sinceHop = 0
                        try await channel.eventLoop.submit {}.get()
                    }
                    if let limit = config.dropAfterFrames, sent >= limit {
                        logger.info("fault: dropping connection after \(sent) frames")
                        try? await channel.close().get()
                        return
                    }
                }
                for fill in fills { try await outbound.write(.text(fill)) }
            }
        } catch {
            logger.debug("frame loop ended: \(error)")
        }
    }
}
