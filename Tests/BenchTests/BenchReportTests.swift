import Bench
import Foundation
import Pipeline
import Testing
import TestSupport

@Suite("bench --quick report", .serialized)
struct BenchReportTests {
    @Test func everyScenarioReportsSaneNumbersAndTheReportRoundTrips() async throws {
        var results = CodecScenarios.run(trades: 20_000)
        results += try await KafkaScenarios(config: try TestBroker.config(), messages: 5_000).run()
        let expected = ["finnhub frame decode (trades)", "finnhub frame encode (trades)", "kafka value encode", "kafka value decode+validate",
                        "produce (C floor)", "produce (Swift layer)", "consume (C floor)", "consume (Swift layer)"]
        #expect(results.map(\.scenario) == expected)
        for r in results {
            #expect(r.messages > 0, "\(r.scenario)")
            #expect(r.messageBytes > 0, "\(r.scenario)")
            #expect(r.seconds > 0 && r.seconds.isFinite, "\(r.scenario)")
            #expect(r.messagesPerSecond > 0 && r.messagesPerSecond.isFinite, "\(r.scenario)")
            #expect(r.megabytesPerSecond > 0 && r.megabytesPerSecond.isFinite, "\(r.scenario)")
            #expect(r.cpuSeconds >= 0 && r.cpuSeconds.isFinite, "\(r.scenario)")
        }
        #expect(results.filter { $0.scenario.contains("Swift layer") }.allSatisfy { ($0.ratioToFloor ?? 0) > 0 })
        #expect(results.first { $0.scenario == "consume (Swift layer)" }?.messages == 5_000)

        let report = BenchReport(date: "2026-11-25T00:00:00Z", cores: 2, memoryGB: 24, librdkafka: KafkaAdmin.librdkafkaVersion, broker: "Tansu", build: "debug", results: results)
        let table = report.table()
        for name in expected { #expect(table.contains(name)) }
        #expect(table.contains("librdkafka \(KafkaAdmin.librdkafkaVersion)"))
        let decoded = try JSONDecoder().decode(BenchReport.self, from: JSONEncoder().encode(report))
        #expect(decoded.results == results)
        let comparison = report.compare(to: decoded)
        #expect(comparison.regressions.isEmpty)
        var slower = decoded
        slower.results[0].seconds *= 0.5
        #expect(report.compare(to: slower).regressions == [expected[0]])
    }
}
