import Kafka
import Pipeline
import Feeds
import MarketData
import SimExchange
import Foundation

/// kcat, run against the librdkafka the project links (`.deps/lib` when setup put one there).
public struct Kcat {
    let path: String

    public static func locate() -> Kcat? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        return dirs.map { "\($0)/kcat" }.first { FileManager.default.isExecutableFile(atPath: $0) }.map(Kcat.init)
    }

    public func run(_ arguments: [String], input: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        let lib = LocalBroker.packageRoot + "/.deps/lib"
        if FileManager.default.fileExists(atPath: lib + "/librdkafka.so.1") { env["LD_LIBRARY_PATH"] = lib }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
