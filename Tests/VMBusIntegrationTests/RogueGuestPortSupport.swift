import Atomics
import VMBusSync
import VMBusHost
import VMBusMemory
import VMBusProtocol
@testable import VMBusRing
import VMBusTransport
import VMBusWire
#if canImport(Glibc)
import Glibc
#endif

// A host under test with no real guest: the test is the guest. It posts raw channel messages straight into
// VMBusHost, writes and scribbles over ring memory directly, and rings doorbells; the port records what the
// host posts and lets a test look at guest memory at the instant a message is posted.

/// The host's partition port, with the test as the guest. Page 0 is the event-flags page.
final class RogueGuestPort: HostPartitionPort, @unchecked Sendable {
    let memory: GuestMemory
    let flags: SynICEventFlags
    private let doorbells = Lock<[UInt32: Doorbell]>([:])
    private let log = Lock<[ChannelMessage]>([])
    /// Called with every message the host posts, on the posting thread, before it is recorded.
    let onPost = Lock<(@Sendable (ChannelMessage) -> Void)?>(nil)

    init(pages: Int = 512) throws {
        memory = try GuestMemory(pages: pages)
        flags = try SynICEventFlags(memory: memory, pagePFN: 0, sint: Int(VMBusSynIC.messageSINT))
    }

    var posted: [ChannelMessage] { log.withLock { $0 } }

    func postMessage(_ message: [UInt8]) -> Bool {
        guard let m = try? ChannelMessage.parse(message) else { return true }
        onPost.withLock { $0 }?(m)
        log.withLock { $0.append(m) }
        return true
    }

    func interruptGuest(relID: UInt32) { flags.set(relID) }

    func openDoorbell(connectionID: UInt32) throws(TransportError) -> Doorbell {
        try doorbells.withLock { (map) throws(TransportError) -> Doorbell in
            if let e = map[connectionID] { return e }
            let e = try Doorbell()
            map[connectionID] = e
            return e
        }
    }

    func removeDoorbell(connectionID: UInt32) { _ = doorbells.withLock { $0.removeValue(forKey: connectionID) } }
    func start(_ sink: any HostMessageSink) {}
    func stop() {}
}

/// A device that counts what the host hands it, optionally slow, optionally answering every packet.
final class RecordingDevice: VMBusDeviceProvider, @unchecked Sendable {
    final class Weak: @unchecked Sendable {
        weak var channel: HostChannel?
        init(_ c: HostChannel) { channel = c }
    }

    let offer: HostDeviceOffer
    let packets = ManagedAtomic<Int>(0)
    let opened = ManagedAtomic<Int>(0)
    let closed = ManagedAtomic<Int>(0)
    let replyFailures = ManagedAtomic<Int>(0)
    /// First payload byte of every packet, in order.
    let tags = Lock<[UInt8]>([])
    let channels = Lock<[Weak]>([])
    let handle = Lock<HostDeviceHandle?>(nil)
    let handlerNanoseconds: UInt64
    let replies: Bool
    /// The device removes itself from its own packet handler when it sees this tag.
    let rescindOnTag: UInt8?

    init(instance: UInt32 = 1, maxPacketSize: Int = PacketBuffer.defaultCapacity, handlerNanoseconds: UInt64 = 0,
         replies: Bool = false, rescindOnTag: UInt8? = nil) {
        self.rescindOnTag = rescindOnTag
        offer = HostDeviceOffer(classID: DeviceClass.echoTest.guid, instanceID: GUID(data1: 0x7E57_0000 | instance,
                                data2: 1, data3: 2, data4: (0, 0, 0, 0, 0, 0, 0, UInt8(instance & 0xFF))),
                                maxSubchannels: 0, maxPacketSize: maxPacketSize)
        self.handlerNanoseconds = handlerNanoseconds
        self.replies = replies
    }

    func attached(_ device: HostDeviceHandle) { handle.withLock { $0 = device } }
    func channelOpened(_ channel: HostChannel) throws {
        opened.wrappingIncrement(ordering: .relaxed)
        channels.withLock { $0.append(Weak(channel)) }
    }
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        let payload = buffer.payloadArray(of: packet)
        tags.withLock { $0.append(payload.first ?? 0) }
        packets.wrappingIncrement(ordering: .relaxed)
        if handlerNanoseconds > 0 { sleepNanoseconds(handlerNanoseconds) }
        if let t = rescindOnTag, payload.first == t { handle.withLock { $0 }?.rescind() }
        if replies {
            do { try channel.sendInband(bytes: [7, 7, 7, 7]) } catch { replyFailures.wrappingIncrement(ordering: .relaxed) }
        }
    }
    func channelClosed(_ channel: HostChannel) { closed.wrappingIncrement(ordering: .relaxed) }

    /// Live channel objects (each holds its endpoint and packet buffer).
    var liveChannels: Int { channels.withLock { $0.filter { $0.channel != nil }.count } }
}

/// The guest's end of one open channel, as the test drives it.
struct RogueChannel {
    let relID: UInt32
    let gpadl: UInt32
    /// guest→host ring: the guest writes, the host reads.
    let toHost: RingMemory
    /// host→guest ring.
    let fromHost: RingMemory
    let writer: OutgoingRing

