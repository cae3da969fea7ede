#if canImport(Glibc)
import Glibc
#endif
import CVMBusShims
import Logging
import VMBusSync
import Testing
import VMBusGuest
import VMBusHost
import VMBusMemory
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A quiet logger: the tests check counters and outcomes, not log lines.
func quietLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    l.logLevel = getenv("VMBUS_TEST_LOG") != nil ? .debug : .critical
    return l
}

/// A well-behaved guest (SocketGuestSynIC, GuestBus, the echo driver) attaches to the host at `socket` and
/// echoes `count` requests on its first channel: the proof, after an attack, that the host still serves
/// guests. Returns the connected bus (the caller disconnects it) and the completions it counted.
func realGuestEchoes(_ count: Int, through socket: String) throws -> (GuestBus, UInt64) {
    let synic = try SocketGuestSynIC(path: socket, memoryPages: 256)
    let bus = GuestBus(synic: synic, logger: quietLogger("test.guest"))
    try bus.connect()
    let driver = EchoDriver()
    bus.register(driver)
    let client = try #require(driver.clients.first)
    try client.pump(channel: try #require(client.channels.first), count: count, size: 64)
    return (bus, client.completions.load(ordering: .relaxed))
}

/// A fresh directory under /tmp for a socket.
final class SocketDirectory {
    let path: String
    var socket: String { path + "/h.sock" }
    init() throws {
        var template = Array("/tmp/vmbus-transport-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FixtureError("mkdtemp: errno \(errno)")
        }
        path = String(cString: p)
    }
    deinit {
        unlink(socket)
        rmdir(path)
    }
}

/// A socket host in this process: a listener whose partitions each get a ``VMBusHost`` with echo devices.
final class HostFixture: @unchecked Sendable {
    let directory: SocketDirectory
    let listener: SocketHostListener
    final class Registry: Sendable {
        let ports = Lock<[SocketHostPort]>([])
        let hosts = Lock<[UInt32: VMBusHost]>([:])
        /// Echo devices by partition.
        let devices = Lock<[UInt32: [EchoDevice]]>([:])
    }
    let registry = Registry()

    init(configuration: SocketHostListener.Configuration = .init(), echoDevices: Int = 1) throws {
        directory = try SocketDirectory()
        let registry = self.registry
        listener = try SocketHostListener(path: directory.socket, configuration: configuration,
                                          logger: quietLogger("test.listener")) { port in
            let host = VMBusHost(port: port,
                                 configuration: Server.Configuration(guestPageCount: UInt64(port.memory.pageCount)),
                                 logger: quietLogger("test.host"))
            let devices = (0..<echoDevices).map {
                EchoDevice(instanceID: InProcessSystem.instanceID(UInt32($0 + 1)), maxSubchannels: 4)
            }
            for d in devices { host.addDevice(d) }
            registry.devices.withLock { $0[port.partitionID] = devices }
            host.start()
            registry.ports.withLock { $0.append(port) }
            registry.hosts.withLock { $0[port.partitionID] = host }
            return (host, {})
        }
        try listener.start()
    }

    var socket: String { directory.socket }
    var lastPort: SocketHostPort? { registry.ports.withLock { $0.last } }
    func host(_ partition: UInt32) -> VMBusHost? { registry.hosts.withLock { $0[partition] } }
    func devices(_ partition: UInt32) -> [EchoDevice] { registry.devices.withLock { $0[partition] ?? [] } }

    func stop() { listener.stop() }
}

/// What a rogue peer reads from its socket.
enum Incoming {
    case frame(TransportFrame, [Int32])
    case malformed
    case closed
    case timedOut
}

/// A guest that speaks the socket transport by hand (UnixSeqpacketSocket directly), so that it can break
/// every rule.
final class RogueGuest {
    let socket: UnixSeqpacketSocket
    private(set) var memory: GuestMemory?
    let sint: Doorbell

    init(path: String) throws {
        socket = try UnixSeqpacketSocket.connect(path: path)
        sint = try Doorbell()
    }

    /// HELLO with fresh, properly sealed guest memory; returns the reply.
    @discardableResult
    func hello(memoryPages: Int = 64, version: UInt32 = TransportHello.currentVersion) throws -> TransportHelloReply {
        let memory = try GuestMemory(pages: memoryPages)
        self.memory = memory
        let hello = TransportHello(version: version, memoryBytes: UInt64(memory.size), eventFlagsPFN: 0)
        try socket.send(TransportFrame(type: .hello, payload: hello.bytes), fds: [memory.fd, sint.sendFD])
        return try helloReply()
    }

    func helloReply(timeoutMilliseconds: Int32 = 5_000) throws -> TransportHelloReply {
        switch receive(timeoutMilliseconds: timeoutMilliseconds) {
        case .frame(let f, let fds):
            for fd in fds { close(fd) }
            guard f.type == .helloReply else { throw FixtureError("expected HELLO_REPLY, got \(f.type)") }
            return try TransportHelloReply(bytes: f.payload)
        case let other:
            throw FixtureError("no HELLO_REPLY: \(other)")
        }
    }

    func receive(timeoutMilliseconds: Int32 = 5_000) -> Incoming {
        let (readable, _, hungUp) = socket.poll(with: -1, timeoutMilliseconds: timeoutMilliseconds)
        guard readable || hungUp else { return .timedOut }
        do {
            guard let (frame, fds) = try socket.receive(maxFDs: 4) else { return .closed }
            return .frame(frame, fds)
        } catch .protocolViolation {
            return .malformed
        } catch {
            return .closed
        }
    }

    /// Posts a channel message as HvPostMessage would.
    func post(_ message: ChannelMessage, connectionID: UInt32 = VMBusConnectionID.message) throws {
        try socket.send(TransportFrame(type: .channelMessage, port: UInt64(connectionID), payload: message.bytes))
    }

    /// Reads frames until a channel message `matching` arrives; other channel messages and doorbells are
    /// skipped (doorbell descriptors closed). Records the frame types seen in `seen`.
    func expectMessage(timeoutMilliseconds: Int32 = 5_000, seen: inout [String],
                       _ matching: (ChannelMessage) -> Bool) throws -> ChannelMessage {
        while true {
            switch receive(timeoutMilliseconds: timeoutMilliseconds) {
            case .frame(let f, let fds):
                for fd in fds { close(fd) }
                guard f.type == .channelMessage else {
                    seen.append("\(f.type)\(fds.isEmpty ? "" : "+fd")")
                    continue
                }
                let m = try ChannelMessage.parse(f.payload)
                seen.append("\(m.type)")
                if matching(m) { return m }
            case let other:
                throw FixtureError("waiting for a channel message: \(other)")
            }
        }
    }

    func expectMessage(timeoutMilliseconds: Int32 = 5_000, _ matching: (ChannelMessage) -> Bool) throws -> ChannelMessage {
        var seen: [String] = []
        return try expectMessage(timeoutMilliseconds: timeoutMilliseconds, seen: &seen, matching)
    }

    /// INITIATE_CONTACT at 6.0 and REQUESTOFFERS; returns the offers.
    func connectVMBus() throws -> [OfferChannel] {
        try post(.initiateContact(InitiateContact(versionRequested: .copper, targetVCPU: 0,
                                                  messageSINT: VMBusSynIC.messageSINT)),
                 connectionID: VMBusConnectionID.message4)
        let response = try expectMessage { if case .versionResponse = $0 { return true }; return false }
        guard case .versionResponse(let v) = response, v.versionSupported else {
            throw FixtureError("version refused: \(response)")
        }
        try post(.requestOffers(RequestOffers()))
        var offers: [OfferChannel] = []
        _ = try expectMessage { m in
            if case .offerChannel(let o) = m { offers.append(o) }
            if case .allOffersDelivered = m { return true }
            return false
        }
        return offers
    }

    /// Waits until the host ends the connection (discarding whatever it still sends).
    func waitForHangUp(timeoutMilliseconds: Int32 = 5_000) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while monotonicNanoseconds() < deadline {
            switch receive(timeoutMilliseconds: 100) {
            case .closed: return true
            case .frame(_, let fds): for fd in fds { close(fd) }
            case .malformed, .timedOut: continue
            }
        }
        return false
    }
}

/// A memfd of `pages` pages, sealed or not, owned by the caller.
func makeMemfd(pages: Int, sealed: Bool) throws -> Int32 {
    let fd = vmbus_shim_memfd_create("rogue", vmbus_shim_mfd_cloexec() | vmbus_shim_mfd_allow_sealing())
    guard fd >= 0, ftruncate(fd, off_t(pages * 4096)) == 0 else { throw FixtureError("memfd: errno \(errno)") }
    if sealed { _ = vmbus_shim_add_seals(fd, vmbus_shim_seal_shrink() | vmbus_shim_seal_grow()) }
    return fd
}

/// Polls `condition` for up to `seconds`.
func eventually(_ what: String, seconds: Double = 10, _ condition: () -> Bool) throws {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        guard monotonicNanoseconds() < deadline else { throw FixtureError("timed out after \(seconds) s: \(what)") }
        sleepNanoseconds(2_000_000)
    }
}
