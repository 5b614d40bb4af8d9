import Pipeline
import Kafka
import MarketData
import MarketStreamTesting
import Foundation
import Testing
import Yams

// Checks that the deployment files (Dockerfile, docker-compose.yml, kubernetes/) agree with
// the code: topics, ports, environment variables and the executables the image builds.
// The files are only parsed here; nothing is started.

/// The repository root; this file is `Tests/DeploymentTests/DeploymentTests.swift`.
private let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func text(_ path: String) throws -> String {
    try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
}

// MARK: - YAML access

extension Node {
    /// The node at a path of mapping keys.
    fileprivate func at(_ keys: String...) -> Node? {
        var node: Node? = self
        for key in keys { node = node?.mapping?[key] }
        return node
    }
    fileprivate var list: [Node] { sequence.map(Array.init) ?? [] }
    fileprivate var entries: [(key: String, value: Node)] {
        mapping?.compactMap { k, v in k.string.map { (key: $0, value: v) } } ?? []
    }
    /// A command given as a list or as one string, joined into one text.
    fileprivate var commandText: String {
        if let s = string { return s }
        return list.compactMap(\.string).joined(separator: " ")
    }
}

// MARK: - Commands

/// Whitespace-separated words of a command or shell script, quotes and `;` dropped.
private func words(_ command: String) -> [String] {
    command.split(whereSeparator: { $0.isWhitespace || $0 == ";" })
        .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
        .filter { !$0.isEmpty }
}

/// The value of `--flag value` or `--flag=value`.
private func flag(_ name: String, in words: [String]) -> String? {
    for (i, word) in words.enumerated() {
        if word == name, i + 1 < words.count { return words[i + 1] }
        if word.hasPrefix(name + "=") { return String(word.dropFirst(name.count + 1)) }
    }
    return nil
}

/// An executable of the image run by a command: `pipeline <subcommand>` or `sim-exchange`.
private struct Invocation: Hashable {
    var executable: String
    var subcommand: String?
}

private let executables: Set = ["pipeline", "sim-exchange"]

private func invocations(_ command: String) -> [Invocation] {
    let ws = words(command)
    return ws.indices.compactMap { i in
        let exe = (ws[i] as NSString).lastPathComponent
        guard executables.contains(exe), ws[i] == exe || ws[i].hasPrefix("/") else { return nil }
        return Invocation(executable: exe, subcommand: exe == "pipeline" && i + 1 < ws.count ? ws[i + 1] : nil)
    }
}

/// The `ServiceDefaults.metricsPorts` key of a `pipeline` subcommand.
private func role(_ invocation: Invocation) -> String? {
    guard invocation.executable == "pipeline", let sub = invocation.subcommand else { return nil }
    let role = sub == "produce" ? "producer" : sub
    return ServiceDefaults.metricsPorts[role] == nil ? nil : role
}

private func isAllowedEnvironment(_ name: String) -> Bool {
    ServiceDefaults.environment.contains(name) || name.hasPrefix("KAFKA_")
}

// MARK: - Dockerfile

private struct Dockerfile {
    var instructions: [(keyword: String, args: String)] = []

    init() throws {
        var logical = ""
        for line in try text("Dockerfile").split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") { continue }
            if trimmed.hasSuffix("\\") {
                logical += trimmed.dropLast() + " "
                continue
            }
            logical += trimmed
            if let space = logical.firstIndex(of: " ") {
                instructions.append((logical[..<space].uppercased(), String(logical[logical.index(after: space)...])))
            }
            logical = ""
        }
    }

    /// Instructions of the last stage.
    var runtime: [(keyword: String, args: String)] {
        let last = instructions.lastIndex { $0.keyword == "FROM" } ?? 0
        return Array(instructions[last...])
    }

    /// Products passed to `swift build --product`.
    var products: Set<String> {
        Set(instructions.filter { $0.keyword == "RUN" }.flatMap { run in
            let ws = words(run.args)
            return ws.indices.dropLast().filter { ws[$0] == "--product" }.map { ws[$0 + 1] }
        })
    }
}

// MARK: - Compose

