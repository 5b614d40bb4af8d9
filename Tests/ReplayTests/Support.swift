@testable import Feeds
@testable import Recording
import MarketData
import Pipeline
import Kafka
import SimExchange
import MarketStreamTesting
import Foundation

func writeText(_ path: String, _ text: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) }

let testHeader = RecordingHeader(source: "wss://ws.finnhub.io", symbols: ["BINANCE:BTCUSDT", "AAPL"], startNs: 1_700_000_000_000_000_000, createdBy: "tests")
let headerLine = testHeader.jsonLine

/// Runs a command and returns its stdout.
func run(_ args: [String]) throws -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return data
}
