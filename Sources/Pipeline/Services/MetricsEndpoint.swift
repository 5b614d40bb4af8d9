import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Hummingbird
import Metrics
import Prometheus

/// Prometheus `/metrics` for a service, on 127.0.0.1 unless told otherwise.
public enum MetricsEndpoint {
    /// Installs the Prometheus backend for swift-metrics (once per process) and returns its registry.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// An HTTP server answering `GET /metrics` in the Prometheus text format.
    public static func application(host: String = "127.0.0.1", port: Int) -> some ApplicationProtocol {
        let registry = registry
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "market-pipeline"))
    }
}