private struct Compose {
    let services: [(name: String, node: Node)]

    init() throws {
        let node = try #require(try Yams.compose(yaml: text("docker-compose.yml")))
        services = try #require(node.at("services")).entries.map { (name: $0.key, node: $0.value) }
    }

    func service(_ name: String) -> Node? { services.first { $0.name == name }?.node }

    func command(_ name: String) -> String { service(name)?.at("command")?.commandText ?? "" }

    /// Services that run one of the image's executables.
    var imageServices: [(name: String, node: Node, invocations: [Invocation])] {
        services.compactMap { s in
            let inv = invocations(s.node.at("command")?.commandText ?? "")
            return inv.isEmpty ? nil : (s.name, s.node, inv)
        }
    }

    /// `environment` as a mapping or as a list of `KEY=VALUE`.
    func environment(_ name: String) -> [String: String] {
        guard let env = service(name)?.at("environment") else { return [:] }
        if env.mapping != nil {
            return Dictionary(env.entries.map { ($0.key, $0.value.string ?? "") }, uniquingKeysWith: { $1 })
        }
        return Dictionary(env.list.compactMap(\.string).map { item in
            let parts = item.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }, uniquingKeysWith: { $1 })
    }

    func healthcheck(_ name: String) -> String { service(name)?.at("healthcheck", "test")?.commandText ?? "" }

    /// Container ports of `ports:` entries ("9092:9092", "127.0.0.1:9092:9092", or long form).
    func containerPorts(_ name: String) -> [Int] {
        (service(name)?.at("ports")?.list ?? []).compactMap { port in
            if let target = port.at("target")?.int { return target }
            return port.string?.split(separator: ":").last.flatMap { Int($0.split(separator: "/")[0]) }
        }
    }

    /// `depends_on` entries with their conditions (nil in the short list form).
    func dependencies(_ name: String) -> [String: String?] {
        guard let deps = service(name)?.at("depends_on") else { return [:] }
        if deps.mapping != nil {
            return Dictionary(deps.entries.map { ($0.key, $0.value.at("condition")?.string) }, uniquingKeysWith: { $1 })
        }
        return Dictionary(deps.list.compactMap(\.string).map { ($0, nil) }, uniquingKeysWith: { $1 })
    }
}

// MARK: - Kubernetes

private struct Manifests {
    let documents: [(file: String, node: Node)]
    let kustomization: Node

    static let directory = "kubernetes"

