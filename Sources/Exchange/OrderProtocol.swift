import MarketData
import Foundation

/// An order sent to `sim-exchange` over its WebSocket, with the client's id for it.
public struct ClientOrder: Sendable, Hashable {
    /// Chosen by the client (1–64 UTF-8 bytes); fills carry it back.
    public var id: String
    public var order: Order
    public init(id: String, order: Order) { self.id = id; self.order = order }
}

/// An extension of the Finnhub WebSocket protocol that `sim-exchange` speaks (Finnhub itself has no orders):
///
/// - client → server `{"type":"order","id":"o1","symbol":"AAPL","side":"buy","quantity":10,"order_type":"market"}`,
///   or `"order_type":"limit","price":182.5`;
/// - server → client, once per execution, `{"type":"fill","id":"o1","symbol":"AAPL","side":"buy","quantity":10,
///   "price":182.4,"fee":0.1824,"t":1700000000123,"remaining":0}` (`remaining` 0: the order is done);
/// - an order that cannot be accepted is answered with Finnhub's error frame, `{"type":"error","msg":"Invalid order: …"}`.
///
/// Fills follow ``TapeMatcher`` against the trades the connection is sent. Keys are written in the order above.
public enum OrderProtocol {
    public static func encode(_ o: ClientOrder) -> String {
        var b: [UInt8] = []
        b.append(contentsOf: #"{"type":"order","id":"#.utf8); JSONOutput.appendString(o.id, to: &b)
        b.append(contentsOf: #","symbol":"#.utf8); JSONOutput.appendString(o.order.symbol, to: &b)
        b.append(contentsOf: #","side":""#.utf8); b.append(contentsOf: o.order.side.rawValue.utf8)
        b.append(contentsOf: #"","quantity":"#.utf8); JSONOutput.appendNumber(o.order.quantity, to: &b)
        switch o.order.type {
        case .market: b.append(contentsOf: #","order_type":"market"}"#.utf8)
        case .limit(let p):
            b.append(contentsOf: #","order_type":"limit","price":"#.utf8); JSONOutput.appendNumber(p, to: &b)
            b.append(UInt8(ascii: "}"))
        }
        return String(decoding: b, as: UTF8.self)
    }

    /// nil when `text` is not an order frame (no `"type":"order"`); otherwise the order or why it is invalid.
    public static func decodeOrder(_ text: String) -> Result<ClientOrder, FrameDecodingError>? {
        guard text.contains(#""order""#), let o = JSONValue.parse(text), o["type"]?.string == "order" else { return nil }
        func fail(_ path: String, _ reason: String) -> Result<ClientOrder, FrameDecodingError> {
            .failure(FrameDecodingError(path: path, reason: reason, offset: 0))
        }
        guard let id = o["id"]?.string, !id.isEmpty, id.utf8.count <= 64 else { return fail("id", "expected a string of 1 to 64 bytes") }
        guard let symbol = o["symbol"]?.string, !symbol.isEmpty else { return fail("symbol", "expected a non-empty string") }
        guard let side = o["side"]?.string.flatMap(Side.init(rawValue:)) else { return fail("side", "expected \"buy\" or \"sell\"") }
        guard let quantity = o["quantity"]?.double, quantity.isFinite, quantity > 0 else {
            return fail("quantity", "expected a number > 0")
        }
        let type: OrderType
        switch o["order_type"]?.string ?? "market" {
        case "market": type = .market
        case "limit":
            guard let p = o["price"]?.double, p.isFinite, p > 0 else { return fail("price", "a limit order needs a price > 0") }
            type = .limit(p)
        default: return fail("order_type", "expected \"market\" or \"limit\"")
        }
        return .success(ClientOrder(id: id, order: Order(symbol: symbol, side: side, quantity: quantity, type: type)))
    }

    public static func encodeFill(_ f: Fill, id: String) -> String {
        var b: [UInt8] = []
        b.append(contentsOf: #"{"type":"fill","id":"#.utf8); JSONOutput.appendString(id, to: &b)
        b.append(contentsOf: #","symbol":"#.utf8); JSONOutput.appendString(f.symbol, to: &b)
        b.append(contentsOf: #","side":""#.utf8); b.append(contentsOf: f.side.rawValue.utf8)
        b.append(contentsOf: #"","quantity":"#.utf8); JSONOutput.appendNumber(f.quantity, to: &b)
        b.append(contentsOf: #","price":"#.utf8); JSONOutput.appendNumber(f.price, to: &b)
        b.append(contentsOf: #","fee":"#.utf8); JSONOutput.appendNumber(f.fee, to: &b)
        b.append(contentsOf: #","t":"#.utf8); b.append(contentsOf: String(f.timestamp).utf8)
        b.append(contentsOf: #","remaining":"#.utf8); JSONOutput.appendNumber(f.remaining, to: &b)
        b.append(UInt8(ascii: "}"))
        return String(decoding: b, as: UTF8.self)
    }

    /// The client id and the fill of a fill frame; nil for any other frame. `orderID` is 0 (the server's ids are private).
    public static func decodeFill(_ text: String) -> (id: String, fill: Fill)? {
        guard text.contains(#""fill""#), let o = JSONValue.parse(text), o["type"]?.string == "fill", let id = o["id"]?.string,
              let symbol = o["symbol"]?.string, let side = o["side"]?.string.flatMap(Side.init(rawValue:)),
              let q = o["quantity"]?.double, let p = o["price"]?.double, let fee = o["fee"]?.double,
              let t = o["t"]?.int64, let r = o["remaining"]?.double else { return nil }
        return (id, Fill(orderID: 0, symbol: symbol, side: side, quantity: q, price: p, fee: fee, timestamp: t, remaining: r))
    }
}
