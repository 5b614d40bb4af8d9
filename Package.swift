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
        .library(name: "Feed", targets: ["Feed"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .target(name: "Feed"),
        .target(
            name: "Pipeline",
            dependencies: ["CRdKafka", "Feed", .product(name: "Logging", package: "swift-log")],
            linkerSettings: rdkafkaLinker
        ),
        .target(name: "TestSupport", dependencies: ["Pipeline"], path: "Tests/TestSupport"),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "TestSupport"], linkerSettings: rdkafkaLinker),
    ],
    swiftLanguageModes: [.v6]
)
