// Fuzz target: NetVSC's receive path, fed by a raw host. A NetVSC is set up once against a real NetVSP (in
// process); the host side then writes what the input says into the guest's receive buffer (RNDIS PACKETs with
// PPIs and INDICATE_STATUS messages from our encoders, with one byte flipped, or raw bytes) and names it with
// transfer-page packets of hostile set ids, range counts, offsets and lengths, besides in-band NVSP messages and
// stray completions. Every transfer-page packet (and in-band packet asking for one) must be completed; each
// frame delivered must be the one a PACKET header in one of the packet's ranges declares (its length, its bytes,
// inside the range and the buffer), in range order; an unaltered media indication sets the link. Build and run
// with Scripts/fuzz.
//
// Input: per step, byte 0 the kind (low 2 bits), then what the kind reads (see `step`).
import FuzzSupport
import Logging
import VMBusGuest
import VMBusHost
import VMBusMemory
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-netvsc-receive",
    corpus: "NetVSCReceive",
    summary: "NetVSC's receive path (transfer-page packets, RNDIS PACKET and INDICATE_STATUS with PPIs) from a raw host",
    body: fuzzNetVSCReceive,
    seeds: netVSCReceiveSeeds)

/// The host: a real NetVSP for the set-up, plus the primary channel and the receive buffer's GPADL for
/// injecting. Completions of injected packets (ids with ``marker``) are kept here instead of reaching the NetVSP.
final class InjectingHost: VMBusDeviceProvider, @unchecked Sendable {
    let inner: NetVSP
    static let marker: UInt64 = 0xF00D << 48
    private let state = Condition<(channel: HostChannel?, device: HostDeviceHandle?, receiveGPADL: UInt32?)>((nil, nil, nil))
    let completed = Condition<Set<UInt64>>([])

    init(_ inner: NetVSP) { self.inner = inner }

    var offer: HostDeviceOffer { inner.offer }
    func attached(_ device: HostDeviceHandle) {
        state.withLock { $0.device = device }
        inner.attached(device)
    }
    func channelOpened(_ channel: HostChannel) throws {
        state.withLock { $0.channel = channel }
        try inner.channelOpened(channel)
    }
    func channelClosed(_ channel: HostChannel) { inner.channelClosed(channel) }
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        let id = packet.descriptor.transactionID
        if packet.descriptor.type == .completion, id & Self.marker == Self.marker {
            completed.update { _ = $0.insert(id) }
            return
        }
        if packet.descriptor.type == .dataInband {
            var r = buffer.wireReader(for: packet)
            if case .sendReceiveBuffer(let m)? = try? NVSPMessage(from: &r, direction: .guestToHost) {
                state.withLock { $0.receiveGPADL = m.gpadlHandle }
            }
        }
        inner.packetReceived(packet, buffer: buffer, on: channel)
    }

    var channel: HostChannel? { state.withLock { $0.channel } }

    /// The guest's receive buffer, as the host maps it.
    func receiveBuffer() -> GuestPageBuffer? {
        let (channel, device, handle) = state.withLock { ($0.channel, $0.device, $0.receiveGPADL) }
        guard let channel, let device, let handle, let range = device.gpadlRanges(handle, relID: channel.relID)?.first else {
            return nil
        }
        return try? GuestPageBuffer(memory: channel.memory, pages: range.pfns)
    }

    func waitCompleted(_ id: UInt64) -> Bool {
        completed.wait(timeoutNanoseconds: 5_000_000_000) { $0.remove(id) } != nil
    }
}

/// One system for the whole process: the NIC initialized once, the frames it hands up and its link changes.
final class Rig: @unchecked Sendable {
    let system: InProcessSystem
    let host: InjectingHost
    let nic: NetVSC
    let buffer: GuestPageBuffer
    let channel: HostChannel
    let frames = Condition<[([UInt8], Int)]>([])
    var transaction: UInt64 = 0

