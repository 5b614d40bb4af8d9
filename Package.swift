// swift-tools-version:6.2
import Foundation
import PackageDescription

/// `scripts/setup.sh` puts a librdkafka that can talk to Tansu into `.deps/lib` when the
/// system one is older than 2.2; linking looks there first and the binaries find it at run time.
let depsLib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(".deps/lib").path
let rdkafkaLinker: [LinkerSetting] = [.unsafeFlags(["-L\(depsLib)", "-Xlinker", "-rpath", "-Xlinker", depsLib])]

let package = Package(
    name: "MarketStream",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench", targets: ["bench"]),
        .library(name: "Feed", targets: ["Feed"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Replay", targets: ["Replay"]),
        .library(name: "SimExchange", targets: ["SimExchange"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Feed"),
        .target(name: "SimExchange", dependencies: ["Feed"]),
        .target(name: "Replay", dependencies: ["Feed", "CZlib"]),
        .target(
            name: "Pipeline",
            dependencies: ["CRdKafka", "CZlib", "Feed", .product(name: "Logging", package: "swift-log")],
            linkerSettings: rdkafkaLinker
        ),
        .target(name: "CKafkaFloor", linkerSettings: [.linkedLibrary("rdkafka")] + rdkafkaLinker),
        .target(name: "Bench", dependencies: ["Pipeline", "Feed", "CKafkaFloor"]),
        .executableTarget(
            name: "bench", dependencies: ["Bench", "Pipeline", "Feed", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Commands/bench", linkerSettings: rdkafkaLinker),
        .target(name: "TestSupport", dependencies: ["Pipeline", "CRdKafka"], path: "Tests/TestSupport", linkerSettings: rdkafkaLinker),
        .testTarget(name: "FeedTests", dependencies: ["Feed"]),
        .testTarget(name: "SimExchangeTests", dependencies: ["SimExchange", "Feed"]),
        .testTarget(name: "ReplayTests", dependencies: ["Replay", "Feed"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Feed", "TestSupport"], linkerSettings: rdkafkaLinker),
    ],
    swiftLanguageModes: [.v6]
)