    init() throws {
        let dir = root.appendingPathComponent(Self.directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        var docs: [(String, Node)] = []
        var kustomization: Node?
        for file in files {
            let yaml = try text("\(Self.directory)/\(file)")
            if file.hasPrefix("kustomization.") {
                kustomization = try Yams.compose(yaml: yaml)
                continue
            }
            for node in try Yams.compose_all(yaml: yaml) where node.mapping != nil {
                docs.append((file, node))
            }
        }
        documents = docs
        self.kustomization = try #require(kustomization, "kubernetes/kustomization.yaml is missing")
    }

    var files: Set<String> { Set(documents.map(\.file)) }

    func all(_ kind: String) -> [Node] { documents.filter { $0.node.at("kind")?.string == kind }.map(\.node) }

    func named(_ kind: String, _ name: String) -> Node? {
        all(kind).first { $0.at("metadata", "name")?.string == name }
    }

    var workloads: [Node] { all("Deployment") + all("StatefulSet") }

    /// Containers of a workload with the executables they run (`command` + `args`).
    static func containers(_ workload: Node) -> [(node: Node, words: [String], invocations: [Invocation])] {
        (workload.at("spec", "template", "spec", "containers")?.list ?? []).map { c in
            let command = [c.at("command")?.commandText, c.at("args")?.commandText].compactMap { $0 }.joined(separator: " ")
            return (c, words(command), invocations(command))
        }
    }

    /// The workload whose container runs `pipeline <subcommand>` for `role`.
    func workload(role wanted: String) -> (workload: Node, container: Node, words: [String])? {
        for w in workloads {
            for c in Self.containers(w) where c.invocations.contains(where: { role($0) == wanted }) {
                return (w, c.node, c.words)
            }
        }
        return nil
    }

    /// A probe's or Service's port, resolving a named container port.
    static func port(_ node: Node?, in container: Node) -> Int? {
        guard let node else { return nil }
        if let n = node.int { return n }
        let name = node.string
        return container.at("ports")?.list.first { $0.at("name")?.string == name }?.at("containerPort")?.int
    }

    /// Names of every variable a container gets, with `envFrom` expanded from this directory's
    /// ConfigMaps and Secrets.
    func environmentNames(_ container: Node) -> [String] {
        var names = (container.at("env")?.list ?? []).compactMap { $0.at("name")?.string }
        for source in container.at("envFrom")?.list ?? [] {
            let prefix = source.at("prefix")?.string ?? ""
            if let cm = source.at("configMapRef", "name")?.string {
                names += (named("ConfigMap", cm)?.at("data")?.entries ?? []).map { prefix + $0.key }
            }
            if let s = source.at("secretRef", "name")?.string, let secret = named("Secret", s) {
                names += ((secret.at("data")?.entries ?? []) + (secret.at("stringData")?.entries ?? [])).map { prefix + $0.key }
            }
        }
        return names
    }

    /// A value from the ConfigMap that a container's variable comes from.
    func configValue(_ variable: String, in container: Node) -> String? {
        if let entry = container.at("env")?.list.first(where: { $0.at("name")?.string == variable }) {
            if let value = entry.at("value")?.string { return value }
            if let ref = entry.at("valueFrom", "configMapKeyRef"), let cm = ref.at("name")?.string, let key = ref.at("key")?.string {
                return named("ConfigMap", cm)?.at("data", key)?.string
            }
        }
        for source in container.at("envFrom")?.list ?? [] {
            if let cm = source.at("configMapRef", "name")?.string, let value = named("ConfigMap", cm)?.at("data", variable)?.string {
                return value
            }
        }
        return nil
    }
}

private var rawMarketDataPartitions: Int {
    TopicSpec.pipelineTopics.first { $0.name == Topics.rawMarketData }!.partitions
}

// MARK: - Tests

@Suite("Deployment files agree with the code")
struct DeploymentTests {
    // MARK: Dockerfile

