// Fuzz target: NetVSP's NVSP and RNDIS handling behind a real VMBus host, fed by a raw guest. Each input opens
// the NIC's channel afresh (INIT 6.1, the receive and send buffers, as Linux does; the buffer GPADLs are made
// once), then runs up to 32 steps: raw NVSP messages, SEND_RNDIS_PKT naming hostile sections and sizes, RNDIS
// messages from our encoders (with one byte flipped) in a section, GPA-direct sends with hostile range blocks,
// completions for any transaction id, frames the backend delivers, and link changes. Every request that asks
// for a completion must get one, every frame accepted for delivery must reach the guest (unless the input
// revoked buffers by hand), and the channel must keep serving. Build and run with Scripts/fuzz.
//
// Input: per step, byte 0 the kind (low 3 bits; bit 3: no completion requested), then what the kind reads
// (see `step`).
import FuzzSupport
import Logging
import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusNetVSP
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-netvsp",
    corpus: "NetVSP",
    summary: "NetVSP's NVSP and RNDIS handling (sections, RNDIS messages and PPIs, GPA-direct ranges) behind a VMBus host",
    body: fuzzNetVSP,
    seeds: netVSPSeeds)

/// The raw guest's side of the channel: completions by request context, and every transfer-page packet (a
/// frame or an RNDIS response in a receive slot) completed at once, as netvsc does, so slots come back.
final class RawGuestHandler: GuestChannelHandler, @unchecked Sendable {
    let completions = Condition<[UInt64: [UInt8]]>([:])
    let transferPages = Condition(0)
    static let slotCompletion = NVSPMessage.sendRNDISPacketComplete(NVSPSendRNDISPacketComplete(status: .success)).wireBytes

    func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        let bytes = buffer.payloadArray(of: packet)
        completions.update { $0[context] = bytes }
    }

    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        guard packet.descriptor.type == .dataUsingXferPages else { return }
        _ = Self.slotCompletion.withUnsafeBytes { try? channel.sendCompletion(transactionID: packet.descriptor.transactionID, $0) }
        transferPages.update { $0 += 1 }
    }

    func wait(_ context: UInt64) -> [UInt8]? {
        completions.wait(timeoutNanoseconds: 5_000_000_000) { $0.removeValue(forKey: context) }
    }
}

/// One system for the whole process: host, NetVSP on a memory backend, the guest's buffer GPADLs and the
/// pages GPA-direct ranges may name (never the rings or the buffers).
final class Rig: @unchecked Sendable {
    let system: InProcessSystem
    let backend = MemoryNetBackend(capacity: 256)
    let vsp: NetVSP
    let device: GuestDevice
    let handler = RawGuestHandler()
    let receiveGPADL: UInt32
    let sendGPADL: UInt32
    let sendBuffer: GuestPageBuffer
    let dataPages: [UInt64]
    let data: GuestPageBuffer
    var channel: GuestChannel?
    var context: UInt64 = 0
    static let sectionSize = 6144

    init() {
        do {
            system = try InProcessSystem(memoryPages: 2048, logLevel: fuzzVerbose ? .debug : .critical)
            vsp = NetVSP(instanceID: InProcessSystem.instanceID(9),
                         configuration: .init(macAddress: [0x00, 0x15, 0x5D, 0x00, 0x00, 0x01]), backend: backend)
            system.host.addDevice(vsp)
            try system.start()
            guard let d = system.guest.devices.first, let allocator = d.pageAllocator else { fatalError("no device offered") }
            device = d
            let recv = try allocator.allocate(pages: 32)
            let send = try allocator.allocate(pages: 16)
            dataPages = try allocator.allocate(pages: 8)
            sendBuffer = try GuestPageBuffer(memory: allocator.memory, pages: send)
            data = try GuestPageBuffer(memory: allocator.memory, pages: dataPages)
            receiveGPADL = try d.createGPADL(pages: recv)
            sendGPADL = try d.createGPADL(pages: send)
        } catch {
            fatalError("fuzz rig: \(error)")
        }
    }

