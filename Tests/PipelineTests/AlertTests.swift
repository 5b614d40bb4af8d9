@testable import Pipeline
@testable import Kafka
@testable import Aggregation
import Feeds
import MarketData
import Recording
import SimExchange
import MarketStreamTesting
import Testing

@Suite struct AlertTests {
    @Test func oncePerCrossing() throws {
        var e = AlertEngine(rules: try AlertRules.parse("AAPL:above:200, AAPL:below:150"))
        let prices: [Double] = [205, 199, 201, 202, 200, 200.5, 149, 148, 150, 140, 201.5]
        var fired: [String] = []
        for (i, p) in prices.enumerated() {
            for a in e.evaluate(Trade(symbol: "AAPL", price: p, timestamp: Int64(i), volume: 1)) { fired.append("\(a.rule)@\(i)") }
        }
        #expect(fired == ["above@2", "above@5", "below@6", "below@9", "above@10"])
        #expect(e.evaluate(Trade(symbol: "MSFT", price: 1_000, timestamp: 0, volume: 1)).isEmpty)
    }

    @Test func wildcardAndJSON() throws {
        var e = AlertEngine(rules: [AlertRule(symbol: "*", condition: .priceAbove(200))])
        #expect(e.evaluate(Trade(symbol: "AAPL", price: 199, timestamp: 1, volume: 1)).isEmpty)
        #expect(e.evaluate(Trade(symbol: "TSLA", price: 199, timestamp: 1, volume: 1)).isEmpty)
        let a = try #require(e.evaluate(Trade(symbol: "AAPL", price: 201.5, timestamp: 1_700_000_000_000, volume: 1)).first)
        #expect(String(decoding: a.jsonBytes(), as: UTF8.self) ==
            #"{"symbol":"AAPL","rule":"above","level":200,"price":201.5,"timestamp":1700000000000,"message":"AAPL crossed above 200 at 201.5"}"#)
        #expect(e.evaluate(Trade(symbol: "TSLA", price: 250, timestamp: 2, volume: 1)).count == 1)
    }

    @Test func changeAlerts() throws {
        let e = AlertEngine(rules: try AlertRules.parse("*:change:2.5,MSFT:change:1"))
        let w = WindowMetrics(symbol: "AAPL", windowStart: 0, windowEnd: 60_000, tradeCount: 2, volume: 2, vwap: 101.5, average: 101.5,
                              min: 100, max: 103, first: 100, last: 97, changePct: -3)
        let a = try #require(e.evaluate(w).first)
        #expect(e.evaluate(w).count == 1)
        #expect(String(decoding: a.jsonBytes(), as: UTF8.self) ==
            #"{"symbol":"AAPL","rule":"change","level":2.5,"window_start":0,"window_end":60000,"change_pct":-3,"price":97,"timestamp":60000,"message":"AAPL changed -3% in window [0, 60000) (threshold 2.5%)"}"#)
        var small = w; small.changePct = 2
        #expect(e.evaluate(small).isEmpty)
    }

    @Test func parsing() throws {
        let rules = try AlertRules.parse(" AAPL:above:200 ,BINANCE:BTCUSDT:BELOW:50000,*:change:2.5")
        #expect(rules == [AlertRule(symbol: "AAPL", condition: .priceAbove(200)),
                          AlertRule(symbol: "BINANCE:BTCUSDT", condition: .priceBelow(50_000)),
                          AlertRule(symbol: "*", condition: .changeBeyond(2.5))])
        #expect(try AlertRules.parse("  ").isEmpty)
        let bad: [(String, AlertRuleParseError, String)] = [
            ("AAPL:above", .missingFields(rule: "AAPL:above"), "alert rule 'AAPL:above' must look like SYMBOL:above|below|change:NUMBER"),
            ("AAPL:sideways:1", .unknownKind(rule: "AAPL:sideways:1", kind: "sideways"),
             "alert rule 'AAPL:sideways:1': unknown kind 'sideways' (expected above, below or change)"),
            ("AAPL:above:abc", .invalidLevel(rule: "AAPL:above:abc", text: "abc"), "alert rule 'AAPL:above:abc': 'abc' is not a finite number"),
            ("AAPL:above:inf", .invalidLevel(rule: "AAPL:above:inf", text: "inf"), "alert rule 'AAPL:above:inf': 'inf' is not a finite number"),
            (":above:1", .emptySymbol(rule: ":above:1"), "alert rule ':above:1' has an empty symbol (use * for all symbols)"),
            ("AAPL:above:1,,X:below:2", .emptyRule(position: 1), "alert rule #2 is empty"),
            ("AAPL:above:1,", .emptyRule(position: 1), "alert rule #2 is empty"),
            ("*:change:-1", .nonPositiveChange(rule: "*:change:-1"), "alert rule '*:change:-1': change percent must be > 0"),
        ]
        for (text, err, message) in bad {
            #expect(throws: err) { try AlertRules.parse(text) }
            #expect(err.description == message)
        }
    }
}
