import Kafka
import Pipeline
import Feeds
import MarketData
import SimExchange
import Foundation

/// The real-data folder: $MARKET_DATA_REAL_DIR, ../shared/data/real from the package root, or /work/shared/data/real.
public func realDataDir() -> String? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var candidates: [String] = []
    if let env = ProcessInfo.processInfo.environment["MARKET_DATA_REAL_DIR"] { candidates.append(env) }
    candidates.append(root.appendingPathComponent("../shared/data/real").standardized.path)
    candidates.append(root.appendingPathComponent("../../shared/data/real").standardized.path)
    candidates.append("/work/shared/data/real")
    return candidates.first { FileManager.default.fileExists(atPath: $0 + "/README.md") }
}
