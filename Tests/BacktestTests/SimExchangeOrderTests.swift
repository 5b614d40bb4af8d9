import Backtest
import Feeds
import Recording
import MarketData
import Exchange
import Aggregation
import Pipeline
import Kafka
import MarketStreamTesting
import SimExchange
import Foundation
import HummingbirdWSClient
import Logging
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct SimExchangeOrderTests {
    @Test func orderFramesRoundTrip() throws {
        let o = ClientOrder(id: "a\"1", order: .limit("AAPL", .sell, 2.5, at: 182.25))
        #expect(OrderProtocol.encode(o) == #"{"type":"order","id":"a\"1","symbol":"AAPL","side":"sell","quantity":2.5,"order_type":"limit","price":182.25}"#)
        #expect(try OrderProtocol.decodeOrder(OrderProtocol.encode(o))?.get() == o)
        #expect(OrderProtocol.decodeOrder(#"{"type":"subscribe","symbol":"AAPL"}"#) == nil)
        guard case .failure(let e) = OrderProtocol.decodeOrder(#"{"type":"order","id":"x","symbol":"AAPL","side":"hold","quantity":1}"#) else {
            Issue.record("accepted side hold"); return
        }
        #expect(e.path == "side")
        let f = Fill(orderID: 0, symbol: "AAPL", side: .buy, quantity: 1, price: 182.4, fee: 0.01824, timestamp: 1_700_000_000_123, remaining: 0)
        let text = OrderProtocol.encodeFill(f, id: "o1")
        #expect(text == #"{"type":"fill","id":"o1","symbol":"AAPL","side":"buy","quantity":1,"price":182.4,"fee":0.01824,"t":1700000000123,"remaining":0}"#)
        #expect(OrderProtocol.decodeFill(text)?.fill == f)
    }

    /// A client subscribes, sends orders, and gets fills priced at trades it was sent after the order, with fees.
    @Test func simExchangeFillsOrdersAgainstTheTradesItSends() async throws {
        var config = SimExchangeConfig()
        config.port = 0
        config.startMilliseconds = 1_700_000_000_000
        config.tradesPerSecond = 400
        config.frameIntervalMilliseconds = 20
        config.orderFeeBps = 10
        config.orderLatencyMilliseconds = 100
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let server = SimExchangeServer(config: config, logger: logger)
        let port = try await server.start()
        defer { Task { await server.stop() } }

        let frames = Mutex<[String]>([])
        let client = WebSocketClient(url: "ws://127.0.0.1:\(port)/?token=t", logger: logger) { inbound, outbound, _ in
            try await outbound.write(.text(#"{"type":"subscribe","symbol":"AAPL"}"#))
            var sentOrders = false
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                frames.withLock { $0.append(text) }
                if !sentOrders, text.contains(#""type":"trade""#) {
                    sentOrders = true
                    frames.withLock { $0.append("ORDERS SENT") }
                    try await outbound.write(.text(OrderProtocol.encode(ClientOrder(id: "m1", order: .market("AAPL", .buy, 250)))))
                    try await outbound.write(.text(#"{"type":"order","id":"bad","symbol":"AAPL","side":"buy","quantity":-1}"#))
                }
                let done = frames.withLock { $0.contains { OrderProtocol.decodeFill($0)?.fill.remaining == 0 } }
                if done { return }
            }
        }
        try await client.run()

        let all = frames.withLock { $0 }
        let mark = all.firstIndex(of: "ORDERS SENT")!
        var tradesBefore: [Trade] = [], tradesAfter: [Trade] = []
        var fills: [Fill] = []
        for (i, text) in all.enumerated() {
            if let f = OrderProtocol.decodeFill(text) {
                #expect(f.id == "m1")
                fills.append(f.fill)
            } else if case .trades(let t)? = try? FinnhubCodec.decode(text) {
                if i < mark { tradesBefore += t } else { tradesAfter += t }
            }
        }
        #expect(all.contains(#"{"type":"error","msg":"Invalid order: quantity: expected a number > 0"}"#))
        #expect(!fills.isEmpty && fills.last!.remaining == 0)
        #expect(abs(fills.reduce(0) { $0 + $1.quantity } - 250) < 1e-9)
        let orderTime = tradesBefore.map(\.timestamp).max()!
        for f in fills {
            #expect(f.timestamp >= orderTime + 100)
            #expect(tradesAfter.contains { $0.timestamp == f.timestamp && $0.price == f.price })
            #expect(abs(f.fee - f.quantity * f.price * 0.001) < 1e-9)
        }
    }
}

extension SimExchangeOrderTests {
    /// Paper trading that sends its orders to sim-exchange: the fills come back over the WebSocket and land in
    /// the portfolio and the report.
    @Test(.timeLimit(.minutes(1))) func paperTradingWithFillsFromSimExchange() async throws {
        var config = SimExchangeConfig()
        config.port = 0
        config.tradesPerSecond = 400
        config.frameIntervalMilliseconds = 20
        config.orderFeeBps = 10
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let server = SimExchangeServer(config: config, logger: logger)
        let port = try await server.start()
        defer { Task { await server.stop() } }

        let kafka = try TestBroker.config()
        let topic = TestBroker.unique("paper-remote")
        _ = try KafkaAdmin(config: kafka).ensureTopics([TopicSpec(name: topic, partitions: 1)])
        let trades = syntheticTrades(count: 500, symbols: ["AAPL"])
        let publisher = TradePublisher(producer: try KafkaProducer(config: kafka), topic: topic, source: "tests")
        try publisher.publish(trades)
        try publisher.flush()

        var options = PaperOptions()
        options.topic = topic
        options.fromBeginning = true
        options.idleTimeout = .seconds(3)
        options.exchangeURL = "ws://127.0.0.1:\(port)/?token=t"
        let seen = Mutex<[Fill]>([])
        let r = try await PaperTrading.run(kafka: kafka, options: options, strategy: BuyAndHold(quantity: 50)) { f in
            seen.withLock { $0.append(f) }
        }.report
        let fills = seen.withLock { $0 }
        #expect(r.trades == 500 && r.orders == 1)
        #expect(!fills.isEmpty && fills.allSatisfy { $0.orderID == 1 && $0.symbol == "AAPL" && $0.side == .buy })
        #expect(fills.last?.remaining == 0 && abs(fills.reduce(0) { $0 + $1.quantity } - 50) < 1e-9)
        #expect(r.fills == fills.count && abs(r.symbols[0].position - 50) < 1e-9 && r.openOrders == 0)
        #expect(abs(r.fees - fills.reduce(0) { $0 + $1.quantity * $1.price * 0.001 }) < 1e-9)
    }
}
