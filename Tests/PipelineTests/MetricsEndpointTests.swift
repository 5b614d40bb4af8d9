import Pipeline
import Kafka
import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Metrics
import Testing

@Suite("Prometheus /metrics endpoint")
struct MetricsEndpointTests {
    @Test func servesCountersInThePrometheusTextFormatOnLoopback() async throws {
        _ = MetricsEndpoint.registry
        let port = try LocalBroker.freePort()
        let server = Task { try await MetricsEndpoint.application(port: port).run() }
        defer { server.cancel() }
        Counter(label: "test_endpoint_requests_total", dimensions: [("group", "g")]).increment(by: 3)
        var body = ""
        for _ in 0..<100 {
            if let (data, response) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!),
               (response as? HTTPURLResponse)?.statusCode == 200 {
                body = String(decoding: data, as: UTF8.self)
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(body.contains("# TYPE test_endpoint_requests_total counter"))
        #expect(body.contains(#"test_endpoint_requests_total{group="g"} 3"#))
    }
}
