import MarketData
import Recording

/// What a ``RecordingFeed`` keeps while a ``ReplayControl`` steers it: the requests seen, the lines
/// released (to count repeats), the lines seeks passed over (to count what was skipped), where a seek
/// landed. Only a steered replay has one, so an unsteered replay's loop does no steering work at all.
final class ReplaySteering {
    let control: ReplayControl
    let paths: [String]
    let options: ReplayOptions
    let index: () -> RecordingIndex?
    let lastInFile: Int64?
    var seenChanges: Int
    /// The number of the last seek applied.
    private var seenSeek: Int
    var released = LineRanges(), passedOver = LineRanges()
    /// The run of lines released since the last seek, as the replay loop tracks it (first line, last line);
    /// handed in by ``steer`` and ``finishPass``, so the loop touches no property of this class per frame.
    private var runStart: Int?
    private var runEnd = 0
    var firstNs: Int64?
    var lastReleasedNs: Int64?
    /// A pause, a speed change or a seek happened: the original schedule no longer holds.
    var steered = false
    var skippedSoFar = 0

    init(control: ReplayControl, paths: [String], options: ReplayOptions, lastInFile: Int64?, index: @escaping () -> RecordingIndex?) {
        self.control = control
        self.paths = paths
        self.options = options
        self.lastInFile = lastInFile
        self.index = index
        seenChanges = control.changeCount
        seenSeek = control.peek().seek?.number ?? 0
    }

    func startPass() {
        released = LineRanges(); passedOver = LineRanges(); runStart = nil
    }

    /// Takes the loop's view of what it released since the last call.
    private func adopt(run: inout Int?, lastLine: Int, lastNs: Int64?) {
        if let r = run {
            if runStart == nil { runStart = r }  // a pause does not end a run; only a seek does
            runEnd = lastLine
        }
        if let lastNs { lastReleasedNs = lastNs }
        run = nil
    }

    /// Whether `line` was released before (only asked once something was).
    func wasReleased(_ line: Int) -> Bool { released.contains(line) }
    var anyReleased: Bool { !released.isEmpty }

    private func closeRun() {
        if let s = runStart { released.insert(s..<(runEnd + 1)); runStart = nil }
    }

    /// Before the first frame's release: the recording's first receive time.
    func noteFirst(_ ns: Int64) {
        firstNs = ns
        control.report { $0.firstNs = ns }
    }

    /// Reports where the replay is, for `GET /status` and the progress line.
    func report(recvNs: Int64, summary: ReplaySummary, lagNs: UInt64) {
        let (sent, frames, repeated) = (summary.trades, summary.frames, summary.repeatedTrades)
        control.report { st in
            st.positionNs = recvNs; st.tradesSent = sent; st.framesSent = frames; st.lagNs = lagNs
            st.repeatedTrades = repeated
        }
    }

    /// Applies what the control asks before `raw` is released; returns the frame a seek landed on
    /// (`.some(nil)`: past the end), nil when `raw` is still the next frame. Waits while paused.
    func steer<C: PacerClock>(at raw: RecordingReader.RawFrame, run: inout Int?, lastLine: Int, lastNs: Int64?, merger: inout FrameMerger,
                              pacer: inout Pacer<C>, clock: C, summary: inout ReplaySummary, recvOffset: Int64,
                              whilePaused: (Int64) -> Void) async throws -> RecordingReader.RawFrame?? {
        adopt(run: &run, lastLine: lastLine, lastNs: lastNs)
        var current: RecordingReader.RawFrame? = raw
        var moved = false, anchor = false
        steered = true
        while true {
            seenChanges = control.changeCount
            let request = control.peek()
            if request.speed != summary.speed {
                summary.speed = request.speed
                anchor = true
            }
            if let asked = request.seek, asked.number != seenSeek {
                seenSeek = asked.number
                let target = asked.target
                do {
                    current = try seek(target, fromLine: current?.line ?? Int.max, recvNs: current?.recvNs ?? lastReleasedNs ?? 0,
                                       merger: &merger, summary: &summary)
                    moved = true
                } catch is SeekRefused {}
                anchor = true
            }
            if !request.paused { break }
            anchor = true
            let at = current?.recvNs
            if let at { control.report { $0.positionNs = at } }
            while control.changeCount == seenChanges {
                await clock.sleep(until: clock.now() + 5_000_000)
                try Task.checkCancellation()
                if let at { whilePaused(at) }
            }
        }
        if anchor, let c = current { pacer.reanchor(recvNs: c.recvNs + recvOffset, speed: summary.speed) }
        return moved ? .some(current) : nil
    }

