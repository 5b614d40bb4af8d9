import Feeds
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Steers a ``ReplayControl`` from the keyboard while a replay runs on a terminal:
///
/// | key | does |
/// | --- | --- |
/// | space | pause / resume |
/// | `+` / `-` | faster / slower along ``ReplayControl/ladder`` |
/// | → / ← | seek +10 s / −10 s of recording time |
/// | ↑ / ↓ | seek +60 s / −60 s |
/// | `q` | quit cleanly (as Ctrl-C: flush, summary) |
///
/// Other keys are ignored. Standard input goes into non-canonical, no-echo mode while it runs and is
/// restored by ``stop()`` (and at exit).
public final class TerminalKeys: @unchecked Sendable {
    private let control: ReplayControl
    private var saved = termios()
    private var active = false
    nonisolated(unsafe) private static var restore: termios?

    /// Starts reading keys when standard input is a terminal; returns nil otherwise.
    public static func start(_ control: ReplayControl) -> TerminalKeys? {
        guard isatty(0) == 1 else { return nil }
        let keys = TerminalKeys(control: control)
        keys.begin()
        return keys
    }

    private init(control: ReplayControl) { self.control = control }

    private func begin() {
        guard tcgetattr(0, &saved) == 0 else { return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(0, TCSANOW, &raw) == 0 else { return }
        active = true
        Self.restore = saved
        atexit { if var t = TerminalKeys.restore { tcsetattr(0, TCSANOW, &t) } }
        let control = control
        let thread = Thread {
            var pending: [UInt8] = []
            var byte: UInt8 = 0
            while read(0, &byte, 1) == 1 {
                pending.append(byte)
                if let action = Self.decode(&pending) { Self.apply(action, to: control) }
            }
        }
        thread.name = "replay-keys"
        thread.start()
    }

    /// Puts the terminal back as it was.
    public func stop() {
        guard active else { return }
        active = false
        tcsetattr(0, TCSANOW, &saved)
        Self.restore = nil
    }

    public enum Action: Equatable, Sendable { case toggle, faster, slower, seek(seconds: Int64), quit }

    /// The action of the keys in `pending` (consumed), or nil while an escape sequence is incomplete or
    /// the key means nothing (dropped).
    public static func decode(_ pending: inout [UInt8]) -> Action? {
        guard let first = pending.first else { return nil }
        if first == 0x1B {
            if pending.count < 3 { return nil }
            defer { pending.removeAll() }
            guard pending[1] == UInt8(ascii: "[") || pending[1] == UInt8(ascii: "O") else { return nil }
            switch pending[2] {
            case UInt8(ascii: "C"): return .seek(seconds: 10)
            case UInt8(ascii: "D"): return .seek(seconds: -10)
            case UInt8(ascii: "A"): return .seek(seconds: 60)
            case UInt8(ascii: "B"): return .seek(seconds: -60)
            default: return nil
            }
        }
        pending.removeAll()
        switch first {
        case UInt8(ascii: " "): return .toggle
        case UInt8(ascii: "+"), UInt8(ascii: "="): return .faster
        case UInt8(ascii: "-"), UInt8(ascii: "_"): return .slower
        case UInt8(ascii: "q"), UInt8(ascii: "Q"): return .quit
        default: return nil
        }
    }

    static func apply(_ action: Action, to control: ReplayControl) {
        switch action {
        case .toggle: control.togglePause()
        case .faster: control.faster()
        case .slower: control.slower()
        case .seek(let s): control.seek(.relative(s * 1_000_000_000))
        case .quit: kill(getpid(), SIGINT)
        }
    }
}
