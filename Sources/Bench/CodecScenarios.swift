import Pipeline
import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import SimExchange
import Foundation

/// Finnhub frame decode and encode, and Kafka trade-message encode and decode, in-process.
public enum CodecScenarios {
    public static func run(trades: Int) -> [BenchResult] {
        let perFrame = 10
        let symbols = ["AAPL", "GOOGL", "MSFT", "TSLA", "BINANCE:BTCUSDT"]
        let frames: [String] = (0..<(trades / perFrame)).map { f in
            FinnhubCodec.encodeTrades((0..<perFrame).map { i in
                let n = f * perFrame + i
                let symbol = symbols[n % symbols.count]
                return Trade(symbol: symbol, price: 100 + Double(n % 1000) / 100, timestamp: 1_700_000_000_000 + Int64(n),
                             volume: Double(1 + n % 300), conditions: symbol.contains(":") ? nil : ["1", "12"])
            })
        }
        let bytes = frames.reduce(0) { $0 + $1.utf8.count } / max(frames.count, 1)
        // Each frame's trades go to a consumer (a checksum over every field), as the Feed hands them on.
        var count = 0
        var checksum: UInt64 = 0
        let decode = measure {
            for var frame in frames {
                frame.withUTF8 { buf in
                    guard case .trades(let t)? = try? FinnhubCodec.decode(UnsafeRawBufferPointer(buf)) else { return }
                    count += t.count
                    for trade in t {
                        checksum = checksum &+ trade.price.bitPattern ^ trade.volume.bitPattern &+ UInt64(bitPattern: trade.timestamp)
                            &+ UInt64(trade.symbol.utf8.count) &+ UInt64(trade.conditions?.count ?? 0)
                    }
                }
            }
        }
        precondition(count == frames.count * perFrame && checksum != 0, "every frame decodes")
        var decoded: [Trade] = []
        decoded.reserveCapacity(trades)
        for var frame in frames {
            frame.withUTF8 { buf in
                if case .trades(let t)? = try? FinnhubCodec.decode(UnsafeRawBufferPointer(buf)) { decoded.append(contentsOf: t) }
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        let encode = measure {
            var i = 0
            while i < decoded.count {
                out.removeAll(keepingCapacity: true)
                FinnhubCodec.encodeTrades(Array(decoded[i..<min(i + perFrame, decoded.count)]), into: &out)
                i += perFrame
            }
        }
        var messages: [[UInt8]] = []
        messages.reserveCapacity(decoded.count)
        let msgEncode = measure { for t in decoded { messages.append(TradeMessage.encode(t)) } }
        var valid = 0
        // As the consumers decode: one memo per batch of 1,000 messages.
        let msgDecode = measure {
            var memo = TradeMessage.Memo()
            for (i, m) in messages.enumerated() {
                if i % 1000 == 0 { memo = TradeMessage.Memo() }
                m.withUnsafeBytes { if (try? TradeMessage.decode($0, memo: &memo)) != nil { valid += 1 } }
            }
        }
        var plainValid = 0
        let plainDecode = measure {
            for m in messages { m.withUnsafeBytes { if (try? TradeMessage.decode($0)) != nil { plainValid += 1 } } }
        }
        let msgBytes = messages.first?.count ?? 0
        return [
            BenchResult(scenario: "finnhub frame decode (trades)", messages: decoded.count, messageBytes: bytes / perFrame, seconds: decode.seconds, cpuSeconds: decode.cpu, note: "\(perFrame) trades per frame, \(bytes) bytes per frame; each frame's trades handed to a checksum of every field"),
            BenchResult(scenario: "finnhub frame encode (trades)", messages: decoded.count, messageBytes: bytes / perFrame, seconds: encode.seconds, cpuSeconds: encode.cpu),
            BenchResult(scenario: "kafka value encode", messages: messages.count, messageBytes: msgBytes, seconds: msgEncode.seconds, cpuSeconds: msgEncode.cpu),
            BenchResult(scenario: "kafka value decode+validate", messages: valid, messageBytes: msgBytes, seconds: msgDecode.seconds, cpuSeconds: msgDecode.cpu, note: "a memo of symbols and condition lists per 1,000 messages, as the consumers decode"),
            BenchResult(scenario: "kafka value decode+validate, no memo", messages: plainValid, messageBytes: msgBytes, seconds: plainDecode.seconds, cpuSeconds: plainDecode.cpu),
        ]
    }
}
