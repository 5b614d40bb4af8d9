import Pipeline
import Kafka
import Feeds
import MarketData
import CLI
import ArgumentParser
import Foundation

/// Which dead letters: the flags every `pipeline dlq` subcommand shares.
struct DeadLetterSelection: ParsableArguments {
    @Option(help: "Only dead letters whose reason contains this text (case-insensitive).") var reason: String?
    @Option(help: "Only dead letters from this source topic.") var sourceTopic: String?
    @Option(help: ArgumentHelp("Only dead letters at or after this time (ISO-8601 or Unix ms).", valueName: "time")) var since: String?
    @Option(help: ArgumentHelp("Only dead letters before this time (ISO-8601 or Unix ms).", valueName: "time")) var until: String?
    @Option(help: ArgumentHelp("Only dead-letter offsets from N (inclusive).", valueName: "N")) var fromOffset: Int64?
    @Option(help: ArgumentHelp("Only dead-letter offsets up to N (inclusive).", valueName: "N")) var toOffset: Int64?
    @Option(help: "The dead-letter topic.") var topic = Topics.deadLetterQueue

    func validate() throws { _ = try filter() }

    func filter() throws -> DeadLetterFilter {
        var f = DeadLetterFilter()
        f.reason = reason
        f.sourceTopic = sourceTopic
        do {
            f.since = try since.map { try ReplayTime.parse($0) / 1_000_000 }
            f.until = try until.map { try ReplayTime.parse($0) / 1_000_000 }
        } catch { throw ValidationError("--since/--until: \(error)") }
        if let fromOffset, fromOffset < 0 { throw ValidationError("--from-offset must be 0 or more, got \(fromOffset)") }
        if let fromOffset, let toOffset, toOffset < fromOffset { throw ValidationError("--to-offset (\(toOffset)) is before --from-offset (\(fromOffset))") }
        f.fromOffset = fromOffset
        f.toOffset = toOffset
        return f
    }
}

struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, count, show and redrive the records the consumers dead-lettered.",
        discussion: """
        Every consumer sends what it cannot use to dead-letter-queue unchanged, with headers saying where \
        it came from and why (dlq.reason, dlq.source.topic/partition/offset, dlq.consumer.group). \
        Redriving sends the selected ones back to their source topic, marked with the header \
        dlq.redriven-from, in one Kafka transaction with a ledger (dead-letter-queue-redriven): a dead \
        letter is never redriven twice.

        Examples:
          pipeline dlq count --by reason
          pipeline dlq list --reason "not valid JSON" --since 2026-12-01T00:00:00Z
          pipeline dlq show 42
          pipeline dlq redrive --from-offset 40 --to-offset 60 --dry-run
        """,
        subcommands: [List.self, Count.self, Show.self, Redrive.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per dead letter: partition@offset, time, reason, source, group, payload.")
        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var selection: DeadLetterSelection
        @Option(help: "Show at most N (the newest).") var limit: Int?
        func run() async throws {
            let tools = try DeadLetterTools(config: try kafka.kafkaConfig(), topic: selection.topic)
            let filter = try selection.filter()
            var letters = try await interruptible { try tools.deadLetters(filter) }
            if let limit { letters = Array(letters.suffix(max(0, limit))) }
            for d in letters {
                let payload = String(decoding: d.value.prefix(120), as: UTF8.self).map { $0.isNewline || $0 == "\t" ? " " : $0 }
                print("\(d.partition)@\(d.offset)\t\(d.timestamp.map { ReplayTime.iso($0 * 1_000_000) } ?? "-")\t\(d.reason)\t\(d.source)\t\(d.group ?? "?")\t\(String(payload))")
            }
        }
    }

    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dead letters counted by reason, source topic, group or hour.")
        enum By: String, ExpressibleByArgument, CaseIterable { case reason, topic, group, hour }
        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var selection: DeadLetterSelection
        @Option(help: "Group by reason, topic, group or hour.") var by: By = .reason
        func run() async throws {
            let tools = try DeadLetterTools(config: try kafka.kafkaConfig(), topic: selection.topic)
            let filter = try selection.filter()
            let letters = try await interruptible { try tools.deadLetters(filter) }
            var counts: [String: Int] = [:]
            for d in letters {
                let key: String
                switch by {
                case .reason: key = d.reason
                case .topic: key = d.sourceTopic ?? "?"
                case .group: key = d.group ?? "?"
                case .hour: key = d.timestamp.map { String(ReplayTime.iso($0 * 1_000_000).prefix(13)) + ":00Z" } ?? "-"
                }
                counts[key, default: 0] += 1
            }
            for (key, n) in counts.sorted(by: { by == .hour ? $0.key < $1.key : ($1.value, $0.key) < ($0.value, $1.key) }) { print("\(n)\t\(key)") }
            print("\(letters.count)\ttotal")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter with its key, headers and payload.")
        @OptionGroup var kafka: KafkaOptions
        @Argument(help: "Its offset in the dead-letter topic.") var offset: Int64
        @Option(help: "Its partition.") var partition: Int32 = 0
        @Option(help: "The dead-letter topic.") var topic = Topics.deadLetterQueue
        func run() async throws {
            let tools = try DeadLetterTools(config: try kafka.kafkaConfig(), topic: topic)
            var one = DeadLetterFilter()
            one.fromOffset = offset; one.toOffset = offset; one.partition = partition
            let filter = one
            guard let d = try await interruptible({ try tools.deadLetters(filter) }).first else {
                throw ValidationError("no dead letter at \(topic)[\(partition)]@\(offset)")
            }
            print("dead letter \(d.id(topic: topic))")
            print("time     \(d.timestamp.map { ReplayTime.iso($0 * 1_000_000) } ?? "-")")
            print("key      \(d.key.map { String(decoding: $0, as: UTF8.self) } ?? "(none)")")
            for h in d.headers { print("header   \(h.key): \(String(decoding: h.value, as: UTF8.self))") }
            print("payload  \(d.value.count) bytes")
            print(String(decoding: d.value, as: UTF8.self))
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send the selected dead letters back to their source topic, each at most once ever.")
        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var selection: DeadLetterSelection
        @Flag(help: "Only say what would be redriven.") var dryRun = false
        func run() async throws {
            let tools = try DeadLetterTools(config: try kafka.kafkaConfig(), topic: selection.topic)
            let filter = try selection.filter()
            let dryRun = dryRun
            let result = try await interruptible { try tools.redrive(filter, dryRun: dryRun) }
            for d in result.redriven { print("\(dryRun ? "would redrive" : "redrove")\t\(d.id(topic: selection.topic)) → \(d.sourceTopic ?? "?")\t\(d.reason)") }
            for d in result.unroutable { print("cannot redrive\t\(d.id(topic: selection.topic)): no dlq.source.topic header") }
            print("\(dryRun ? "would redrive" : "redrove") \(result.redriven.count), skipped \(result.skipped.count) redriven before, \(result.unroutable.count) without a source")
        }
    }
}
