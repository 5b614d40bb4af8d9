import Hummingbird
import MarketData

/// The HTTP face of a ``ReplayControl`` (`--control-port`, 127.0.0.1 unless told otherwise):
///
/// | request | does |
/// | --- | --- |
/// | `GET /status` | the ``ReplayStatus`` as JSON |
/// | `POST /pause`, `POST /resume`, `POST /toggle` | pause or resume |
/// | `POST /speed?to=10x` | `0.5x` … `max`, or `faster` / `slower` along ``ReplayControl/ladder`` |
/// | `POST /seek?to=…` | ISO-8601, Unix ms, or relative (`+10s`, `-60s`, `+500ms`, `-2m`) |
///
/// Every action answers with the status JSON. A bad value is `400` with a one-line reason; anything
/// else is `404`.
public enum ReplayControlEndpoint {
    public static func application(control: ReplayControl, host: String = "127.0.0.1", port: Int) -> some ApplicationProtocol {
        let router = Router()
        @Sendable func status() -> Response { json(control.status.json()) }
        router.get("status") { _, _ in status() }
        router.post("pause") { _, _ in control.pause(); return status() }
        router.post("resume") { _, _ in control.resume(); return status() }
        router.post("toggle") { _, _ in control.togglePause(); return status() }
        router.post("speed") { request, _ -> Response in
            guard let value = request.uri.queryParameters.get("to") else { return bad("POST /speed needs ?to=, e.g. /speed?to=10x (or faster, slower)") }
            switch value {
            case "faster": control.faster()
            case "slower": control.slower()
            default:
                guard let speed = try? Speed.parse(value) else { return bad("invalid speed \"\(value)\": use e.g. 10x, 0.5x, max, faster or slower") }
                control.setSpeed(speed)
            }
            return status()
        }
        router.post("seek") { request, _ -> Response in
            guard let value = request.uri.queryParameters.get("to") else { return bad("POST /seek needs ?to=, e.g. /seek?to=%2B10s or /seek?to=2024-08-08T23:55:00Z") }
            do { control.seek(try ReplayControl.SeekTarget.parse(value)) } catch { return bad("\(error)") }
            return status()
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "replay-control"))
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func bad(_ reason: String) -> Response {
        Response(status: .badRequest, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: reason + "\n")))
    }
}