    @Test func dockerfileBuildsTheExecutablesTheDeploymentsRun() throws {
        let dockerfile = try Dockerfile()
        let compose = try Compose()
        let manifests = try Manifests()
        var used = Set(compose.imageServices.flatMap(\.invocations).map(\.executable))
        used.formUnion(manifests.workloads.flatMap { Manifests.containers($0).flatMap(\.invocations) }.map(\.executable))
        #expect(used == executables)
        #expect(used.isSubset(of: dockerfile.products), "built: \(dockerfile.products), run: \(used)")

        let runtime = dockerfile.runtime
        #expect(runtime.first?.args.hasPrefix("debian:bookworm-slim") == true)
        let installs = words(runtime.filter { $0.keyword == "RUN" }.map(\.args).joined(separator: " "))
        for package in ["librdkafka1", "libsnappy1v5", "zlib1g", "ca-certificates"] {
            #expect(installs.contains(package), "runtime image lacks \(package)")
        }
        #expect(runtime.contains { $0.keyword == "COPY" && $0.args.contains("/usr/local/bin") })
        let user = try #require(runtime.last { $0.keyword == "USER" }?.args)
        #expect(!["root", "0", "0:0"].contains(user), "the runtime image must not run as root")
        // `docker run IMAGE pipeline aggregator` needs an ENTRYPOINT that runs its arguments.
        if let entrypoint = runtime.last(where: { $0.keyword == "ENTRYPOINT" })?.args {
            #expect(invocations(entrypoint).isEmpty, "ENTRYPOINT \(entrypoint) would swallow the command")
        }

        // Every tool the Compose health checks call must be in the image.
        for service in compose.imageServices {
            let check = words(compose.healthcheck(service.name)).filter { !["CMD", "CMD-SHELL"].contains($0) }
            if let tool = check.first, ["wget", "curl"].contains(tool) {
                #expect(installs.contains(tool), "\(service.name)'s health check uses \(tool), which the image lacks")
            }
        }

        let ignored = Set(try text(".dockerignore").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        for entry in [".build", ".deps", "data", ".git"] {
            #expect(ignored.contains(entry) || ignored.contains(entry + "*"), ".dockerignore lacks \(entry)")
        }
    }

    // MARK: Compose

    @Test func composeCreatesThePipelineTopics() throws {
        let compose = try Compose()
        let creators = compose.imageServices.filter { $0.invocations.contains(Invocation(executable: "pipeline", subcommand: "ensure-topics")) }
        if let creator = creators.first {
            // `pipeline ensure-topics` creates TopicSpec.pipelineTopics itself; the services must wait for it.
            #expect(creators.count == 1)
            #expect(compose.environment(creator.name)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092")
            for service in compose.imageServices where service.invocations.contains(where: { role($0) != nil }) {
                let condition = compose.dependencies(service.name)[creator.name]
                #expect(condition == "service_completed_successfully", "\(service.name) must wait for \(creator.name)")
            }
        } else {
            // Otherwise kafka-topics.sh commands must create the same topics.
            let script = compose.services.map { compose.command($0.name) }.joined(separator: " ")
            let ws = words(script)
            var created: [String: (partitions: Int?, config: [String: String])] = [:]
            for i in ws.indices where ws[i].hasSuffix("kafka-topics.sh") || ws[i] == "kafka-topics" {
                let end = ws[(i + 1)...].firstIndex { $0.hasSuffix("kafka-topics.sh") || $0 == "kafka-topics" } ?? ws.endIndex
                let args = Array(ws[i..<end])
                guard args.contains("--create"), let name = flag("--topic", in: args) else { continue }
                var config: [String: String] = [:]
                for (j, w) in args.enumerated() where w == "--config" && j + 1 < args.count {
                    let kv = args[j + 1].split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { config[String(kv[0])] = String(kv[1]) }
                }
                created[name] = (flag("--partitions", in: args).flatMap { Int($0) }, config)
            }
            #expect(Set(created.keys) == Set(TopicSpec.pipelineTopics.map(\.name)))
            for spec in TopicSpec.pipelineTopics {
                #expect(created[spec.name]?.partitions == spec.partitions, "\(spec.name) partitions")
                #expect(created[spec.name]?.config == spec.config, "\(spec.name) config")
            }
        }
    }

    @Test func composeKafkaListensInsideAndOutside() throws {
        let compose = try Compose()
        let kafka = try #require(compose.service("kafka"))
        #expect(kafka.at("image")?.string?.hasPrefix("apache/kafka:") == true)
        let env = compose.environment("kafka")
        #expect(env["KAFKA_PROCESS_ROLES"]?.contains("controller") == true, "KRaft mode")
        let advertised = env["KAFKA_ADVERTISED_LISTENERS"] ?? ""
        #expect(advertised.contains("//kafka:29092"))
        #expect(advertised.contains("//localhost:9092"))
        #expect(compose.containerPorts("kafka").contains(9092))
        #expect(compose.healthcheck("kafka").contains("kafka-broker-api-versions"))

        let ui = try #require(compose.services.first { $0.node.at("image")?.string?.hasPrefix("provectuslabs/kafka-ui") == true })
        #expect(compose.containerPorts(ui.name).contains(8080))
        #expect(compose.environment(ui.name)["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:29092")
    }

    @Test func composeServicesUseTheCodesPortsAndEnvironment() throws {
        let compose = try Compose()
        var seen: Set<String> = []
        for service in compose.imageServices {
            let env = compose.environment(service.name)
            for name in env.keys {
                #expect(isAllowedEnvironment(name), "\(service.name) sets \(name), which no service reads")
            }
            if service.invocations.contains(where: { $0.executable == "pipeline" }) {
                #expect(env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092", "\(service.name)")
            }
            for (dependency, condition) in compose.dependencies(service.name) {
                #expect(condition != nil, "\(service.name) depends on \(dependency) without a condition")
            }
            let ws = words(compose.command(service.name))
            for inv in service.invocations {
                guard let role = role(inv), let port = ServiceDefaults.metricsPorts[role] else { continue }
                seen.insert(role)
                #expect(flag("--metrics-port", in: ws) == String(port), "\(service.name) metrics port")
                let check = compose.healthcheck(service.name)
                #expect(check.contains("127.0.0.1:\(port)/metrics") || check.contains("localhost:\(port)/metrics"),
                        "\(service.name) health check: \(check)")
                for published in compose.containerPorts(service.name) { #expect(published == port) }
            }
        }
        #expect(seen == Set(ServiceDefaults.metricsPorts.keys))

        let storage = try #require(compose.imageServices.first { $0.invocations.contains { role($0) == "storage" } })
        let dataDir = try #require(flag("--data-dir", in: words(compose.command(storage.name))))
        let mounts = (storage.node.at("volumes")?.list ?? []).compactMap { $0.string ?? $0.at("target")?.string }
        #expect(mounts.contains { $0.split(separator: ":").dropFirst().first.map(String.init) == dataDir || $0 == dataDir },
                "storage needs a volume at \(dataDir)")
    }