    /// Moves the reader to the first frame at or after `target` (clamped); counts what it passes over.
    private func seek(_ target: ReplayControl.SeekTarget, fromLine from: Int, recvNs currentNs: Int64,
                      merger: inout FrameMerger, summary: inout ReplaySummary) throws -> RecordingReader.RawFrame? {
        guard paths.count == 1 else {
            control.report { [count = paths.count] in $0.notice = "seek needs a single recording; this replay merges \(count)" }
            throw SeekRefused()
        }
        let index = index()
        let position = lastReleasedNs ?? currentNs
        var ns: Int64
        switch target {
        case .absolute(let t): ns = t
        case .relative(let d): ns = position.addingReportingOverflow(d).overflow ? (d < 0 ? .min : .max) : position + d
        }
        let lo = max(firstNs ?? index?.firstRecvNs ?? currentNs, options.fromNs ?? .min)
        let hi = min(index?.lastRecvNs ?? lastInFile ?? .max, options.toNs ?? .max)
        var notice: String?
        if ns < lo { notice = "seek to \(ReplayTime.iso(ns)) is before the recording; went to its start \(ReplayTime.iso(lo))"; ns = lo }
        if ns > hi { notice = "seek to \(ReplayTime.iso(ns)) is after the recording; went to its end \(ReplayTime.iso(hi))"; ns = hi }
        closeRun()
        var frame: RecordingReader.RawFrame?
        do {
            if let index, let entry = index.entry(atOrBefore: ns) {
                try merger.readers[0].reposition(offset: entry.offset, line: entry.line, members: index.members)
            } else {
                merger = try FrameMerger(paths: paths, skipBad: options.skipBad, startLine: options.fromLine ?? 0)
            }
            while let f = try merger.next() {
                if let fromLine = options.fromLine, f.line < fromLine { continue }
                if f.recvNs >= ns { frame = f; break }
            }
        } catch let e as FrameMerger.Failure {
            throw RecordingFeed.failure(e.error, path: e.path)
        }
        let to = frame?.line ?? Int.max
        if to > from {
            skippedSoFar += try tradesNotReleased(from..<to)
            passedOver.insert(from..<to)
        }
        summary.seeks += 1
        let (seeks, repeated, skipped) = (summary.seeks, summary.repeatedTrades, skippedSoFar)
        control.report { st in
            st.seeks = seeks; st.skippedTrades = skipped; st.repeatedTrades = repeated
            st.positionNs = frame?.recvNs ?? st.positionNs
            st.notice = notice
        }
        return frame
    }

    /// At the end of a pass: what seeks passed over and nothing released later is what was skipped.
    func finishPass(_ summary: inout ReplaySummary, run: inout Int?, lastLine: Int) throws {
        adopt(run: &run, lastLine: lastLine, lastNs: nil)
        guard !passedOver.isEmpty else { return }
        closeRun()
        for range in passedOver.subtracting(released) { summary.skippedTrades += try tradesOn(range) }
    }

    /// Trades (that the filters let through) on `lines` that were never released.
    private func tradesNotReleased(_ lines: Range<Int>) throws -> Int {
        var total = try tradesOn(lines)
        var closed = released
        if let s = runStart { closed.insert(s..<(runEnd + 1)) }
        for overlap in closed.overlaps(lines) { total -= try tradesOn(overlap) }
        return total
    }

    /// Trades on `lines` of the (single) recording that the symbol and time filters let through.
    private func tradesOn(_ lines: Range<Int>) throws -> Int {
        guard !lines.isEmpty else { return 0 }
        let reader: RecordingReader
        do { reader = try RecordingReader(path: paths[0], skipBad: true, validateFrames: false) } catch { throw RecordingFeed.failure(error, path: paths[0]) }
        let index = index()
        let unfiltered = options.symbols == nil && options.fromNs == nil && options.toNs == nil
        func cumulative(_ line: Int) throws(RecordingError) -> Int? {
            guard let index, let e = index.entry(atOrBeforeLine: line) else { return nil }
            try reader.reposition(offset: e.offset, line: e.line, members: index.members)
            var n = e.tradesBefore
            while let f = try reader.nextRaw(checkUTF8: false), f.line < line { n += RecordingIndex.tradeCount(f.bytes) }
            return n
        }
        do {
            if unfiltered, let index {
                let end = lines.upperBound == .max ? index.trades : try cumulative(lines.upperBound) ?? 0
                return end - (try cumulative(lines.lowerBound) ?? 0)
            }
            if let index, let e = index.entry(atOrBeforeLine: lines.lowerBound) {
                try reader.reposition(offset: e.offset, line: e.line, members: index.members)
            }
            var n = 0
            while let f = try reader.nextRaw(checkUTF8: false) {
                if f.line < lines.lowerBound { continue }
                if f.line >= lines.upperBound { break }
                if let from = options.fromNs, f.recvNs < from { continue }
                if let to = options.toNs, f.recvNs > to { break }
                guard case .trades(let t)? = try? FinnhubCodec.decode(UnsafeRawBufferPointer(f.bytes)) else { continue }
                n += options.symbols.map { wanted in t.filter { wanted.contains($0.symbol) }.count } ?? t.count
            }
            return n
        } catch {
            throw RecordingFeed.failure(error, path: paths[0])
        }
    }
}
