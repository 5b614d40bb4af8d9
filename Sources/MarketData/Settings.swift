import Foundation

/// Settings from the process environment layered over a `.env` file, as in the seed.
///
/// The process environment always wins over the file. `.env` lines are `KEY=VALUE`;
/// blank lines and `#` comments are ignored, `export ` prefixes are accepted, and values
/// may be wrapped in single or double quotes.
public struct Settings: Sendable {
    public var values: [String: String]

    public init(values: [String: String]) { self.values = values }

    /// Loads `.env` from `dotEnvPath` (missing file: no error) under `environment`.
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        dotEnvPath: String? = ".env"
    ) -> Settings {
        var merged: [String: String] = [:]
        if let dotEnvPath, let text = try? String(contentsOfFile: dotEnvPath, encoding: .utf8) {
            merged = parseDotEnv(text)
        }
        merged.merge(environment) { _, env in env }
        return Settings(values: merged)
    }

    public subscript(key: String) -> String? {
        guard let value = values[key], !value.isEmpty else { return nil }
        return value
    }

    /// Parses the text of a `.env` file.
    public static func parseDotEnv(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            } else if let hash = value.range(of: " #") {
                value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            if !key.isEmpty { result[key] = value }
        }
        return result
    }
}
