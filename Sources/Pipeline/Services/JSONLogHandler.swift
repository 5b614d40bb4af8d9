import Kafka
import Feeds
import Aggregation
import MarketData
import Recording
import Foundation
import Logging

/// One JSON object per log line on stderr: `{"ts":…,"level":…,"label":…,"message":…,<metadata>}`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var out: [UInt8] = Array(#"{"ts":"#.utf8)
        JSONOutput.appendString(Date().formatted(.iso8601), to: &out)
        out += Array(#","level":"#.utf8)
        JSONOutput.appendString(event.level.rawValue, to: &out)
        out += Array(#","label":"#.utf8)
        JSONOutput.appendString(label, to: &out)
        out += Array(#","message":"#.utf8)
        JSONOutput.appendString(event.message.description, to: &out)
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            out.append(UInt8(ascii: ","))
            JSONOutput.appendString(k, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONOutput.appendString("\(v)", to: &out)
        }
        out += Array("}\n".utf8)
        FileHandle.standardError.write(Data(out))
    }
}