    init() {
        do {
            system = try InProcessSystem(memoryPages: 4096, logLevel: fuzzVerbose ? .debug : .critical)
            let vsp = NetVSP(instanceID: InProcessSystem.instanceID(9),
                             configuration: .init(macAddress: [0x00, 0x15, 0x5D, 0x00, 0x00, 0x01]), backend: MemoryNetBackend(capacity: 16))
            host = InjectingHost(vsp)
            system.host.addDevice(host)
            try system.start()
            guard let device = system.guest.devices.first else { fatalError("no device offered") }
            var configuration = NetVSC.Configuration()
            configuration.receiveBufferBytes = 256 << 10
            configuration.sendBufferBytes = 64 << 10
            let frames = self.frames
            nic = try NetVSC(device: device, configuration: configuration, onReceiveFrame: { frame, info in
                let copy = [UInt8](frame)
                frames.update { $0.append((copy, info.fragments)) }
            })
            try nic.start()
            guard let b = host.receiveBuffer(), let c = host.channel else { fatalError("no receive buffer") }
            buffer = b
            channel = c
        } catch {
            fatalError("fuzz rig: \(error)")
        }
    }

    func nextTransaction() -> UInt64 {
        transaction += 1
        return InjectingHost.marker | (transaction & 0xFFFF_FFFF_FFFF)
    }
}

nonisolated(unsafe) let rig = Rig()

let statuses: [RNDISStatus] = [.mediaConnect, .mediaDisconnect, .linkSpeedChange, .networkChange, .resetStart, .success]

func fuzzNetVSCReceive(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    var steps = 0
    while !input.isAtEnd && steps < 16 {
        steps += 1
        step(&input)
    }
}

func step(_ input: inout FuzzInput) {
    let kind = input.byte()
    switch kind & 3 {
    case 0, 1:
        transferPages(&input)
    case 2:
        // In-band NVSP from the host (SEND_INDIRECTION_TABLE, VF association, anything), maybe asking for a completion.
        let wants = kind & 4 != 0
        let payload = input.chunk()
        let id = rig.nextTransaction()
        fuzzLog("in-band \(payload.count) bytes, completion \(wants)")
        do { try rig.channel.sendInband(bytes: payload, transactionID: id, completionRequested: wants) } catch {
            return fuzzCheck(false, "the host could not send: \(error)")
        }
        if wants { fuzzCheck(rig.host.waitCompleted(id), "no completion for an in-band packet asking for one") }
    default:
        // A completion for a request the guest never made.
        let id = input.u64()
        let payload = input.chunk()
        fuzzLog("stray completion \(id)")
        do { try rig.channel.sendCompletion(transactionID: id, bytes: payload) } catch {
            fuzzCheck(false, "the host could not send: \(error)")
        }
    }
}

/// What one range should yield: the frame a PACKET header in it declares, if the range and the declaration lie
/// inside the buffer, a slot and the range.
func declaredFrame(offset: Int, length: Int) -> [UInt8]? {
    guard let data = declaredData(offset: offset, length: length), data.count >= 14, data.count <= rig.nic.maxFrameSize else { return nil }
    return data
}

/// The data a PACKET header in the range declares, of any length (an RSC fragment's piece).
func declaredData(offset: Int, length: Int) -> [UInt8]? {
    guard length >= 16, length <= rig.nic.receiveSlotSize, offset >= 0, offset + length <= rig.buffer.size else { return nil }
    var bytes = [UInt8](repeating: 0, count: length)
    guard (try? rig.buffer.read(at: offset, count: length, into: &bytes)) != nil else { return nil }
    func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
    guard u32(0) == 1 else { return nil }
    let start = 8 + u32(8), count = u32(12)
    guard start + count <= length else { return nil }
    return Array(bytes[start..<(start + count)])
}

