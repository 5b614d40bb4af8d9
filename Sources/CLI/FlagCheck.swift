import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks of command-line values shared by the executables. Each returns nil for a valid value,
/// else the one-line reason, naming the flag, for the command to report before it connects anywhere.
public enum FlagCheck {
    public static func port(_ value: Int, flag: String) -> String? {
        (0...65535).contains(value) ? nil : "\(flag) must be a port number from 0 to 65535, got \(value)"
    }

    /// Whether `host:port` can be bound now; the reason names the flag when it cannot
    /// (0 always can: the system picks a free port).
    public static func bindable(host: String, port: Int, flag: String) -> String? {
        guard port > 0 else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else { return nil }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc != 0 else { return nil }
        let reason = errno == EADDRINUSE ? "address already in use" : String(cString: strerror(errno))
        return "\(flag) \(port): cannot listen on \(host):\(port): \(reason)"
    }
}
