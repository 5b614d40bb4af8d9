import Feeds
import Exchange
import MarketData

/// A connection's orders (``OrderProtocol``): matched by ``TapeMatcher`` against the trades the connection is sent.
struct OrderDesk: Sendable {
    private var matcher: TapeMatcher
    private var ids: [Int: String] = [:]
    private var nextID = 1
    /// The newest trade time sent on the connection: orders become active `latency` after it.
    private var clock: Int64

    init(config: SimExchangeConfig, start: Int64) {
        matcher = TapeMatcher(feeBps: config.orderFeeBps, latencyMs: config.orderLatencyMilliseconds)
        clock = start
    }

    /// Queues the order; false when invalid.
    mutating func submit(_ o: ClientOrder) -> Bool {
        guard matcher.submit(o.order, id: nextID, now: clock) else { return false }
        ids[nextID] = o.id
        nextID += 1
        return true
    }

    /// Fill frames for `trades` (in order), which the connection sends after them.
    mutating func match(_ trades: [Trade]) -> [String] {
        var frames: [String] = []
        var fills: [Fill] = []
        for t in trades {
            if t.timestamp > clock { clock = t.timestamp }
            guard matcher.openOrders > 0 else { continue }
            matcher.match(t, into: &fills)
            for f in fills {
                frames.append(OrderProtocol.encodeFill(f, id: ids[f.orderID] ?? ""))
                if f.remaining == 0 { ids[f.orderID] = nil }
            }
            fills.removeAll(keepingCapacity: true)
        }
        return frames
    }
}

extension Connection {
    func handle(_ order: Result<ClientOrder, FrameDecodingError>) async {
        switch order {
        case .failure(let e): await send(FinnhubCodec.encodeError("Invalid order: \(e.path): \(e.reason)"))
        case .success(let o):
            guard config.isValid(symbol: o.order.symbol) else { return await send(FinnhubCodec.encodeError("Invalid order: unknown symbol")) }
            let accepted = state.withLock { s in
                if s.orders == nil { s.orders = OrderDesk(config: config, start: s.source?.now ?? s.start ?? 0) }
                return s.orders!.submit(o)
            }
            if !accepted { await send(FinnhubCodec.encodeError("Invalid order: quantity or price")) }
        }
    }
}