    var connectionID: UInt32 { Server.connectionIDBase + relID }

    /// Writes one in-band packet whose payload starts with `tag`; false if the ring is full.
    @discardableResult
    func send(tag: UInt8, payloadBytes: Int = 8) throws -> Bool {
        var payload = [UInt8](repeating: 0, count: payloadBytes)
        payload[0] = tag
        var batch = try writer.beginWrite()
        do {
            try payload.withUnsafeBytes { p in
                try writer.append(&batch, type: .dataInband, flags: 0, transactionID: UInt64(tag), payload: p)
            }
        } catch RingError.full {
            return false
        }
        _ = writer.commit(batch)
        return true
    }

    private func atomic(_ ring: RingMemory, _ offset: Int) -> UnsafeAtomic<UInt32> {
        switch offset {
        case 0: return ring.control.writeIndex
        case 4: return ring.control.readIndex
        case 8: return ring.control.interruptMask
        default: return ring.control.pendingSendSize
        }
    }

    /// Control word at `offset` (0 write_index, 4 read_index, 8 interrupt_mask, 12 pending_send_sz).
    func word(_ ring: RingMemory, _ offset: Int) -> UInt32 { atomic(ring, offset).load(ordering: .acquiring) }

    func setWord(_ ring: RingMemory, _ offset: Int, _ value: UInt32) {
        atomic(ring, offset).store(value, ordering: .releasing)
    }

    /// Every control word the host may write (read_index and interrupt_mask of the guest→host ring,
    /// write_index of the host→guest ring), to check nothing moves after the host said it is done.
    func hostWrittenWords() -> [UInt32] {
        [word(toHost, 4), word(toHost, 8), word(fromHost, 0), word(toHost, 12)]
    }
}

enum RogueGuest {
    static func post(_ host: VMBusHost, _ message: ChannelMessage) {
        host.guestMessage(connectionID: VMBusConnectionID.message4, message.bytes)
    }

    /// INITIATE_CONTACT at the newest version and REQUESTOFFERS.
    static func connect(_ host: VMBusHost) {
        post(host, .initiateContact(InitiateContact(versionRequested: .copper, targetVCPU: 0,
                                                    messageSINT: VMBusSynIC.messageSINT)))
        post(host, .requestOffers(RequestOffers()))
    }

    /// Creates a GPADL of `pfns` (one whole-page range) and returns the GPADL_CREATED status.
    static func createGPADL(_ host: VMBusHost, _ port: RogueGuestPort, relID: UInt32, handle: UInt32,
                            pfns: [UInt64]) -> UInt32? {
        let (header, bodies) = GPADLMessages.split(childRelID: relID, gpadl: handle,
                                                   ranges: [GPARange(wholePages: pfns)])
        post(host, .gpadlHeader(header))
        for b in bodies { post(host, .gpadlBody(b)) }
        return port.posted.reversed().lazy.compactMap { m -> UInt32? in
            if case .gpadlCreated(let c) = m, c.gpadl == handle { return c.creationStatus }
            return nil
        }.first
    }

    /// Opens `relID` over a ring GPADL of `pfns` (the guest→host ring first, `downstream` pages long).
    static func open(_ host: VMBusHost, _ port: RogueGuestPort, relID: UInt32, handle: UInt32, pfns: [UInt64],
                     downstream: Int) throws -> RogueChannel {
        let toHost = try port.memory.ringMemory(pfns: pfns[0..<downstream])
        let fromHost = try port.memory.ringMemory(pfns: pfns[downstream...])
        OutgoingRing.initializeControl(toHost)
        OutgoingRing.initializeControl(fromHost)
        guard createGPADL(host, port, relID: relID, handle: handle, pfns: pfns) == 0 else {
            throw RogueGuestError("GPADL for relid \(relID) refused")
        }
        post(host, .openChannel(OpenChannel(childRelID: relID, openID: relID, ringBufferGPADLHandle: handle,
                                            targetVP: 0, downstreamRingBufferPageOffset: UInt32(downstream),
                                            userData: [])))
        let result = port.posted.last {
            if case .openChannelResult(let r) = $0 { return r.childRelID == relID }
            return false
        }
        guard case .openChannelResult(let r)? = result, r.status == 0 else { throw RogueGuestError("OPENCHANNEL \(relID) refused: \(port.posted.suffix(2))") }
        return RogueChannel(relID: relID, gpadl: handle, toHost: toHost, fromHost: fromHost,
                            writer: OutgoingRing(memory: toHost))
    }
}

struct RogueGuestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Polls `condition` for up to `seconds`; whether it became true.
func within(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanoseconds() >= deadline { return false }
        sleepNanoseconds(1_000_000)
    }
    return true
}

/// Resident set size of this process, in bytes (/proc/self/statm).
func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 256)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, 255) }
    guard n > 0 else { return 0 }
    let fields = bytes[0..<n].split(separator: UInt8(ascii: " "))
    guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
    return pages * 4096
}
