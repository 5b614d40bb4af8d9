import MarketData
import Recording
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Learns the HTTP status of a refused WebSocket upgrade (the WebSocket client only
/// reports that the upgrade failed) by sending the same upgrade request once more.
public enum UpgradeProbe {
    public static func status(url: String, tls: TLSConfiguration?, sniHostname: String?, timeout: Duration) async throws -> Int? {
        guard let c = URLComponents(string: url), let host = c.host else { return nil }
        let secure = c.scheme == "wss" || c.scheme == "https"
        let port = c.port ?? (secure ? 443 : 80)
        let target = (c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath) + (c.percentEncodedQuery.map { "?\($0)" } ?? "")
        let sslContext = try secure ? NIOSSLContext(configuration: tls ?? .makeClientConfiguration()) : nil
        let serverName = sniHostname ?? host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.init(timeout))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let hostHeader = c.port.map { "\(host):\($0)" } ?? host
        let request = "GET \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var head = ""
            for try await var buffer in inbound {
                head += buffer.readString(length: buffer.readableBytes) ?? ""
                if let line = head.split(separator: "\r\n", maxSplits: 1).first, head.contains("\r\n") {
                    let parts = line.split(separator: " ")
                    return parts.count > 1 ? Int(parts[1]) : nil
                }
                if head.utf8.count > 8192 { break }
            }
            return nil
        }
    }
}
