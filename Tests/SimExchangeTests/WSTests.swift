import SimExchange
import Feeds
import MarketData
import Exchange
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1)))
struct WSTests {
    @Test func tradesMatchLocalMarketAndSubscriptionsWork() async throws {
        let start: Int64 = 1_700_000_000_000
        let symbols = ["AAPL", "MSFT", "BINANCE:BTCUSDT"]
        let (server, port) = try await startServer {
            $0.seed = 7
            $0.startMilliseconds = start
            $0.tradesPerSecond = 3000
            $0.maxSymbols = 3
            $0.frameIntervalMilliseconds = 50
        }
        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)?token=abc", token: nil, symbols: symbols, reconnect: fastBackoff, logger: quietLogger)
        let log = EventLog(feed)
        let runner = Task { try await log.run() }
        #expect(await log.wait { _ in log.trades.count >= 600 })

        var market = SyntheticMarket(seed: 7, symbols: symbols, startMilliseconds: start, tradesPerSecond: 3000)
        var expected: [Trade] = []
        while expected.count < 600 { expected += market.advance(byMilliseconds: 50) }
        let received = Array(log.trades.prefix(600))
        #expect(received == Array(expected.prefix(600)))
        #expect(Set(received.map(\.symbol)) == Set(symbols))

        await feed.subscribe(["BAD$SYMBOL", ""])
        #expect(await log.wait { serverErrors($0).filter { $0 == "Invalid symbol" }.count == 2 })
        await feed.subscribe(["GOOGL"])
        #expect(await log.wait { serverErrors($0).contains("Subscribing to too many symbols") })

        await feed.unsubscribe(["MSFT"])
        try await Task.sleep(for: .milliseconds(300))
        let mark = log.trades.count
        #expect(await log.wait { _ in log.trades.count >= mark + 300 })
        let after = log.trades.dropFirst(mark)
        #expect(!after.contains { $0.symbol == "MSFT" })
        #expect(after.contains { $0.symbol == "AAPL" })

        await feed.stop()
        _ = await runner.result
        await server.stop()
    }

    @Test func reconnectsAfterEveryDropAndReportsGaps() async throws {
        let (server, port) = try await startServer {
            $0.tradesPerSecond = 2000
            $0.frameIntervalMilliseconds = 20
            $0.dropAfterFrames = 3
        }
        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)/", token: "t", symbols: ["AAPL", "MSFT"], reconnect: fastBackoff, logger: quietLogger)
        let log = EventLog(feed)
        let runner = Task { try await log.run() }
        #expect(await log.wait(timeout: .seconds(20)) { count($0, isGap) >= 10 && count($0, isConnected) >= 11 })
        await feed.stop()
        _ = await runner.result
        await server.stop()

        let events = log.snapshot
        var connections: [[FeedEvent]] = []
        for e in events {
            if isConnected(e) { connections.append([]) } else if !connections.isEmpty { connections[connections.count - 1].append(e) }
        }
        #expect(connections.count >= 11)
        for c in connections.prefix(10) { #expect(c.contains(where: isTrades), "re-subscribed: trades after every reconnect") }
        let gaps = events.compactMap { if case .gap(let g) = $0 { g } else { nil } }
        #expect(gaps.count >= 10)
        for g in gaps { #expect(g.endMilliseconds >= g.startMilliseconds) }
    }

    @Test func malformedFramesAreReportedAndTheStreamContinues() async throws {
        let (server, port) = try await startServer {
            $0.tradesPerSecond = 1000
            $0.frameIntervalMilliseconds = 20
            $0.malformedEvery = 3
        }
        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)", symbols: ["AAPL"], reconnect: fastBackoff, logger: quietLogger)
        let log = EventLog(feed)
        let runner = Task { try await log.run() }
        let malformed: (FeedEvent) -> Bool = { if case .malformedFrame = $0 { true } else { false } }
        #expect(await log.wait { count($0, malformed) >= 3 && count($0, isTrades) >= 6 })
        #expect(count(log.snapshot, isConnected) == 1)
        await feed.stop()
        _ = await runner.result
        await server.stop()
    }

    @Test func wssWithSelfSignedCertificate() async throws {
        guard let openssl = which("openssl") else {
            print("skipping wss test: openssl not found")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ws-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let r = try runProcess(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                                         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert])
        try #require(r.status == 0, "openssl: \(r.output)")
        let (server, port) = try await startServer {
            $0.tlsCertificatePath = cert
            $0.tlsKeyPath = key
            $0.tradesPerSecond = 500
        }
        let feed = WebSocketFeed(url: "wss://127.0.0.1:\(port)", token: "x", symbols: ["AAPL"], reconnect: fastBackoff, trustRootsPEM: cert, logger: quietLogger)
        let log = EventLog(feed)
        let runner = Task { try await log.run() }
        #expect(await log.wait { _ in log.trades.count >= 20 })
        #expect(log.trades.allSatisfy { $0.symbol == "AAPL" })
        await feed.stop()
        _ = await runner.result
        await server.stop()
    }

    @Test func badTokenIsReportedOnceWithoutTheToken() async throws {
        let (server, port) = try await startServer { $0.token = "right-token" }
        let secret = "wrong-token-Zq81"
        let feed = WebSocketFeed(url: "ws://127.0.0.1:\(port)", token: secret, reconnect: fastBackoff, logger: quietLogger)
        let log = EventLog(feed)
        await #expect(throws: FeedError.unauthorized) { try await log.run() }
        #expect(await log.wait { _ in log.finished.withLock { $0 } })
        let events = log.snapshot
        let errors = events.compactMap { if case .error(let e) = $0 { e } else { nil } }
        #expect(errors == [.unauthorized])
        #expect(FeedError.unauthorized.description == "Finnhub rejected the API key (HTTP 401)")
        #expect(!events.contains { "\($0)".contains(secret) })
        #expect(!feed.displayURL.contains(secret))
        await server.stop()
    }

    @Test func pythonWebSocketClient() async throws {
        let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let path = ProcessInfo.processInfo.environment["PY_WS_PATH"] ?? repoRoot + "/.deps/python"
        guard let python = which("python3") else {
            print("skipping python client test: python3 not found (scripts/setup.sh installs it)")
            return
        }
        guard (try? runProcess(python, ["-c", "import websocket"], environment: ["PYTHONPATH": path]))?.status == 0 else {
            print("skipping python client test: cannot import websocket from \(path)")
            return
        }
        let (server, port) = try await startServer { $0.tradesPerSecond = 200 }
        let script = """
            import json, sys, urllib.request, websocket
            port = int(sys.argv[1])
            print("health", urllib.request.urlopen(f"http://127.0.0.1:{port}/health").status)
            ws = websocket.create_connection(f"ws://127.0.0.1:{port}/?token=py", timeout=10)
            ws.send(json.dumps({"type": "subscribe", "symbol": "AAPL"}))
            while True:
                msg = json.loads(ws.recv())
                if msg["type"] == "trade":
                    t = msg["data"][0]
                    print("trade", t["s"], len(msg["data"]), isinstance(t["p"], (int, float)), type(t["t"]).__name__)
                    break
            ws.close()
            """
        let result = try await Task.detached {
            try runProcess(python, ["-c", script, "\(port)"], environment: ["PYTHONPATH": path])
        }.value
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("health 200"))
        #expect(result.output.contains("trade AAPL"))
        #expect(result.output.contains("True int"))
        await server.stop()
    }
}
