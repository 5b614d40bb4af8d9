@testable import Feeds
@testable import Recording
import MarketData
import Pipeline
import Kafka
import SimExchange
import MarketStreamTesting
import Foundation
import Testing

/// Converts with `importer`, reads the recording back and decodes every trade.
func importAndRead(_ importer: some TradeImporter) throws -> (ImportStats, [RecordedFrame], [Trade]) {
    let out = tempDir() + "/import.jsonl.gz"
    let stats = try importer.convert(to: out)
    let frames = try RecordingReader(path: out).readAll()
    var trades: [Trade] = []
    for f in frames {
        guard case .trades(let t) = try FinnhubCodec.decode(f.frame) else { Issue.record("not a trade frame"); continue }
        trades += t
    }
    return (stats, frames, trades)
}

/// Heavy real-data imports and the real-clock timing test must not overlap on a 2-core machine.
@Suite(.serialized) struct SerializedTests {}

extension SerializedTests {
@Suite struct ImporterTests {
    @Test(.enabled(if: realDataDir() != nil, "needs ../shared/data/real (or MARKET_DATA_REAL_DIR)"))
    func tardis() throws {
        let dir = try #require(realDataDir())
        let path = dir + "/tardis_binance-futures_BTCUSDT_trades_2020-02-22.csv"
        let rows = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
            .split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        let (stats, frames, trades) = try importAndRead(TardisTradesImporter(path: path))
        var groups = 0, prev = ""
        for r in rows where r[3] != prev { groups += 1; prev = r[3] }
        #expect(stats.rowsRead == rows.count && stats.tradesWritten == rows.count && stats.rowsSkipped == 0)
        #expect(frames.count == groups && stats.framesWritten == groups)
        #expect(trades.count == rows.count)
        for (t, r) in [(trades.first!, rows.first!), (trades.last!, rows.last!)] {
            #expect(t == Trade(symbol: "BINANCE:BTCUSDT", price: Double(r[6])!, timestamp: Int64(r[2])! / 1000, volume: Double(r[7])!, conditions: nil))
        }
        #expect(frames.first!.recvNs == Int64(rows.first![3])! * 1000)
        #expect(frames.last!.recvNs == Int64(rows.last![3])! * 1000)
    }

    @Test(.enabled(if: realDataDir() != nil, "needs ../shared/data/real (or MARKET_DATA_REAL_DIR)"))
    func binanceRaw() throws {
        let dir = try #require(realDataDir())
        let path = dir + "/binance-coinm_BTCUSD_PERP_20240808_raw.txt.gz"
        let lines = String(decoding: try run(["gzip", "-dc", path]), as: UTF8.self).split(separator: "\n")
        let tradeLines = lines.filter { $0.contains(#""e":"trade""#) }
        let (stats, frames, trades) = try importAndRead(BinanceRawImporter(path: path))
        #expect(stats.rowsRead == lines.count)
        #expect(stats.tradesWritten == tradeLines.count && frames.count == tradeLines.count && trades.count == tradeLines.count)
        #expect(stats.rowsSkipped == lines.count - tradeLines.count)
        #expect(stats.skipped["not a stream frame"] == 1)
        for (t, l, f) in [(trades.first!, tradeLines.first!, frames.first!), (trades.last!, tradeLines.last!, frames.last!)] {
            let sp = l.firstIndex(of: " ")!
            let d = (try JSONSerialization.jsonObject(with: Data(l[l.index(after: sp)...].utf8)) as! [String: Any])["data"] as! [String: Any]
            #expect(f.recvNs == Int64(l[..<sp])!)
            #expect(t == Trade(symbol: "BINANCE:BTCUSD_PERP", price: Double(d["p"] as! String)!, timestamp: (d["T"] as! NSNumber).int64Value,
                               volume: Double(d["q"] as! String)!, conditions: nil))
        }
    }

    @Test(.enabled(if: realDataDir() != nil, "needs ../shared/data/real (or MARKET_DATA_REAL_DIR)"))
    func leanSpy() throws {
        let dir = try #require(realDataDir())
        let path = dir + "/lean_spy_tick_20131007_trade.zip"
        let rows = String(decoding: try run(["unzip", "-p", path, "20131007_spy_Trade_Tick.csv"]), as: UTF8.self)
            .split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        let kept = rows.filter { Int($0[5]) == 0 }
        let (stats, frames, trades) = try importAndRead(LeanTickImporter(path: path))
        #expect(stats.rowsRead == rows.count && stats.tradesWritten == kept.count)
        #expect(stats.skipped["suspicious", default: 0] == rows.count - kept.count)
        #expect(trades.count == kept.count)
        var groups = 0, prev = ""
        for r in kept where r[0] != prev { groups += 1; prev = r[0] }
        #expect(frames.count == groups)
        let midnightUTCms: Int64 = 1_381_104_000_000 + 4 * 3_600_000  // 2013-10-07 00:00 EDT (UTC-4)
        for (t, r) in [(trades.first!, kept.first!), (trades.last!, kept.last!)] {
            #expect(t == Trade(symbol: "SPY", price: Double(r[1])! / 10000, timestamp: midnightUTCms + Int64(r[0])!, volume: Double(r[2])!, conditions: []))
        }
        #expect(frames.first!.recvNs == (midnightUTCms + Int64(kept.first![0])!) * 1_000_000)
    }

    @Test func badRowsNameFileAndLineOrAreSkipped() throws {
        let path = tempDir() + "/t.csv"
        writeText(path, "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                  + "binance-futures,BTCUSDT,1000,2000,1,buy,9682,0.1\n"
                  + "binance-futures,BTCUSDT,1000,2000,2,buy,abc,0.1\n"
                  + "binance-futures,BTCUSDT,1000,3000,3,buy,9683,0.2\n")
        #expect(throws: RecordingError.self) { try TardisTradesImporter(path: path).run { _, _ in } }
        do { _ = try TardisTradesImporter(path: path).run { _, _ in } } catch let e as RecordingError {
            #expect(e.description == "t.csv:3: price is not a number: abc")
        }
        var frames: [(Int64, String)] = []
        let stats = try TardisTradesImporter(path: path, skipBad: true).run { frames.append(($0, $1)) }
        #expect(stats.skipped == ["bad price": 1] && stats.tradesWritten == 2 && frames.map(\.0) == [2_000_000, 3_000_000])
    }
}
}
