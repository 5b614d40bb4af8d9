@testable import Feeds
@testable import Recording
import MarketData
import Pipeline
import Kafka
import SimExchange
import MarketStreamTesting
import Foundation
import Synchronization
import Testing

final class FakeClock: PacerClock {
    struct State { var now: UInt64; var sleeps: [UInt64] = [] }
    let state: Mutex<State>
    let oversleep: UInt64
    init(start: UInt64, oversleep: UInt64 = 0) { state = Mutex(State(now: start)); self.oversleep = oversleep }
    func now() -> UInt64 { state.withLock { $0.now } }
    func sleep(until deadline: UInt64) async {
        state.withLock { $0.sleeps.append(deadline); $0.now = max($0.now, deadline + oversleep) }
    }
    func advance(_ ns: UInt64) { state.withLock { $0.now += ns } }
}

@Suite struct PacerTests {
    let r0: Int64 = 1_700_000_000_123_456_789

    @Test func dueTimesAreExact() async throws {
        let clock = FakeClock(start: 1000)
        var p = Pacer(speed: .factor(10), clock: clock)
        let offsets: [Int64] = [0, 1_000_000_000, 1_500_000_000, 1_500_000_000, 5_000_000_007]
        for dt in offsets { try await p.wait(recvNs: r0 + dt) }
        let expected: [UInt64] = [100_001_000, 150_001_000, 500_001_001]
        #expect(clock.state.withLock { $0.sleeps } == expected)
        #expect(p.lag == 0 && p.drift == 0)
    }

    @Test func sleepErrorsDoNotAccumulate() async throws {
        let clock = FakeClock(start: 0, oversleep: 300_000)
        var p = Pacer(speed: .factor(1), clock: clock)
        for i in 0..<100 { try await p.wait(recvNs: r0 + Int64(i) * 10_000_000) }
        let sleeps = clock.state.withLock { $0.sleeps }
        #expect(sleeps == (1..<100).map { UInt64($0) * 10_000_000 })
        #expect(p.lag == 300_000 && p.maxLag == 300_000 && p.drift == 300_000)
    }

    @Test func behindScheduleReportsLagWithoutSleeping() async throws {
        let clock = FakeClock(start: 0)
        var p = Pacer(speed: .factor(2), clock: clock)
        try await p.wait(recvNs: r0)
        clock.advance(50_000_000)
        try await p.wait(recvNs: r0 + 40_000_000)
        #expect(p.lag == 30_000_000)
        try await p.wait(recvNs: r0 + 200_000_000)
        #expect(p.lag == 0)
        #expect(clock.state.withLock { $0.sleeps } == [100_000_000])
    }

    @Test func maxSpeedNeverSleeps() async throws {
        let clock = FakeClock(start: 0)
        var p = Pacer(speed: .max, clock: clock)
        for i in 0..<10 { try await p.wait(recvNs: r0 + Int64(i) * 1_000_000_000) }
        #expect(clock.state.withLock { $0.sleeps }.isEmpty)
        #expect(p.frames == 10)
    }
}

extension SerializedTests {
    @Suite struct RealClockTests {
        let r0: Int64 = 1_700_000_000_123_456_789

    @Test func realClockTwoSecondsAtTenX() async throws {
        let clock = MonotonicClock()
        var p = Pacer(speed: .factor(10), clock: clock)
        for i in 0...40 { try await p.wait(recvNs: r0 + Int64(i) * 50_000_000) }
        let elapsed = Int64(clock.now() - p.originWallNs)
        // Behaviour, not speed: the absolute schedule is followed on a shared 2-core machine;
        // the exact drift is measured by `bench` and the replay summary.
        #expect(abs(elapsed - 200_000_000) < 50_000_000, "elapsed \(elapsed) ns")
        #expect(p.maxLag < 50_000_000, "max lag \(p.maxLag) ns")
    }
    }
}