/// Writes up to 8 messages into the receive buffer and names them (and hostile ranges) in one transfer-page
/// packet; checks the completion, the frames handed up and the link.
func transferPages(_ input: inout FuzzInput) {
    let rangeCount = Int(input.byte() % 9)
    let slot = rig.nic.receiveSlotSize
    let slots = rig.buffer.size / slot
    var ranges: [(length: UInt32, offset: UInt32)] = []
    var link: Bool?
    // Whether every range holds an untouched message of its own, at a slot start: then the last media
    // indication decides the link.
    var allPristine = true
    var offsets: Set<UInt32> = []
    for _ in 0..<rangeCount {
        let (message, pristine, media) = rangeMessage(&input)
        let placement = input.byte()
        // Mostly a slot start; sometimes an offset inside one, or anywhere at all.
        let offset: UInt32 = placement == 0xFF ? input.u32() : UInt32(Int(placement) % max(1, slots) * slot + (placement & 0x80 != 0 ? Int(input.byte()) : 0))
        let delta = Int(Int8(bitPattern: input.byte()))
        let length = UInt32(truncatingIfNeeded: max(0, message.count + (delta == -128 ? 0x10000 : delta)))
        if Int(offset) + message.count <= rig.buffer.size {
            message.withUnsafeBytes { _ = try? rig.buffer.write(at: Int(offset), from: $0) }
        }
        ranges.append((length, offset))
        let own = placement & 0x80 == 0 && offsets.insert(offset).inserted
        if !(pristine && own && delta == 0 && Int(offset) + message.count <= rig.buffer.size && message.count <= slot) {
            allPristine = false
        }
        if let media { link = media }
    }
    let setID: UInt16 = input.bool() ? UInt16(input.byte()) : NVSPSendReceiveBuffer.linuxBufferID
    let claimed = UInt32(rangeCount) &+ UInt32(Int8(bitPattern: input.byte()) >= 100 ? input.u32() : 0)
    let payload = input.bool() ? input.chunk() : NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data)).wireBytes
    guard payload.count <= 4096 else { return }
    // Later ranges may overwrite earlier ones: the model reads the buffer as the guest will.
    let expected = ranges.map { declaredFrame(offset: Int($0.offset), length: Int($0.length)) }
    let pieces = ranges.map { declaredData(offset: Int($0.offset), length: Int($0.length)) }
    var w = WireWriter()
    w.writeUInt16(setID)
    w.writeUInt8(0)
    w.writeUInt8(0)
    w.writeUInt32(claimed)
    for r in ranges {
        w.writeUInt32(r.length)
        w.writeUInt32(r.offset)
    }
    let header = w.bytes
    let id = rig.nextTransaction()
    let before = rig.frames.withLock { $0.count }
    fuzzLog("transfer pages: \(rangeCount) ranges (claimed \(claimed)), set \(setID), payload \(payload.count) bytes")
    do {
        try header.withUnsafeBytes { h in
            try payload.withUnsafeBytes { p in
                try rig.channel.endpoint.send(type: .dataUsingXferPages, flags: PacketDescriptor.flagCompletionRequested,
                                              transactionID: id, header: h, payload: p)
            }
        }
    } catch {
        return fuzzCheck(false, "the host could not send a transfer-page packet: \(error)")
    }
    // NetVSC completes a transfer-page packet after handing its frames up, whatever it held.
    fuzzCheck(rig.host.waitCompleted(id), "no completion for a transfer-page packet of \(rangeCount) ranges")
    let delivered = rig.frames.withLock { f -> [([UInt8], Int)] in defer { f.removeAll() }; return Array(f[before...]) }
    fuzzLog("  \(delivered.count) frames handed up, link \(rig.nic.linkUp ? "up" : "down")")
    var next = 0
    for (frame, fragments) in delivered {
        // A joined RSC frame is the pieces of `fragments` ranges in a row, in order.
        let found: Int? = fragments <= 1 ? expected[next...].firstIndex(where: { $0 == frame })
            : (next...max(next, pieces.count - fragments)).first { i in
                i + fragments <= pieces.count && pieces[i..<(i + fragments)].allSatisfy { $0 != nil }
                    && pieces[i..<(i + fragments)].flatMap { $0 ?? [] } == frame
            }.map { $0 + fragments - 1 }
        guard let i = found else {
            return fuzzCheck(false, "a frame of \(frame.count) bytes (\(fragments) fragments) that no range declared (ranges \(ranges), \(delivered.count) frames)")
        }
        next = i + 1
    }
    if let link, allPristine, setID == NVSPSendReceiveBuffer.linuxBufferID, claimed == UInt32(rangeCount),
       payload.first == 107 {
        fuzzCheck(rig.nic.linkUp == link, "link \(rig.nic.linkUp) after an indication of \(link)")
    }
}

