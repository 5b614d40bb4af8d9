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
        .executable(name: "sim-exchange", targets: ["sim-exchange"]),
        .executable(name: "replay", targets: ["replay"]),
        .executable(name: "pipeline", targets: ["pipeline"]),
        .executable(name: "backtest", targets: ["backtest"]),
        .library(name: "Backtest", targets: ["Backtest"]),
        .library(name: "Feed", targets: ["Feed"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Replay", targets: ["Replay"]),
        .library(name: "SimExchange", targets: ["SimExchange"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Feed", dependencies: [
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "SimExchange", dependencies: [
            "Feed",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(
            name: "sim-exchange",
            dependencies: ["SimExchange", "Replay", "Pipeline", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            path: "Sources/Commands/sim-exchange", linkerSettings: rdkafkaLinker),
        .target(name: "Replay", dependencies: [
            "Feed", "CZlib", "Pipeline",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
        ]),
        .executableTarget(
            name: "replay",
            dependencies: ["Replay", "Pipeline", "Feed", "SimExchange", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Commands/replay", linkerSettings: rdkafkaLinker),
        .target(
            name: "Pipeline",
            dependencies: [
                "CRdKafka", "CZlib", "Feed",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: rdkafkaLinker
        ),
        .executableTarget(
            name: "pipeline",
            dependencies: ["Pipeline", "Feed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Sources/Commands/pipeline", linkerSettings: rdkafkaLinker),
        .target(name: "Backtest", dependencies: [
            "Feed", "Replay", "Pipeline",
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: rdkafkaLinker),
        .executableTarget(
            name: "backtest", dependencies: ["Backtest", "Pipeline", "Feed", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Commands/backtest", linkerSettings: rdkafkaLinker),
        .target(name: "CKafkaFloor", linkerSettings: [.linkedLibrary("rdkafka")] + rdkafkaLinker),
        .target(name: "Bench", dependencies: [
            "Pipeline", "Feed", "Replay", "SimExchange", "CKafkaFloor",
            .product(name: "Logging", package: "swift-log"), .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], linkerSettings: rdkafkaLinker),
        .executableTarget(
            name: "bench", dependencies: ["Bench", "Pipeline", "Feed", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Commands/bench", linkerSettings: rdkafkaLinker),
        .target(name: "TestSupport", dependencies: ["Pipeline", "CRdKafka"], path: "Tests/TestSupport", linkerSettings: rdkafkaLinker),
        .testTarget(name: "DeploymentTests", dependencies: ["Pipeline", .product(name: "Yams", package: "Yams")], linkerSettings: rdkafkaLinker),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "Pipeline", "TestSupport"], linkerSettings: rdkafkaLinker),
        .testTarget(name: "FeedTests", dependencies: ["Feed"]),
        .testTarget(name: "SimExchangeTests", dependencies: ["SimExchange", "Feed", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ReplayTests", dependencies: ["Replay", "Feed", "Pipeline", "SimExchange", "TestSupport"], linkerSettings: rdkafkaLinker),
        .testTarget(name: "BacktestTests", dependencies: ["Backtest", "Replay", "Feed", "Pipeline", "TestSupport", "SimExchange",
                                                  .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                                                  .product(name: "Logging", package: "swift-log")], linkerSettings: rdkafkaLinker),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Feed", "SimExchange", "TestSupport", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"), .product(name: "Hummingbird", package: "hummingbird")], linkerSettings: rdkafkaLinker),
    ],
    swiftLanguageModes: [.v6]
)