    @Test func composeProducerUsesSimExchangeOrFinnhub() throws {
        let compose = try Compose()
        let port = ServiceDefaults.simExchangePort
        let sim = try #require(compose.imageServices.first { $0.invocations.contains { $0.executable == "sim-exchange" } })
        let ws = words(compose.command(sim.name))
        #expect(flag("--port", in: ws) == String(port))
        #expect(flag("--host", in: ws) == "0.0.0.0")
        #expect(compose.healthcheck(sim.name).contains(":\(port)/health"))
        #expect(compose.containerPorts(sim.name).allSatisfy { $0 == port })

        let producer = try #require(compose.imageServices.first { $0.invocations.contains { role($0) == "producer" } })
        let script = compose.command(producer.name)
        #expect(script.contains("ws://\(sim.name):\(port)"), "producer falls back to sim-exchange")
        #expect(script.contains("FINNHUB_API_KEY"), "producer decides on FINNHUB_API_KEY")
        #expect(compose.environment(producer.name)["FINNHUB_API_KEY"] != nil)
        #expect(compose.dependencies(producer.name)[sim.name] == "service_healthy")
        let symbols = try #require(compose.environment(producer.name)["SYMBOLS"])
        let value = symbols.hasPrefix("${SYMBOLS:-") ? String(symbols.dropFirst(11).dropLast()) : symbols
        #expect(value.split(separator: ",").map(String.init) == ServiceDefaults.symbols)
    }

