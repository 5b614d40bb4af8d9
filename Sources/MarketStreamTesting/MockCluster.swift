import Kafka
import Pipeline
import Feeds
import MarketData
import SimExchange
import CRdKafka
import Foundation

/// librdkafka's in-process mock cluster, for injecting broker faults deterministically.
public final class MockCluster: @unchecked Sendable {
    private let owner: OpaquePointer
    private let cluster: OpaquePointer
    public let bootstrapServers: String

    public init(brokers: Int32 = 3) {
        let conf = rd_kafka_conf_new()
        var errstr = [CChar](repeating: 0, count: 256)
        owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count)!
        cluster = rd_kafka_mock_cluster_new(owner, brokers)!
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }

    public func createTopic(_ name: String, partitions: Int32, replication: Int32 = 3) {
        rd_kafka_mock_topic_create(cluster, name, partitions, replication)
    }

    public func setBrokerDown(_ id: Int32) { rd_kafka_mock_broker_set_down(cluster, id) }
    public func setBrokerUp(_ id: Int32) { rd_kafka_mock_broker_set_up(cluster, id) }

    /// Makes the next `errors.count` Produce requests fail with these error codes, in order.
    public func failProduceRequests(_ errors: [rd_kafka_resp_err_t]) {
        var errs = errors
        rd_kafka_mock_push_request_errors_array(cluster, 0, errs.count, &errs)
    }
}
