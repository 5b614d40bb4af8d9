import SimExchange
import Feeds
import MarketData
import CLI
import ArgumentParser
import Logging

/// `sim-exchange --replay FILE`: every connection gets the recording's trades from its first subscription on,
/// released at `speed` × the recorded pace (the server still frames them every --frame-interval-ms and filters
/// them by subscription).
enum ReplaySource {
    static func factory(path: String, speed: Double, loop: Bool, control: ReplayControl? = nil, logger: Logger) throws -> TradeSourceFactory {
        let tape: RecordedTradeSource.Tape
        do { tape = try RecordedTradeSource.Tape(path: path) } catch {
            throw ValidationError("--replay: \(error.description)")
        }
        logger.info("replaying \(tape.tradeCount) trades in \(tape.frames.count) frames over \(Double(tape.spanNs) / 1e9) s of recorded time at \(speed)x\(loop ? ", looping" : "")")
        control?.report { $0.firstNs = tape.firstRecvNs; $0.lastNs = tape.firstRecvNs + tape.spanNs }
        return { _, start in RecordedTradeSource(tape: tape, speed: speed, startMilliseconds: start, loop: loop, control: control) }
    }
}