    /// Opens the channel and sets the NIC up as Linux does; the previous input's state went with its close.
    func open() -> GuestChannel {
        do {
            let c = try device.open(nil, outgoingRingSize: 64 * 1024, incomingRingSize: 64 * 1024, maxPacketSize: 8192,
                                    handler: handler)
            for m in [NVSPMessage.`init`(NVSPInit(version: .v61)),
                      .sendReceiveBuffer(NVSPSendReceiveBuffer(gpadlHandle: receiveGPADL)),
                      .sendSendBuffer(NVSPSendSendBuffer(gpadlHandle: sendGPADL))] {
                _ = try c.request(m.wireBytes, timeoutNanoseconds: 5_000_000_000)
            }
            channel = c
            return c
        } catch {
            fatalError("fuzz rig: opening the NIC: \(error)")
        }
    }

    func nextContext() -> UInt64 {
        context += 1
        return context
    }
}

nonisolated(unsafe) let rig = Rig()

/// OIDs a guest queries or sets (Linux's rndis_filter), and one nobody knows.
let oids: [RNDISOID] = [.genCurrentPacketFilter, .genMaximumFrameSize, .genMediaConnectStatus, .genLinkSpeed,
                        .genRNDISConfigParameter, .genSupportedList, .genPhysicalMedium, RNDISOID(rawValue: 0x0101_0101),
                        RNDISOID(rawValue: 0xFD01_0203), RNDISOID(rawValue: 0x0101_0102), RNDISOID(rawValue: 0xFC01_0201),
                        RNDISOID(rawValue: 0x0001_0201)]

/// What one input did that the end-of-input checks depend on.
struct Run {
    var accepted = 0
    var rawControl = false
}

func fuzzNetVSP(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let channel = rig.open()
    let pagesBefore = rig.handler.transferPages.withLock { $0 }
    var run = Run()
    var steps = 0
    while !input.isAtEnd && steps < 32 {
        steps += 1
        step(&input, channel, &run)
    }
    // Frames accepted reach the guest: a slot was written for each, and only a revoke takes it back.
    if !run.rawControl {
        let seen = rig.handler.transferPages.wait(timeoutNanoseconds: 5_000_000_000) { $0 - pagesBefore >= run.accepted ? true : nil }
        fuzzCheck(seen != nil, "\(run.accepted) frames accepted, fewer transfer-page packets reached the guest")
    }
    // Still serving: a send with no data at all is refused, but answered.
    let probe = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data)).wireBytes
    fuzzCheck(!channel.isClosed && !channel.isRescinded, "the channel stopped serving")
    fuzzCheck(request(channel, probe) != nil, "no answer to a probe after \(steps) steps")
    _ = rig.backend.take(rig.backend.queuedFrames, timeoutNanoseconds: 0)
    channel.close()
}

/// Sends `payload` as a request and waits for its completion; nil if none came.
@discardableResult
func request(_ channel: GuestChannel, _ payload: [UInt8]) -> [UInt8]? {
    let context = rig.nextContext()
    let sent: Bool = payload.withUnsafeBytes { p in (try? channel.sendRequest(p, context: context)) != nil }
    fuzzCheck(sent, "the guest could not send \(payload.count) bytes")
    return rig.handler.wait(context)
}

/// Sends `payload` in-band, as a request unless `noCompletion`, and checks the answer came.
func send(_ channel: GuestChannel, _ payload: [UInt8], noCompletion: Bool, what: @autoclosure () -> String) {
    // Over the offer's maximum the host rescinds the channel (tested elsewhere); the run is about what fits.
    guard 16 + ((payload.count + 7) & ~7) <= rig.vsp.offer.maxPacketSize else { return }
    if noCompletion {
        let sent: Bool = payload.withUnsafeBytes { p in (try? channel.sendInband(p)) != nil }
        fuzzCheck(sent, "the guest could not send \(what())")
    } else {
        fuzzCheck(request(channel, payload) != nil, "no completion for \(what())")
    }
}

