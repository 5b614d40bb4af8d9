import MarketData
/// An error reading or writing a recording, an import source, or a speed.
/// `description` reads `file:line: message` (`btc.jsonl:17: recv_ns is not an integer`).
public struct RecordingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case io, missingHeader, unsupportedFormat, unsupportedVersion, malformedLine, invalidUTF8
        case nonMonotonic, truncatedGzip, corruptData, invalidFrame, invalidRow, writerClosed
    }
    public var kind: Kind
    /// The path as given by the caller.
    public var path: String
    /// 1-based line number, when the error belongs to a line.
    public var line: Int?
    public var message: String

    public init(_ kind: Kind, path: String, line: Int? = nil, _ message: String) {
        self.kind = kind; self.path = path; self.line = line; self.message = message
    }

    public var fileName: String { path.split(separator: "/").last.map(String.init) ?? path }
    public var description: String {
        if let line { return "\(fileName):\(line): \(message)" }
        return "\(fileName): \(message)"
    }
}
