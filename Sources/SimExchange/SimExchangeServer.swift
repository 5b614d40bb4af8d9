import Feeds
import Exchange
import MarketData
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import NIOWebSocket
import ServiceLifecycle
import Synchronization

struct SimContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel
    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}

/// A mock Finnhub trades WebSocket server (see `SimExchangeConfig`), usable in-process.
public final class SimExchangeServer: Sendable {
    public let config: SimExchangeConfig
    let logger: Logger
    let startedAt = ContinuousClock.now
    let running = Mutex<(task: Task<Void, any Error>?, port: Int?)>((nil, nil))

    public init(config: SimExchangeConfig, logger: Logger = Logger(label: "sim-exchange")) {
        self.config = config
        self.logger = logger
    }

    /// The server as a `Service`: serves until graceful shutdown or cancellation (run it in a
    /// `ServiceGroup`, e.g. the commands' `Lifecycle`).
    public func service() throws -> some Service {
        try makeApplication(onRunning: { _ in })
    }

    /// Starts serving in the background and returns the bound port (useful with port 0).
    @discardableResult public func start() async throws -> Int {
        let (stream, cont) = AsyncStream.makeStream(of: Int.self)
        let app = try makeApplication { cont.yield($0); cont.finish() }
        let task = Task {
            defer { cont.finish() }
            try await app.run()
        }
        running.withLock { $0.task = task }
        for await port in stream {
            running.withLock { $0.port = port }
            return port
        }
        try await task.value
        throw CancellationError()
    }

    /// The bound port once started.
    public var port: Int? { running.withLock { $0.port } }

    /// Stops a server started with `start()` and waits for it.
    public func stop() async {
        let task = running.withLock { $0.task }
        task?.cancel()
        _ = await task?.result
    }

    func makeApplication(onRunning: @escaping @Sendable (Int) -> Void) throws -> some ApplicationProtocol {
        let router = Router(context: SimContext.self)
        router.get("/health") { _, _ in HTTPResponse.Status.ok }
        let wsRouter = Router(context: SimContext.self)
        let refusals = RefusalStatus()
        wsRouter.ws("/") { [self] request, context in
            if let seconds = config.refuseForSeconds, ContinuousClock.now - startedAt < .seconds(seconds) {
                refusals.refuse(context.channel, with: .serviceUnavailable)
                return .dontUpgrade
            }
            if let token = config.token, request.uri.queryParameters.get("token") != token {
                self.logger.info("refused upgrade: bad or missing token")
                refusals.refuse(context.channel, with: .unauthorized)
                return .dontUpgrade
            }
            return .upgrade([:])
        } onUpgrade: { [self] inbound, outbound, context in
            try await cancelWhenGracefulShutdown {
                try await Connection(config: self.config, outbound: outbound, channel: context.requestContext.channel, logger: self.logger).run(inbound: inbound)
            }
        }
        let wsConfig = WebSocketServerConfiguration(maxFrameSize: 1 << 16, autoPing: .disabled)
        var server = HTTPServerBuilder.http1WebSocketUpgrade(webSocketRouter: wsRouter, configuration: .init(http1: .init(additionalChannelHandlers: [RefusalStatus.Handler(owner: refusals)]), ws: wsConfig))
        if let cert = config.tlsCertificatePath, let key = config.tlsKeyPath {
            let chain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey
            do { chain = try NIOSSLCertificate.fromPEMFile(cert) } catch {
                throw TLSFileError(description: "--tls-cert \(cert): cannot load a PEM certificate chain (\(error))")
            }
            do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
                throw TLSFileError(description: "--tls-key \(key): cannot load a PEM private key (\(error))")
            }
            let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
            server = try .tls(server, tlsConfiguration: tls)
        }
        let scheme = config.tlsCertificatePath == nil ? "ws" : "wss"
        let logger = logger
        return Application(
            router: router, server: server,
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("sim-exchange listening on \(scheme)://\(channel.localAddress?.ipAddress ?? "?"):\(port)/")
                onRunning(port)
            },
            logger: logger)
    }
}

/// A TLS certificate or key file that cannot be used, named with its flag.
public struct TLSFileError: Error, CustomStringConvertible {
    public var description: String
}