func step(_ input: inout FuzzInput, _ channel: GuestChannel, _ run: inout Run) {
    let kind = input.byte()
    let noCompletion = kind & 8 != 0
    switch kind & 7 {
    case 0:
        // Raw NVSP bytes: any type, any length.
        let payload = input.chunk()
        run.rawControl = true
        fuzzLog("raw NVSP \(payload.count) bytes")
        send(channel, payload, noCompletion: noCompletion, what: "raw NVSP of \(payload.count) bytes")
    case 1:
        // SEND_RNDIS_PKT naming a section (0xFF: any index) and size, after writing bytes into it.
        let channelType = NVSPSendRNDISPacket.ChannelType(rawValue: UInt32(input.byte() & 1))
        let b = input.byte()
        let index = b == 0xFF ? input.u32() : UInt32(b)
        let size = UInt32(input.u16())
        let content = input.chunk()
        let sections = rig.sendBuffer.size / Rig.sectionSize
        if Int(index) < sections {
            content.withUnsafeBytes { _ = try? rig.sendBuffer.write(at: Int(index) * Rig.sectionSize, from: $0) }
        }
        fuzzLog("section \(index) size \(size), \(content.count) bytes")
        let m = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: channelType, sendBufferSectionIndex: index,
                                                                sendBufferSectionSize: size))
        send(channel, m.wireBytes, noCompletion: noCompletion, what: "SEND_RNDIS_PKT section \(index) size \(size)")
    case 2:
        // An RNDIS message from our encoders, one byte flipped, in section 0.
        var message = rndisMessage(&input)
        let at = Int(input.byte()), flip = input.byte()
        if flip != 0, !message.isEmpty { message[at % message.count] ^= flip }
        message.withUnsafeBytes { _ = try? rig.sendBuffer.write(at: 0, from: $0) }
        let control = message.first != 1
        fuzzLog("RNDIS type \(message.first ?? 0), \(message.count) bytes")
        let m = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: control ? .control : .data, sendBufferSectionIndex: 0,
                                                                sendBufferSectionSize: UInt32(message.count)))
        send(channel, m.wireBytes, noCompletion: noCompletion, what: "RNDIS message of \(message.count) bytes")
    case 3:
        gpaDirect(&input, channel)
    case 4:
        // A completion for a receive slot: a recent transaction id or any.
        let id = input.bool() ? UInt64(input.byte()) : input.u64()
        fuzzLog("completion for \(id)")
        let payload = [UInt8](RawGuestHandler.slotCompletion)
        _ = payload.withUnsafeBytes { try? channel.sendCompletion(transactionID: id, $0) }
    case 5:
        // The backend delivers a frame (host → guest), as a switch port would.
        let frame = input.chunk() + [UInt8](repeating: 0xA5, count: Int(input.byte()) * 8)
        // Sometimes with work left, as a TAP hands over its kernel's GSO frames: offsets and sizes the
        // input chooses (a backend's, not the guest's, but NetVSP must not trust them into a crash either).
        let offload: FrameOffload? = input.bool() ? nil : FrameOffload(
            checksumStart: Int(input.byte()), checksumOffset: input.bool() ? 16 : Int(input.byte()),
            segmentation: [FrameOffload.Segmentation.none, .tcpIPv4, .tcpIPv6][Int(input.byte()) % 3],
            segmentSize: Int(input.byte()) << 4, headerLength: Int(input.byte()))
        let outcome = offload.map { o in frame.withUnsafeBytes { rig.vsp.deliver($0, offload: o) } } ?? rig.vsp.deliver(bytes: frame)
        fuzzLog("deliver \(frame.count) bytes (\(offload.map { "\($0)" } ?? "complete")): \(outcome)")
        // Accepted: at least one transfer-page packet (a frame cut in software makes several).
        if outcome == .accepted { run.accepted += 1 }
    case 6:
        let up = input.bool()
        fuzzLog("link \(up ? "up" : "down")")
        rig.vsp.setLink(up: up)
    default:
        // An NVSP message of a chosen type with a body: the control messages a guest may send out of order.
        let types: [NVSPMessageType] = [.`init`, .sendNDISVersion, .sendReceiveBuffer, .revokeReceiveBuffer, .sendSendBuffer,
                                        .sendSendBufferComplete, .revokeSendBuffer, .sendRNDISPacket, .sendNDISConfig,
                                        .allocateReceiveBuffer, .switchDataPath, .subchannel, .sendIndirectionTable, .pdAPI,
                                        NVSPMessageType(rawValue: 0xFFFF)]
        var w = WireWriter()
        w.writeUInt32(types[Int(input.byte()) % types.count].rawValue)
        w.writeBytes(input.chunk())
        run.rawControl = true
        fuzzLog("NVSP type \(w.bytes[0]), \(w.bytes.count) bytes")
        send(channel, w.bytes, noCompletion: noCompletion, what: "NVSP control message")
    }
}

