import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
import Logging
/// Defaults shared by the command-line tools and the deployment files (Compose, Kubernetes);
/// a test checks that those files agree with these values.
public enum ServiceDefaults {
    /// Port of `sim-exchange`'s WebSocket (and `/health`) endpoint.
    public static let simExchangePort = 9001
    /// Prometheus `/metrics` ports, one per service so they can share a host.
    public static let metricsPorts: [String: Int] = [
        "producer": 9101, "logger": 9102, "aggregator": 9103, "storage": 9104,
    ]
    /// Consumer group of each consumer type; instances of one type share it and split the partitions.
    public static let consumerGroups: [String: String] = [
        "logger": "market-logger", "aggregator": "market-aggregator", "storage": "market-storage",
    ]
    /// Environment variables the services read.
    public static let environment = ["KAFKA_BOOTSTRAP_SERVERS", "FINNHUB_API_KEY", "FINNHUB_URL", "SYMBOLS", "DATA_DIR"]
    /// The seed's default symbols.
    public static let symbols = ["AAPL", "GOOGL", "MSFT", "TSLA"]
}

