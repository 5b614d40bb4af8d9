import Kafka
import Foundation

/// Calls into the C floor (`CKafkaFloor`) with the Swift layer's own client settings.
enum CFloor {
    /// Runs `call` with `config`'s ``KafkaConfig/producerProperties`` and
    /// ``KafkaConfig/consumerProperties`` (what the Swift layer's clients are created with, so `-X`
    /// and `KAFKA_*` settings reach both sides of a comparison) as NULL-terminated C arrays, and a
    /// 512-byte error buffer; a non-zero return throws `what` with the C side's message.
    static func run(_ what: String, config: KafkaConfig,
                    _ call: (_ producer: UnsafePointer<UnsafePointer<CChar>?>, _ consumer: UnsafePointer<UnsafePointer<CChar>?>,
                             _ err: UnsafeMutablePointer<CChar>, _ errlen: Int) -> Int32) throws {
        let producer = cStrings(config.producerProperties), consumer = cStrings(config.consumerProperties)
        defer { for p in producer + consumer { free(p) } }
        var err = [CChar](repeating: 0, count: 512)
        let rc = producer.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { p in
            consumer.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { c in
                err.withUnsafeMutableBufferPointer { e in call(p.baseAddress!, c.baseAddress!, e.baseAddress!, e.count) }
            }
        }
        if rc != 0 {
            throw KafkaScenarios.Failure(description: "\(what): \(String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
    }

    /// `strdup`ed keys and values, then a NULL.
    private static func cStrings(_ pairs: [(key: String, value: String)]) -> [UnsafeMutablePointer<CChar>?] {
        pairs.flatMap { [strdup($0.key), strdup($0.value)] } + [nil]
    }
}
