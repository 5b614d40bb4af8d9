import Kafka
import Feeds
import Aggregation
import MarketData
import Recording

/// Connects `replay` to Kafka the way live mode does, with one-line errors.
public enum ReplayKafka {
    /// Checks that a broker answers (`KafkaAdmin.topics`), creates the pipeline topics when asked, and returns a
    /// publisher to `topic`. Its messages carry the key, value and timestamp live ingest gives the same trade;
    /// with `headers`, also `source` (`replay:<fileName>`) and `ingest_time`, at about twice the producer's
    /// CPU per message (librdkafka allocates each header per message).
    /// `onDeliveryFailure` sees each message Kafka did not take, as it happens (on librdkafka's thread).
    public static func connect(config: KafkaConfig, fileName: String, topic: String = Topics.rawMarketData,
                               ensureTopics: Bool = true, headers: Bool = false, timeout: Duration = .seconds(5),
                               onDeliveryFailure: (@Sendable (KafkaError) -> Void)? = nil) throws(ReplayFailure) -> TradePublisher {
        do {
            let admin = try KafkaAdmin(config: config)
            _ = try admin.topics(timeout: timeout)
            if ensureTopics { try admin.ensureTopics(timeout: timeout + .seconds(10)) }
            let producer = try KafkaProducer(config: config, onDeliveryFailure: onDeliveryFailure)
            return TradePublisher(producer: producer, topic: topic, source: "replay:" + fileName, headers: headers)
        } catch {
            throw ReplayFailure(oneLine(error))
        }
    }

    /// How replay publishes: encoding on the session's thread, producing on another. At `--speed max`
    /// trades are handed over 1024 at a time; paced, every frame is handed over at once.
    public static func pipeline(_ publisher: TradePublisher, speed: Speed) -> PipelinedPublisher {
        PipelinedPublisher(publisher, coalesce: speed == .max ? 1024 : 1)
    }

    /// Just the reachability check: a one-line error when no broker answers within `timeout`.
    public static func checkBroker(config: KafkaConfig, timeout: Duration = .seconds(5)) throws(ReplayFailure) {
        do { _ = try KafkaAdmin(config: config).topics(timeout: timeout) } catch { throw ReplayFailure(oneLine(error)) }
    }

    static func oneLine(_ e: KafkaError) -> String {
        String(describing: e).split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
