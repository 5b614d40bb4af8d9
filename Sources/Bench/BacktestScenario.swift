import Backtest
import Recording
import MarketData
import Foundation

/// `backtest` end to end (read, decode, windows, strategy, fills) over the same synthetic recording as
/// JSONL and as its binary tape (`replay pack`), in alternating rounds (J T, T J, …) so a disturbance
/// on the machine lands on both.
public struct BacktestScenario: Sendable {
    public var trades: Int
    public var rounds = 2
    public var strategy = "breakout"
    public init(trades: Int) { self.trades = trades }

    public func run() throws -> [BenchResult] {
        let recording = ReplayScenarios(config: nil, trades: trades, pacingSpan: 0)
        let jsonl = try recording.makeRecording(trades: trades, frameGapNs: 10_000_000)
        let tape = jsonl + ".mstape"
        defer { try? FileManager.default.removeItem(atPath: jsonl); try? FileManager.default.removeItem(atPath: tape) }
        let packed = try BinaryTape.pack(recording: jsonl, to: tape)
        let size = { (path: String) in ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) / max(trades, 1) }
        var totals: [String: (n: Int, s: Double, cpu: Double)] = [:]
        for round in 0..<rounds {
            for path in round % 2 == 0 ? [jsonl, tape] : [tape, jsonl] {
                let c0 = processCPUSeconds()
                let r = try Backtest.run(path: path, strategy: try Strategies.make(strategy, parameters: []))
                let t = totals[path] ?? (0, 0, 0)
                totals[path] = (t.n + r.report.trades, t.s + Double(r.wallNs) / 1e9, t.cpu + processCPUSeconds() - c0)
            }
        }
        let j = totals[jsonl]!, t = totals[tape]!
        return [
            BenchResult(scenario: "backtest, JSONL recording", messages: j.n, messageBytes: size(jsonl), seconds: j.s, cpuSeconds: j.cpu,
                        note: "\(strategy) over \(trades) trades of \(recording.symbols.count) symbols, \(rounds) rounds; reading and decoding on two threads"),
            BenchResult(scenario: "backtest, binary tape", messages: t.n, messageBytes: size(tape), seconds: t.s, cpuSeconds: t.cpu,
                        note: "the same recording after `replay pack` (\(packed.verifiedTrades) trades verified); trade records read directly"),
        ]
    }
}
