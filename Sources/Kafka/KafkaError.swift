import MarketData
import CRdKafka

/// A failure reported by librdkafka or by the Kafka layer around it.
///
/// `isRetriable` tells whether the same operation may succeed if tried again (a broker
/// was down, a request timed out, a queue was full); `isFatal` means the client instance
/// can no longer be used and must be recreated. `message` carries librdkafka's own text.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int32
    public var name: String
    public var operation: String
    public var message: String
    public var isRetriable: Bool
    public var isFatal: Bool

    public init(code: Int32, name: String, operation: String, message: String, isRetriable: Bool, isFatal: Bool = false) {
        self.code = code
        self.name = name
        self.operation = operation
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
    }

    init(_ err: rd_kafka_resp_err_t, operation: String, message: String? = nil) {
        self.init(
            code: err.rawValue,
            name: String(cString: rd_kafka_err2name(err)),
            operation: operation,
            message: message ?? String(cString: rd_kafka_err2str(err)),
            isRetriable: KafkaError.retriable.contains(err.rawValue)
        )
    }

    /// Takes ownership of `error` and destroys it.
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        self.init(
            code: rd_kafka_error_code(error).rawValue,
            name: String(cString: rd_kafka_error_name(error)),
            operation: operation,
            message: String(cString: rd_kafka_error_string(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0
                || KafkaError.retriable.contains(rd_kafka_error_code(error).rawValue),
            isFatal: rd_kafka_error_is_fatal(error) != 0
        )
    }

    /// A configuration problem found before anything was sent.
    public static func configuration(_ message: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, name: "_INVALID_ARG", operation: "configure", message: message, isRetriable: false)
    }

    public var description: String {
        "\(operation): \(message) [\(name)\(isFatal ? ", fatal" : isRetriable ? ", retriable" : "")]"
    }

    private static let retriable: Set<Int32> = Set([
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE,
        RD_KAFKA_RESP_ERR__WAIT_COORD, RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE,
    ].map(\.rawValue))
}