    @Test func envExampleNamesOnlyKnownVariables() throws {
        let lines = try text(".env.example").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        var values: [String: String] = [:]
        for line in lines {
            let kv = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            values[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        for name in values.keys { #expect(isAllowedEnvironment(name), "\(name)") }
        #expect(values["FINNHUB_API_KEY"] != nil)
        #expect(values["KAFKA_BOOTSTRAP_SERVERS"] == "localhost:9092")
    }

    // MARK: Kubernetes

    @Test func kustomizationListsEveryManifest() throws {
        let manifests = try Manifests()
        let resources = Set((manifests.kustomization.at("resources")?.list ?? []).compactMap(\.string))
        #expect(resources == manifests.files)
    }

    @Test func strimziTopicsMatchTopicSpecs() throws {
        let manifests = try Manifests()
        let kafka = try #require(manifests.all("Kafka").first)
        let cluster = try #require(kafka.at("metadata", "name")?.string)
        let brokers = manifests.all("KafkaNodePool")
            .filter { $0.at("metadata", "labels", "strimzi.io/cluster")?.string == cluster }
            .filter { ($0.at("spec", "roles")?.list ?? []).contains { $0.string == "broker" } }
            .compactMap { $0.at("spec", "replicas")?.int }.reduce(0, +)

        let topics = manifests.all("KafkaTopic")
        let byName = Dictionary(topics.map { (($0.at("spec", "topicName") ?? $0.at("metadata", "name"))?.string ?? "", $0) },
                                uniquingKeysWith: { a, _ in a })
        #expect(topics.count == TopicSpec.pipelineTopics.count)
        #expect(Set(byName.keys) == Set(TopicSpec.pipelineTopics.map(\.name)))
        for spec in TopicSpec.pipelineTopics {
            let topic = try #require(byName[spec.name])
            #expect(topic.at("metadata", "labels", "strimzi.io/cluster")?.string == cluster, "\(spec.name) label")
            #expect(topic.at("spec", "partitions")?.int == spec.partitions, "\(spec.name) partitions")
            let replicas = try #require(topic.at("spec", "replicas")?.int)
            #expect(replicas >= 1 && replicas <= brokers, "\(spec.name) replicas \(replicas) with \(brokers) brokers")
            if spec.replicationFactor > 0 { #expect(replicas == spec.replicationFactor) }
            let config = Dictionary((topic.at("spec", "config")?.entries ?? []).map { ($0.key, $0.value.string ?? "") },
                                    uniquingKeysWith: { $1 })
            for (key, value) in spec.config {
                #expect(config[key] == value, "\(spec.name) \(key)")
            }
        }
    }

    @Test func strimziClusterIsKRaftAndTheBootstrapMatches() throws {
        let manifests = try Manifests()
        let kafka = try #require(manifests.all("Kafka").first)
        let cluster = try #require(kafka.at("metadata", "name")?.string)
        #expect(kafka.at("spec", "zookeeper") == nil, "KRaft: no ZooKeeper")
        let pools = manifests.all("KafkaNodePool").filter { $0.at("metadata", "labels", "strimzi.io/cluster")?.string == cluster }
        let roles = Set(pools.flatMap { ($0.at("spec", "roles")?.list ?? []).compactMap(\.string) })
        #expect(roles.isSuperset(of: ["controller", "broker"]))
        #expect(pools.compactMap { $0.at("spec", "replicas")?.int }.reduce(0, +) == 3)

        let listener = try #require(kafka.at("spec", "kafka", "listeners")?.list.first {
            $0.at("tls")?.string == "false" && $0.at("type")?.string == "internal"
        })
        let port = try #require(listener.at("port")?.int)
        let config = try #require(manifests.all("ConfigMap").first { $0.at("data", "KAFKA_BOOTSTRAP_SERVERS") != nil })
        #expect(config.at("data", "KAFKA_BOOTSTRAP_SERVERS")?.string == "\(cluster)-kafka-bootstrap:\(port)")
        #expect(config.at("data", "SYMBOLS")?.string?.split(separator: ",").map(String.init) == ServiceDefaults.symbols)
    }

    @Test func workloadsUseTheCodesPortsReplicasAndEnvironment() throws {
        let manifests = try Manifests()
        for (role, port) in ServiceDefaults.metricsPorts {
            let (workload, container, ws) = try #require(manifests.workload(role: role), "no workload runs \(role)")
            #expect(flag("--metrics-port", in: ws) == String(port), "\(role) metrics port")
            #expect(flag("--metrics-host", in: ws) == "0.0.0.0", "\(role): probes reach the pod IP")
            let ports = (container.at("ports")?.list ?? []).compactMap { $0.at("containerPort")?.int }
            #expect(ports.contains(port), "\(role) containerPort")
            for probe in ["readinessProbe", "livenessProbe"] {
                let get = try #require(container.at(probe, "httpGet"), "\(role) \(probe)")
                #expect(get.at("path")?.string == "/metrics", "\(role) \(probe) path")
                #expect(Manifests.port(get.at("port"), in: container) == port, "\(role) \(probe) port")
            }
            for kind in ["requests", "limits"] {
                #expect(container.at("resources", kind, "cpu") != nil && container.at("resources", kind, "memory") != nil,
                        "\(role) resources.\(kind)")
            }
            let replicas = workload.at("spec", "replicas")?.int ?? 1
            if ServiceDefaults.consumerGroups[role] != nil {
                #expect(replicas >= 1 && replicas <= rawMarketDataPartitions, "\(role) replicas \(replicas)")
            }
            if role == "producer" || role == "storage" || role == "logger" { #expect(replicas == 1, "\(role) replicas") }
        }

        for workload in manifests.workloads {
            for c in Manifests.containers(workload) where !c.invocations.isEmpty {
                for name in manifests.environmentNames(c.node) {
                    #expect(isAllowedEnvironment(name), "\(workload.at("metadata", "name")?.string ?? "?") sets \(name)")
                }
                if c.invocations.contains(where: { $0.executable == "pipeline" }) {
                    #expect(manifests.configValue("KAFKA_BOOTSTRAP_SERVERS", in: c.node)?.hasSuffix("-kafka-bootstrap:9092") == true)
                }
            }
        }
    }

    @Test func storageKeepsItsDataOnAPersistentVolume() throws {
        let manifests = try Manifests()
        let (workload, container, ws) = try #require(manifests.workload(role: "storage"))
        let dataDir = try #require(flag("--data-dir", in: ws))
        let mount = try #require(container.at("volumeMounts")?.list.first { $0.at("mountPath")?.string == dataDir })
        let volume = try #require(workload.at("spec", "template", "spec", "volumes")?.list.first {
            $0.at("name")?.string == mount.at("name")?.string
        })
        let claim = try #require(volume.at("persistentVolumeClaim", "claimName")?.string)
        #expect(manifests.named("PersistentVolumeClaim", claim) != nil, "PVC \(claim)")
    }

