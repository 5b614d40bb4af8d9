import MarketData
import CRdKafka
import Foundation
import Logging

/// Where Kafka is and how to talk to it.
///
/// `properties` are librdkafka configuration properties passed through unchanged, so
/// SASL/SSL for hosted clusters needs no code: set `security.protocol`, `sasl.mechanism`,
/// `sasl.username`, … here, through `KAFKA_*` variables, or with `-X key=value` flags.
public struct KafkaConfig: Sendable {
    /// The local broker that `scripts/broker.sh start` runs.
    public static let defaultBootstrapServers = "127.0.0.1:9092"

    public var bootstrapServers: String
    public var properties: [String: String]

    public init(bootstrapServers: String = KafkaConfig.defaultBootstrapServers, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// Reads `KAFKA_BOOTSTRAP_SERVERS` and every other `KAFKA_<NAME>` setting, which becomes
    /// the librdkafka property `<name>` lower-cased with `_` turned into `.`
    /// (`KAFKA_SASL_MECHANISM=PLAIN` → `sasl.mechanism=PLAIN`).
    public static func from(settings: Settings) -> KafkaConfig {
        var config = KafkaConfig(bootstrapServers: settings["KAFKA_BOOTSTRAP_SERVERS"] ?? defaultBootstrapServers)
        for (key, value) in settings.values where key.hasPrefix("KAFKA_") && key != "KAFKA_BOOTSTRAP_SERVERS" {
            let name = key.dropFirst("KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
            config.environmentProperties[name] = value
        }
        return config
    }

    /// Properties from `KAFKA_*` variables: unknown names are skipped with a warning rather
    /// than failing, since the environment may hold unrelated `KAFKA_` variables.
    public var environmentProperties: [String: String] = [:]

    /// Applies a `key=value` override (the `-X` flag of the command-line tools).
    public mutating func set(_ assignment: String) throws(KafkaError) {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw .configuration("expected key=value, got \"\(assignment)\"")
        }
        properties[String(assignment[..<eq])] = String(assignment[assignment.index(after: eq)...])
    }

    /// The properties a client is created with: `defaults`, then the environment's, then
    /// explicit ones, each overriding the one before.
    func resolved(defaults: [String: String]) -> (strict: [(String, String)], lenient: [(String, String)]) {
        var strict = defaults
        strict["bootstrap.servers"] = bootstrapServers
        for (k, v) in properties { strict[k] = v }
        let lenient = environmentProperties.filter { properties[$0.key] == nil && $0.key != "bootstrap.servers" }
        for k in lenient.keys { strict.removeValue(forKey: k) }
        return (strict.sorted { $0.key < $1.key }, lenient.sorted { $0.key < $1.key })
    }
}

extension KafkaConfig {
    /// Every property a ``KafkaProducer`` made from this configuration is created with,
    /// `bootstrap.servers` included: its defaults, then the environment's, then explicit ones.
    public var producerProperties: [(key: String, value: String)] { flattened(KafkaProducer.defaults) }

    /// Every property a ``KafkaConsumer`` with ``KafkaConsumer/CommitPolicy/storedOffsets`` made from
    /// this configuration is created with, except `group.id`.
    public var consumerProperties: [(key: String, value: String)] { flattened(KafkaConsumer.defaults(for: .storedOffsets)) }

    private func flattened(_ defaults: [String: String]) -> [(key: String, value: String)] {
        let (strict, lenient) = resolved(defaults: defaults)
        return (strict + lenient).map { (key: $0.0, value: $0.1) }
    }
}

/// Shared construction of librdkafka handles.
enum RdKafka {
    /// librdkafka's own log lines; level from `RDKAFKA_LOG_LEVEL` (default `error`: connection
    /// retries are reported through the API's errors instead).
    static let logger: Logger = {
        var logger = Logger(label: "kafka.librdkafka")
        logger.logLevel = ProcessInfo.processInfo.environment["RDKAFKA_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return logger
    }()

    /// The librdkafka version the process runs against, e.g. "2.16.0".
    static var version: String { String(cString: rd_kafka_version_str()) }

    /// Builds a configuration object; the caller owns it until `rd_kafka_new` succeeds.
    static func makeConf(_ config: KafkaConfig, defaults: [String: String]) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw .configuration("rd_kafka_conf_new failed") }
        let (strict, lenient) = config.resolved(defaults: defaults)
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in strict {
            if rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw .configuration("\(key)=\(redact(key, value)): \(cString(errstr))")
            }
        }
        for (key, value) in lenient where rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
            logger.warning("ignoring KAFKA_ setting \(key)=\(redact(key, value)): \(cString(errstr))")
        }
        rd_kafka_conf_set_log_cb(conf) { _, level, fac, buf in
            let text = "\(fac.map { String(cString: $0) } ?? ""): \(buf.map { String(cString: $0) } ?? "")"
            switch level {
            case 0...2: RdKafka.logger.error("\(text)")
            case 3: RdKafka.logger.warning("\(text)")
            case 4: RdKafka.logger.notice("\(text)")
            case 5, 6: RdKafka.logger.info("\(text)")
            default: RdKafka.logger.debug("\(text)")
            }
        }
        return conf
    }

    static func redact(_ key: String, _ value: String) -> String {
        key.contains("password") || key.contains("secret") || key.contains("key") ? "***" : value
    }

    /// Creates a client; on success librdkafka owns `conf`, on failure it is destroyed here.
    static func makeHandle(type: rd_kafka_type_t, conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw .configuration(cString(errstr))
        }
        return handle
    }
}

/// The text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
