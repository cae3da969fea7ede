import Logging
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// The host's one control interface: a Unix socket with the same access rules as the host's main socket (mode
/// 0600 and a SO_PEERCRED check against the allowed uids), serving one request per connection.
///
/// One thread serves connections one at a time, and each connection gets at most ``requestTimeoutMilliseconds``
/// to send its request: a client that connects and says nothing, or floods, costs a bounded delay and nothing
/// else. The handler runs on that thread.
public final class ControlServer: @unchecked Sendable {
    public typealias Handler = @Sendable (_ words: [String]) -> ControlResponse
    public let path: String
    public let allowedUIDs: Set<UInt32>
    public static let requestTimeoutMilliseconds: Int32 = 2000
    private let socket: UnixSeqpacketSocket
    private let handler: Handler
    private let logger: Logger
    private let stopping = Condition(false)
    private let done = Latch()

    public init(path: String, allowedUIDs: Set<UInt32>, logger: Logger, handler: @escaping Handler) throws(TransportError) {
        self.path = path
        self.allowedUIDs = allowedUIDs
        self.handler = handler
        self.logger = logger
        socket = try UnixSeqpacketSocket.listen(path: path, backlog: 8)
    }

    public func start() throws(TransportError) {
        guard startThread(name: "vmbus-control", { [self] in serve() }) else {
            throw .system(call: "pthread_create", errno: EAGAIN)
        }
    }

    public func stop() {
        stopping.update { $0 = true }
        _ = done.wait(timeoutNanoseconds: 5_000_000_000)
        socket.close()
        socket.unlinkBoundFile(path)
    }

    private func serve() {
        defer { done.open() }
        while !stopping.withLock({ $0 }) {
            let connection: UnixSeqpacketSocket?
            do { connection = try socket.accept(timeoutMilliseconds: 200) } catch {
                logger.error("control socket \(path): \(error)")
                return
            }
            guard let connection else { continue }
            handle(connection)
            connection.close()
        }
    }

    private func handle(_ c: UnixSeqpacketSocket) {
        // The request is read before anything is answered: closing with it unread would reset the connection
        // and the client would never see the answer.
        let request = c.receiveMessage(maxBytes: ControlMessage.maxRequestBytes, timeoutMilliseconds: Self.requestTimeoutMilliseconds)
        let response: ControlResponse
        guard let credentials = try? c.peerCredentials(), allowedUIDs.contains(credentials.uid) else {
            _ = try? c.send(bytes: ControlResponse.failure("permission denied").encoded, nonBlocking: true)
            return
        }
        switch request {
        case .message(let bytes):
            if let words = ControlMessage.decodeRequest(bytes) {
                response = words == ["version"] ? .success(ControlMessage.version) : handler(words)
            } else {
                response = .failure("malformed request: one word per line, UTF-8, at most \(ControlMessage.maxRequestBytes) bytes")
            }
        case .tooLong:
            response = .failure("request longer than \(ControlMessage.maxRequestBytes) bytes")
        case .none:
            return
        }
        _ = try? c.send(bytes: response.encoded, nonBlocking: true)
    }
}

/// The client half: `vmbus disk …` and the other control commands.
public enum ControlClient {
    public static func request(path: String, _ words: [String], timeoutMilliseconds: Int32 = 60_000) throws(TransportError) -> ControlResponse {
        guard let bytes = ControlMessage.encodeRequest(words) else {
            throw .protocolViolation("a control request is non-empty words without newlines, at most \(ControlMessage.maxRequestBytes) bytes")
        }
        let c = try UnixSeqpacketSocket.connect(path: path)
        defer { c.close() }
        try c.send(bytes: bytes)
        switch c.receiveMessage(maxBytes: ControlMessage.maxResponseBytes, timeoutMilliseconds: timeoutMilliseconds) {
        case .message(let reply):
            guard let r = ControlResponse(decoding: reply) else { throw .protocolViolation("malformed control response") }
            return r
        case .tooLong: throw .protocolViolation("control response too long")
        case .none: throw .timedOut("the control socket's answer")
        }
    }
}