    @Test func finnhubKeyComesFromASecret() throws {
        let manifests = try Manifests()
        let (_, producer, ws) = try #require(manifests.workload(role: "producer"))
        let entry = try #require(producer.at("env")?.list.first { $0.at("name")?.string == "FINNHUB_API_KEY" })
        #expect(entry.at("value") == nil, "the key must not be written into the Deployment")
        let ref = try #require(entry.at("valueFrom", "secretKeyRef"))
        let secret = try #require(manifests.named("Secret", ref.at("name")?.string ?? ""), "Secret \(ref)")
        let key = try #require(ref.at("key")?.string)
        #expect(secret.at("stringData", key) != nil || secret.at("data", key) != nil)
        #expect(ws.joined(separator: " ").contains("FINNHUB_API_KEY"), "producer decides on FINNHUB_API_KEY")

        for workload in manifests.workloads {
            for c in Manifests.containers(workload) {
                let literal = c.node.at("env")?.list.contains { $0.at("name")?.string == "FINNHUB_API_KEY" && $0.at("value") != nil }
                #expect(literal != true)
            }
        }
    }

    @Test func simExchangeServesOnTheCodesPort() throws {
        let manifests = try Manifests()
        let port = ServiceDefaults.simExchangePort
        let (workload, container, ws) = try #require(manifests.workloads.lazy.compactMap { w in
            Manifests.containers(w).first { $0.invocations.contains { $0.executable == "sim-exchange" } }.map { (w, $0.node, $0.words) }
        }.first)
        #expect(flag("--port", in: ws) == String(port))
        #expect(flag("--host", in: ws) == "0.0.0.0")
        for probe in ["readinessProbe", "livenessProbe"] {
            #expect(Manifests.port(container.at(probe, "httpGet", "port"), in: container) == port, "\(probe)")
        }

        let labels = workload.at("spec", "template", "metadata", "labels")?.entries ?? []
        let service = try #require(manifests.all("Service").first { s in
            let selector = s.at("spec", "selector")?.entries ?? []
            return !selector.isEmpty && selector.allSatisfy { sel in labels.contains { $0.key == sel.key && $0.value.string == sel.value.string } }
        }, "no Service selects sim-exchange")
        let name = try #require(service.at("metadata", "name")?.string)
        let servicePort = try #require(service.at("spec", "ports")?.list.first)
        #expect(servicePort.at("port")?.int == port)
        #expect(Manifests.port(servicePort.at("targetPort") ?? servicePort.at("port"), in: container) == port)

        let (_, _, producer) = try #require(manifests.workload(role: "producer"))
        #expect(producer.joined(separator: " ").contains("ws://\(name):\(port)"))
    }
}