/// A PACKET with PPIs, an INDICATE_STATUS, or raw bytes; whether it is our encoders' output untouched, and
/// the link it indicates when it is a media indication.
func rangeMessage(_ input: inout FuzzInput) -> (bytes: [UInt8], pristine: Bool, media: Bool?) {
    let kind = input.byte()
    var bytes: [UInt8]
    var media: Bool?
    switch kind % 4 {
    case 0, 1:
        var info = RNDISPacketInfo()
        let flags = input.byte()
        if flags & 1 != 0 { info.checksum = NDISTCPIPChecksumInfo(value: input.u32()) }
        if flags & 2 != 0 { info.vlan = NDISPacket8021QInfo(value: input.u32()) }
        if flags & 4 != 0 { info.hashValue = input.u32() }
        if flags & 8 != 0 { info.largeSend = NDISTCPLSOInfo(value: input.u32()) }
        // An RSC fragment: SUBALLOC with first, last, both or neither.
        if flags & 16 != 0 { info.packetID = RNDISPacketInfoID(flags: RNDISPacketInfoID.flagSubAllocation | (input.byte() & 6), packetID: 1) }
        let frame = input.chunk() + [UInt8](repeating: 0x3C, count: Int(input.byte()) * 8)
        var w = WireWriter()
        RNDISPacket.encodeMessage(into: &w, info: info, frame: frame)
        bytes = w.bytes
    case 2:
        let status = statuses[Int(input.byte()) % statuses.count]
        if status == .mediaConnect { media = true } else if status == .mediaDisconnect { media = false }
        bytes = RNDISMessage.indicateStatus(RNDISIndicateStatus(status: status, statusBuffer: input.chunk())).wireBytes
    default:
        bytes = input.chunk()
        return (bytes, false, nil)
    }
    let at = Int(input.byte()), flip = input.byte()
    guard flip != 0, !bytes.isEmpty else { return (bytes, true, media) }
    bytes[at % bytes.count] ^= flip
    return (bytes, false, nil)
}

func netVSCReceiveSeeds() -> [(String, [UInt8])] {
    /// A PACKET range: kind, PPI flags and values, the frame, no padding, no flip, its placement, the length delta.
    func packet(_ b: inout FuzzInputBuilder, flags: UInt8, ppis: [UInt32], frame: [UInt8], slot: UInt8, anywhere: UInt32? = nil,
                delta: Int8 = 0) {
        b.byte(0); b.byte(flags); for v in ppis { b.u32(v) }; b.chunk(frame); b.byte(0); b.byte(0); b.byte(0)
        if let anywhere { b.byte(0xFF); b.u32(anywhere) } else { b.byte(slot) }
        b.byte(UInt8(bitPattern: delta))
    }
    let frame = [UInt8](repeating: 0xFF, count: 6) + [0, 0x15, 0x5D, 0, 0, 2, 0x08, 0x00] + [UInt8](repeating: 0x45, count: 46)
    // Two frames, one with a checksum and a VLAN PPI, in one packet as Hyper-V batches them.
    var a = FuzzInputBuilder()
    a.byte(0); a.byte(2)
    packet(&a, flags: 0, ppis: [], frame: frame, slot: 0)
    packet(&a, flags: 3, ppis: [0x0000_0015, 0x0005_0001], frame: frame, slot: 1)
    a.byte(0); a.byte(0); a.byte(0)
    // Link down then up, then a range past the buffer and one longer than a slot.
    var b = FuzzInputBuilder()
    for status: UInt8 in [1, 0] {
        b.byte(0); b.byte(1)
        b.byte(2); b.byte(status); b.chunk([]); b.byte(0); b.byte(0); b.byte(2); b.byte(0)
        b.byte(0); b.byte(0); b.byte(0)
    }
    b.byte(0); b.byte(2)
    packet(&b, flags: 4, ppis: [0x1234], frame: frame, slot: 0, anywhere: 0x7FFF_FFF0)
    packet(&b, flags: 0, ppis: [], frame: frame, slot: 3, delta: 127)
    b.byte(1); b.byte(0x10); b.byte(0); b.byte(0)
    // In-band indirection table asking for a completion, a stray completion.
    var c = FuzzInputBuilder()
    c.byte(6); c.chunk([0x86, 0, 0, 0, 16, 0, 0, 0, 12, 0, 0, 0])
    c.byte(3); c.u64(0x1234); c.chunk([0x6C, 0, 0, 0, 1, 0, 0, 0])
    return [("two-frames", a.bytes), ("link-and-ranges", b.bytes), ("in-band", c.bytes)]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzNetVSCReceive_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
