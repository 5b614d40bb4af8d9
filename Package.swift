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
        .library(name: "MarketData", targets: ["MarketData"]),
        .library(name: "Exchange", targets: ["Exchange"]),
        .library(name: "Recording", targets: ["Recording"]),
        .library(name: "Feeds", targets: ["Feeds"]),
        .library(name: "Aggregation", targets: ["Aggregation"]),
        .library(name: "Kafka", targets: ["Kafka"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "SimExchange", targets: ["SimExchange"]),
        .library(name: "Dashboard", targets: ["Dashboard"]),
        .library(name: "PostgresSink", targets: ["PostgresSink"]),
        .library(name: "Backtest", targets: ["Backtest"]),
        .library(name: "Bench", targets: ["Bench"]),
        .library(name: "MarketStreamTesting", targets: ["MarketStreamTesting"]),
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
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Market data: the trade model, the Finnhub and Kafka-value codecs, the JSON scanner and writer, gzip.
        .target(name: "MarketData", dependencies: ["CZlib"]),
        // Exchange: orders, fills, the order protocol and the tape matcher.
        .target(name: "Exchange", dependencies: ["MarketData"]),
        // Recording: the recording format, its reader and writer, importers of real history.
        .target(name: "Recording", dependencies: ["MarketData"]),
        // Feeds: the Feed protocol and every source (WebSocket, recording, synthetic, merged), the recorder.
        .target(name: "Feeds", dependencies: [
            "MarketData", "Recording",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Aggregation: event-time sliding windows, alert rules, their checkpoint codec.
        .target(name: "Aggregation", dependencies: ["MarketData"]),
        // Kafka: the librdkafka wrapper (producer, consumer, admin, partition reader) and a local broker.
        .target(name: "Kafka", dependencies: ["CRdKafka", "MarketData", .product(name: "Logging", package: "swift-log")], linkerSettings: rdkafkaLinker),
        // Pipeline: the services between a Feed and the topics (ingest, logger, aggregator, storage, dead letters).
        .target(
            name: "Pipeline",
            dependencies: [
                "Kafka", "Feeds", "Aggregation", "MarketData", "Recording",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: rdkafkaLinker
        ),
        // Dashboard: the pipeline watched through Kafka alone (non-committing reader, admin API), served as one live page.
        .target(name: "Dashboard", dependencies: [
            "Kafka", "Aggregation", "MarketData",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], linkerSettings: rdkafkaLinker),
        // PostgresSink: the storage consumer into PostgreSQL (rows and offsets in one transaction), its schema, a local server for tests.
        .target(name: "PostgresSink", dependencies: [
            "Pipeline", "Kafka", "Aggregation", "MarketData",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], linkerSettings: rdkafkaLinker),
        // SimExchange: the Finnhub-compatible server (synthetic or recorded trades, orders, faults, TLS).
        .target(name: "SimExchange", dependencies: [
            "Feeds", "Exchange", "MarketData",
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
        // Backtest: strategies over any Feed, offline or paper-trading from Kafka.
        .target(name: "Backtest", dependencies: [
            "Feeds", "Exchange", "Aggregation", "MarketData", "Recording", "Kafka", "Pipeline",
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: rdkafkaLinker),
        .target(name: "CKafkaFloor", linkerSettings: [.linkedLibrary("rdkafka")] + rdkafkaLinker),
        // Bench: every stage measured, next to the librdkafka C floor.
        .target(name: "Bench", dependencies: [
            "Pipeline", "Dashboard", "PostgresSink", "Kafka", "Feeds", "Aggregation", "MarketData", "Recording", "SimExchange", "CKafkaFloor", "Backtest",
            .product(name: "Logging", package: "swift-log"), .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], linkerSettings: rdkafkaLinker),
        // CLI: what the executables share (flags, argument types, running a service group).
        .target(name: "CLI", dependencies: [
            "MarketData", "Feeds",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(
            name: "sim-exchange",
            dependencies: ["SimExchange", "Feeds", "MarketData", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Sources/Commands/sim-exchange"),
        .executableTarget(
            name: "replay",
            dependencies: ["Pipeline", "Kafka", "Feeds", "Recording", "MarketData", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Sources/Commands/replay", linkerSettings: rdkafkaLinker),
        .executableTarget(
            name: "pipeline",
            dependencies: ["Pipeline", "Dashboard", "PostgresSink", "Kafka", "Feeds", "Aggregation", "MarketData", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Sources/Commands/pipeline", linkerSettings: rdkafkaLinker),
        .executableTarget(
            name: "backtest", dependencies: ["Backtest", "Exchange", "Aggregation", "Pipeline", "Kafka", "Feeds", "MarketData", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Commands/backtest", linkerSettings: rdkafkaLinker),
        .executableTarget(
            name: "bench", dependencies: ["Bench", "Pipeline", "Kafka", "MarketData", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Commands/bench", linkerSettings: rdkafkaLinker),
        // MarketStreamTesting: a broker, sim-exchange and feed helpers, temp folders, process runners for tests.
        .target(name: "MarketStreamTesting", dependencies: ["Kafka", "Pipeline", "PostgresSink", "Feeds", "MarketData", "SimExchange", "CRdKafka"], linkerSettings: rdkafkaLinker),
        .testTarget(name: "DeploymentTests", dependencies: ["Pipeline", "Kafka", "MarketData", "MarketStreamTesting", .product(name: "Yams", package: "Yams")], linkerSettings: rdkafkaLinker),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "CKafkaFloor", "Pipeline", "Kafka", "MarketData", "MarketStreamTesting"], linkerSettings: rdkafkaLinker),
        .testTarget(name: "FeedTests", dependencies: ["Feeds", "MarketData", "Exchange", "Recording"]),
        .testTarget(name: "SimExchangeTests", dependencies: ["SimExchange", "Feeds", "MarketData", "Exchange", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ReplayTests", dependencies: ["Feeds", "Recording", "MarketData", "Pipeline", "Aggregation", "CLI", "Kafka", "SimExchange", "MarketStreamTesting",
                                                 .product(name: "Logging", package: "swift-log")], linkerSettings: rdkafkaLinker),
        .testTarget(name: "BacktestTests", dependencies: ["Backtest", "Feeds", "Recording", "MarketData", "Exchange", "Aggregation", "Pipeline", "Kafka", "MarketStreamTesting", "SimExchange",
                                                  .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                                                  .product(name: "Logging", package: "swift-log")], linkerSettings: rdkafkaLinker),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "PostgresSink", "Kafka", "Aggregation", "Feeds", "MarketData", "Recording", "SimExchange", "MarketStreamTesting", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"), .product(name: "Hummingbird", package: "hummingbird")], linkerSettings: rdkafkaLinker),
    ],
    swiftLanguageModes: [.v6]
)