/// INITIALIZE, QUERY, SET, KEEPALIVE, RESET, HALT, a PACKET with PPIs, or an INDICATE_STATUS (host-only).
func rndisMessage(_ input: inout FuzzInput) -> [UInt8] {
    let kind = input.byte()
    let id = UInt32(input.byte())
    switch kind % 8 {
    case 0: return RNDISMessage.initializeRequest(RNDISInitializeRequest(requestID: id)).wireBytes
    case 1: return RNDISMessage.queryRequest(RNDISQueryRequest(requestID: id, oid: oids[Int(input.byte()) % oids.count],
                                                                infoBuffer: input.chunk())).wireBytes
    case 2: return RNDISMessage.setRequest(RNDISSetRequest(requestID: id, oid: oids[Int(input.byte()) % oids.count],
                                                            infoBuffer: input.chunk())).wireBytes
    case 3: return RNDISMessage.keepaliveRequest(RNDISKeepaliveRequest(requestID: id)).wireBytes
    case 4: return RNDISMessage.resetRequest(RNDISResetRequest()).wireBytes
    case 5: return RNDISMessage.halt(RNDISHaltRequest(requestID: id)).wireBytes
    case 6:
        let flags = input.byte()
        var info = RNDISPacketInfo()
        if flags & 1 != 0 { info.checksum = NDISTCPIPChecksumInfo(value: input.u32()) }
        if flags & 2 != 0 { info.largeSend = NDISTCPLSOInfo(value: input.u32()) }
        if flags & 4 != 0 { info.vlan = NDISPacket8021QInfo(value: input.u32()) }
        if flags & 8 != 0 { info.hashValue = input.u32() }
        let frame = input.chunk() + [UInt8](repeating: 0x5A, count: Int(input.byte()) * 16)
        var w = WireWriter()
        RNDISPacket.encodeMessage(into: &w, info: info, frame: frame)
        return w.bytes
    default:
        return RNDISMessage.indicateStatus(RNDISIndicateStatus(status: .mediaConnect)).wireBytes
    }
}

/// SEND_RNDIS_PKT by GPA-direct: a range block (counts, lengths, offsets, PFNs in the data pages or past
/// memory) over data pages holding bytes from the input, optionally with a section too.
func gpaDirect(_ input: inout FuzzInput, _ channel: GuestChannel) {
    let content = input.chunk()
    content.withUnsafeBytes { _ = try? rig.data.write(at: 0, from: $0) }
    let rangeCount = UInt32(input.byte() % 4)
    let byteCount = input.u32() & 0x3_FFFF
    let offset = UInt32(input.u16())
    let pfnCount = Int(input.byte() % 20)
    var w = WireWriter(capacity: 16 + 8 * pfnCount)
    w.writeUInt32(0)
    w.writeUInt32(rangeCount)
    w.writeUInt32(byteCount)
    w.writeUInt32(offset)
    for _ in 0..<pfnCount {
        let b = input.byte()
        w.writeUInt64(b < 0xF0 ? rig.dataPages[Int(b) % rig.dataPages.count] : 0xFFFF_FF00 + UInt64(b))
    }
    let header = w.bytes
    let section = input.bool() ? 0 : NVSPSendRNDISPacket.noSection
    let payload = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data, sendBufferSectionIndex: section,
                                                                  sendBufferSectionSize: section == 0 ? 64 : 0)).wireBytes
    guard 16 + header.count + ((payload.count + 7) & ~7) <= rig.vsp.offer.maxPacketSize else { return }
    let context = rig.nextContext()
    fuzzLog("GPA-direct \(rangeCount) ranges, \(byteCount) bytes at \(offset), \(pfnCount) PFNs")
    let sent: Bool = header.withUnsafeBytes { h in
        payload.withUnsafeBytes { p in (try? channel.sendGPADirectRequest(rangeHeader: h, payload: p, context: context)) != nil }
    }
    fuzzCheck(sent, "the guest could not send a GPA-direct packet")
    // GPA-direct packets always ask for a completion (the guest's requestor tracks them).
    fuzzCheck(rig.handler.wait(context) != nil, "no completion for a GPA-direct send of \(rangeCount) ranges")
}

