import Feeds
import Exchange
import MarketData
import HTTPTypes
import HummingbirdCore
import NIOHTTPTypes
import NIOCore
import Synchronization

/// HummingbirdWebSocket answers every refused upgrade with 400; this outbound handler rewrites
/// that status to the one recorded for the channel (401 bad token, 503 refusing), as Finnhub does.
final class RefusalStatus: Sendable {
    let table = Mutex<[ObjectIdentifier: HTTPResponse.Status]>([:])

    func refuse(_ channel: any Channel, with status: HTTPResponse.Status) {
        table.withLock { $0[ObjectIdentifier(channel)] = status }
    }

    func take(_ channel: any Channel) -> HTTPResponse.Status? {
        table.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    final class Handler: ChannelOutboundHandler, RemovableChannelHandler {
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        let owner: RefusalStatus
        init(owner: RefusalStatus) { self.owner = owner }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .head(var head) = unwrapOutboundIn(data), head.status == .badRequest, let status = owner.take(context.channel) {
                head.status = status
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            } else {
                context.write(data, promise: promise)
            }
        }
    }
}
