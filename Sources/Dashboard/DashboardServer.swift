import Hummingbird
import MarketData
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ServiceLifecycle

/// The dashboard's HTTP face (127.0.0.1 unless told otherwise), everything served by this binary:
///
/// | request | answers |
/// | --- | --- |
/// | `GET /` | the page (HTML, CSS and script inline; nothing from the internet) |
/// | `GET /events?symbol=S` | server-sent events: the state JSON after every monitor pass, chart of `S` |
/// | `GET /api/state?symbol=S` | the same JSON once |
/// | `POST /api/replay/{pause,resume,toggle,speed,seek}?…` | forwarded to the replay's control endpoint; its answer |
///
/// The event stream ends on graceful shutdown, so Ctrl-C never waits for a browser tab.
public enum DashboardServer {
    public static func application(monitor: DashboardMonitor, host: String = "127.0.0.1", port: Int) -> some ApplicationProtocol {
        let router = Router()
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("api/state") { request, _ in
            let bytes = monitor.json(chartSymbol: request.uri.queryParameters.get("symbol"))
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("events") { request, _ in
            let symbol = request.uri.queryParameters.get("symbol")
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: .init { writer in
                var sent = -1
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let version = monitor.version
                    if version != sent {
                        sent = version
                        var event = ByteBuffer(string: "data: ")
                        event.writeBytes(monitor.json(chartSymbol: symbol))
                        event.writeString("\n\n")
                        try await writer.write(event)
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                }
                try await writer.finish(nil)
            })
        }
        router.post("api/replay/:action") { request, context -> Response in
            guard let base = monitor.options.replayControl else {
                return text(.notFound, "no replay control endpoint: start the dashboard with --replay-control http://HOST:PORT")
            }
            let action = context.parameters.get("action") ?? ""
            guard ["pause", "resume", "toggle", "speed", "seek"].contains(action) else { return text(.notFound, "unknown replay action \"\(action)\"") }
            var target = base.appendingPathComponent(action).absoluteString
            if let query = request.uri.query, !query.isEmpty { target += "?" + query }
            guard let url = URL(string: target) else { return text(.badRequest, "bad replay request") }
            var forward = URLRequest(url: url, timeoutInterval: 3)
            forward.httpMethod = "POST"
            do {
                let (data, response) = try await URLSession.shared.data(for: forward)
                let status = (response as? HTTPURLResponse)?.statusCode ?? 502
                await monitor.pollReplay()
                return Response(status: .init(code: status), headers: [.contentType: status == 200 ? "application/json" : "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(bytes: [UInt8](data))))
            } catch {
                return text(.badGateway, "replay control at \(base.absoluteString) unreachable: \(error.localizedDescription)")
            }
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "market-dashboard"))
    }

    static func text(_ status: HTTPResponse.Status, _ line: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: line + "\n")))
    }
}
