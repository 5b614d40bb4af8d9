@testable import SimExchange
@testable import Feeds
@testable import MarketData
@testable import Exchange
import Testing

private let start: Int64 = 1_680_000_000_000
private let symbols = ["AAPL", "MSFT", "BINANCE:BTCUSDT", "TSLA", "OANDA:EUR_USD"]

private func run(_ market: inout SyntheticMarket, seconds: Int, stepMs: Int64 = 250) -> [Trade] {
    var trades: [Trade] = []
    for _ in 0..<(Int64(seconds) * 1000 / stepMs) { trades += market.advance(byMilliseconds: stepMs) }
    return trades
}

private struct Fingerprint: Equatable {
    var price: Double, volume: Double, conditions: [String]?
    init(_ t: Trade) { price = t.price; volume = t.volume; conditions = t.conditions }
}

@Suite struct SyntheticMarketTests {
    @Test func sameInputsGiveIdenticalBytes() {
        var a = SyntheticMarket(seed: 99, symbols: symbols, startMilliseconds: start, tradesPerSecond: 2_000)
        var b = SyntheticMarket(seed: 99, symbols: symbols.reversed(), startMilliseconds: start, tradesPerSecond: 2_000)
        var total = 0
        for step in [1, 10, 100, 1_000, 7] as [Int64] {
            let x = a.advance(byMilliseconds: step), y = b.advance(byMilliseconds: step)
            let identical = FinnhubCodec.encodeTrades(x) == FinnhubCodec.encodeTrades(y)
            #expect(identical, "step \(step)")
            total += x.count
        }
        #expect(total > 1_500)
        #expect(a.now == start + 1_118)
        var c = SyntheticMarket(seed: 100, symbols: symbols, startMilliseconds: start, tradesPerSecond: 2_000)
        var d = SyntheticMarket(seed: 99, symbols: symbols, startMilliseconds: start, tradesPerSecond: 2_000)
        #expect(c.advance(byMilliseconds: 1_000) != d.advance(byMilliseconds: 1_000))
    }

    @Test func symbolStreamIgnoresOtherSymbolsAndRate() {
        var alone = SyntheticMarket(seed: 5, symbols: ["AAPL"], startMilliseconds: start, tradesPerSecond: 50)
        var crowded = SyntheticMarket(seed: 5, symbols: ["MSFT", "AAPL", "BINANCE:ETHUSDT"], startMilliseconds: start, tradesPerSecond: 10_000)
        let a = run(&alone, seconds: 40).filter { $0.symbol == "AAPL" }.map(Fingerprint.init)
        let b = run(&crowded, seconds: 40).filter { $0.symbol == "AAPL" }.map(Fingerprint.init)
        #expect(a.count > 1_000)
        #expect(b.count > a.count)
        #expect(Array(b.prefix(a.count)) == a)
    }

    @Test func addedSymbolStartsAtCurrentTimeAndRemovedStops() {
        var m = SyntheticMarket(seed: 1, symbols: ["AAPL"], startMilliseconds: start, tradesPerSecond: 1_000)
        _ = m.advance(byMilliseconds: 5_000)
        m.add(symbol: "MSFT")
        m.add(symbol: "MSFT")
        #expect(m.symbols == ["AAPL", "MSFT"])
        let later = m.advance(byMilliseconds: 5_000)
        #expect(later.contains { $0.symbol == "MSFT" })
        #expect(later.allSatisfy { $0.timestamp >= start + 5_000 })
        var fresh = SyntheticMarket(seed: 1, symbols: ["MSFT"], startMilliseconds: 0, tradesPerSecond: 1)
        let freshPrices = run(&fresh, seconds: 600, stepMs: 60_000).prefix(20).map(Fingerprint.init)
        #expect(Array(later.filter { $0.symbol == "MSFT" }.prefix(20).map(Fingerprint.init)) == freshPrices)
        m.remove(symbol: "AAPL")
        #expect(m.advance(byMilliseconds: 5_000).allSatisfy { $0.symbol == "MSFT" })
    }

    @Test(arguments: [1_000.0, 5_000.0, 20_000.0])
    func totalRateMatchesOverSixtySeconds(rate: Double) {
        var m = SyntheticMarket(seed: UInt64(rate), symbols: symbols, startMilliseconds: start, tradesPerSecond: rate)
        let count = run(&m, seconds: 60).count
        #expect(abs(Double(count) - rate * 60) <= rate * 6, "\(count) trades")
    }

    @Test func outputIsOrderedWithinTheIntervalAndAdvancesTheClock() {
        var m = SyntheticMarket(seed: 3, symbols: symbols, startMilliseconds: start, tradesPerSecond: 20_000)
        for step in [1, 3, 50, 1_000, 200_000] as [Int64] {
            let from = m.now
            let trades = m.advance(byMilliseconds: step)
            #expect(m.now == from + step)
            #expect(trades.allSatisfy { $0.timestamp >= from && $0.timestamp < from + step })
            #expect(zip(trades, trades.dropFirst()).allSatisfy { ($0.timestamp, $0.symbol) <= ($1.timestamp, $1.symbol) })
        }
    }

    @Test func burstsShrinkGaps() {
        var m = SyntheticMarket(seed: 11, symbols: ["AAPL"], startMilliseconds: 0, tradesPerSecond: 10)
        let perBin = (0..<600).map { _ in m.advance(byMilliseconds: 500).count }.sorted()
        #expect(perBin[590] >= 4 * perBin[300], "\(perBin)")
    }

    @Test func pricesVolumesAndConditionsAreRealistic() {
        var m = SyntheticMarket(seed: 8, symbols: symbols, startMilliseconds: start, tradesPerSecond: 5_000)
        let trades = run(&m, seconds: 30)
        #expect(trades.count > 100_000)
        let offTick = trades.filter { t in
            let ticks = t.price * 100
            return !(t.price > 0) || abs(ticks - ticks.rounded()) > 1e-9 * ticks
        }
        #expect(offTick.isEmpty, "\(offTick.prefix(5))")
        let crypto = trades.filter { $0.symbol.contains(":") }, stocks = trades.filter { !$0.symbol.contains(":") }
        #expect(crypto.allSatisfy { $0.conditions == nil && $0.price >= 30_000 && $0.price <= 70_000 })
        #expect(crypto.allSatisfy { t in
            let scaled = t.volume * 100_000_000
            return t.volume > 0 && abs(scaled - scaled.rounded()) < 1e-6
        })
        #expect(crypto.contains { $0.volume != $0.volume.rounded() })
        #expect(Set(crypto.map { fractionDigits($0.volume) }).isSuperset(of: [5, 6, 7, 8]))
        #expect(stocks.allSatisfy { $0.volume >= 1 && $0.volume <= 500 && $0.volume == $0.volume.rounded() && $0.conditions != nil })
        #expect(stocks.contains { $0.volume == 300 } && stocks.contains { $0.volume == 37 })
        #expect(Set(stocks.map { $0.conditions ?? ["nil"] }).isSuperset(of: [["1"], ["1", "12"], []]))
        let firstPrices = Dictionary(trades.map { ($0.symbol, $0.price) }, uniquingKeysWith: { first, _ in first })
        for symbol in ["AAPL", "MSFT", "TSLA"] { #expect((19.9...500.1).contains(firstPrices[symbol]!)) }
        #expect(Set(firstPrices.values).count == symbols.count)
    }
}

private func fractionDigits(_ x: Double) -> Int {
    var scale = 1.0
    for digits in 0...12 {
        if (x * scale).rounded() / scale == x { return digits }
        scale *= 10
    }
    return 13
}