func netVSPSeeds() -> [(String, [UInt8])] {
    func rndis(_ b: inout FuzzInputBuilder, kind: UInt8, id: UInt8, _ rest: (inout FuzzInputBuilder) -> Void = { _ in }) {
        b.byte(2); b.byte(kind); b.byte(id); rest(&b); b.byte(0); b.byte(0)
    }
    // Linux's bring-up: INITIALIZE, the OIDs it queries and sets, a frame with a checksum PPI, a delivery.
    var a = FuzzInputBuilder()
    rndis(&a, kind: 0, id: 1)
    rndis(&a, kind: 1, id: 2) { $0.byte(1); $0.chunk([]) }
    rndis(&a, kind: 2, id: 3) { $0.byte(0); $0.chunk([0x0B, 0, 0, 0]) }
    rndis(&a, kind: 6, id: 0) { $0.byte(1); $0.u32(0x0000_0009); $0.chunk([UInt8](repeating: 0xFF, count: 6) + [1, 2, 3, 4, 5, 6, 8, 0]); $0.byte(4) }
    a.byte(5); a.chunk([UInt8](repeating: 0xFF, count: 6) + [0, 0x15, 0x5D, 0, 0, 2, 0x08, 0x06]); a.byte(8)
    a.byte(6); a.byte(0)
    a.byte(6); a.byte(1)
    // Sections: out of range, oversized, a frame in section 2; a GPA-direct send past memory.
    var b = FuzzInputBuilder()
    rndis(&b, kind: 0, id: 1)
    b.byte(1); b.byte(0); b.byte(0xFF); b.u32(170_000); b.u16(60); b.chunk([])
    b.byte(1); b.byte(0); b.byte(0); b.u16(6145); b.chunk([])
    var w = WireWriter()
    RNDISPacket.encodeMessage(into: &w, info: RNDISPacketInfo(vlan: NDISPacket8021QInfo(priority: 1, vlanID: 5)),
                              frame: [UInt8](repeating: 0x11, count: 60))
    b.byte(1); b.byte(0); b.byte(2); b.u16(UInt16(w.bytes.count)); b.chunk(w.bytes)
    b.byte(3); b.chunk(w.bytes); b.byte(1); b.u32(UInt32(w.bytes.count)); b.u16(0); b.byte(1); b.byte(0); b.byte(0)
    b.byte(3); b.chunk([]); b.byte(1); b.u32(100); b.u16(0); b.byte(1); b.byte(0xF3); b.byte(0)
    b.byte(4); b.byte(1); b.byte(3)
    // Control out of order: a second INIT, a revoke, a subchannel request, raw bytes.
    var c = FuzzInputBuilder()
    c.byte(7); c.byte(0); c.chunk([0, 0, 6, 0, 0, 0, 6, 0])
    c.byte(7); c.byte(6); c.chunk([0xCA, 0xFE])
    c.byte(7); c.byte(11); c.chunk([1, 0, 0, 0, 4, 0, 0, 0])
    c.byte(0); c.chunk([0x6B, 0, 0, 0, 0, 0])
    c.byte(8); c.chunk([0x65])
    return [("bring-up", a.bytes), ("sections", b.bytes), ("control", c.bytes)]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzNetVSP_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
