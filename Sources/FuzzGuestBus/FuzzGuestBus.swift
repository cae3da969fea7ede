// Fuzz target: the guest bus driver (`GuestBus` with the echo driver bound) against a hostile host. The host is
// scripted by the input and answers synchronously inside HvPostMessage, so a run needs no timeouts: version
// negotiation, offers, GPADLs and opens, then host messages and ring packets chosen by the input, then
// UNLOAD. Build and run with Scripts/fuzz; see docs/CONFORMANCE.md "Fuzzing".
//
// Input: byte 0 configures the guest (bits 0-1 which versions it tries), byte 1 how many offers (0-3), then
// per offer 4 bytes (relid, class, instance, sub-channel index); then the script: every guest message takes
// one byte deciding the reply (normal, nothing, raw bytes from the input, refusal), and between guest
// messages the remaining ops deliver host messages or ring packets, or have the driver send a request (see
// `session`).
import FuzzSupport
import Logging
import VMBusSync
import VMBusGuest
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-guest-bus",
    corpus: "GuestBus",
    summary: "GuestBus + echo driver against a scripted hostile host (control messages and ring packets)",
    body: fuzzGuestBus,
    seeds: guestBusSeeds)

/// One guest memory for the whole process (a memfd mapping is too costly per input); each input gets a fresh
/// page allocator, and the rings it uses are re-initialised by the guest before use.
let sharedMemory: GuestMemory = {
    do { return try GuestMemory(pages: 128, name: "fuzz-guest-bus") } catch { fatalError("guest memory: \(error)") }
}()

let logger: Logger = {
    var l = Logger(label: "fuzz.guest")
    l.logLevel = .critical
    return l
}()

/// The host, played by the input. Guest messages arrive on whatever thread posts them (the fuzz thread or
/// the bus thread); replies are delivered before `postMessage` returns.
final class ScriptedHost: GuestSynIC, @unchecked Sendable {
    let memory = sharedMemory
    let pages = PageAllocator(memory: sharedMemory)
    struct State: Sendable {
        var input: FuzzInput
        var offers: [OfferChannel]
        var assemblers: [UInt32: GPADLAssembler] = [:]
        var gpadls: [UInt32: [UInt64]] = [:]
        /// relid → the host→guest ring's pages, for channels the host answered OPENCHANNEL with success.
        var openRings: [UInt32: [UInt64]] = [:]
        var version: VMBusVersion?
        /// An offer or rescind reached the guest since the last look (it queues bus work).
        var workQueued = false
        var busyReplies = 0
    }
    let state: Lock<State>
    private let sinkBox = Lock<(any GuestInterruptSink)?>(nil)

    init(input: FuzzInput, offers: [OfferChannel]) { state = Lock(State(input: input, offers: offers)) }

    var sink: (any GuestInterruptSink)? { sinkBox.withLock { $0 } }

    func start(_ sink: any GuestInterruptSink) { sinkBox.withLock { $0 = sink } }
    /// Drops the sink: it holds the bus, which holds this SynIC.
    func stop() { sinkBox.withLock { $0 = nil } }
    func signalEvent(connectionID: UInt32) {}

    func postMessage(connectionID: UInt32, _ bytes: [UInt8]) -> HvStatus {
        // Whatever the host did, the guest only ever posts well-formed guest→host messages.
        let message: ChannelMessage
        do {
            message = try ChannelMessage.parse(bytes)
        } catch {
            fuzzCheck(false, "the guest posted a malformed message: \(error)")
            return .success
        }
        fuzzCheck(message.type.direction == .guestToHost, "the guest posted \(message.type)")
        let replies: [[UInt8]]? = state.withLock { s in
            let choice = s.input.byte()
            fuzzLog("guest posts \(message.type), host choice \(choice)")
            switch choice {
            case 0xFF where s.busyReplies < 3:
                // HV_STATUS_INSUFFICIENT_BUFFERS: the guest retries with a growing backoff, so only a few.
                s.busyReplies += 1
                return nil
            case 0xF0...0xFE:
                return [s.input.chunk()]  // raw bytes instead of the answer
            case 0xE8...0xEF:
                return []  // silence (the guest times out)
            default:
                return normalReplies(to: message, &s, fail: choice >= 0xE0).map { $0.bytes }
            }
        }
        guard let replies else { return .insufficientBuffers }
        for r in replies { deliver(r) }
        return .success
    }

    /// Hands a host message to the guest's SINT handler.
    func deliver(_ bytes: [UInt8]) {
        if bytes.count >= 4, bytes[1] == 0, bytes[2] == 0, bytes[3] == 0,
           bytes[0] == UInt8(ChannelMessageType.offerChannel.rawValue)
            || bytes[0] == UInt8(ChannelMessageType.rescindChannelOffer.rawValue) {
            state.withLock { $0.workQueued = true }
        }
        sink?.channelMessage(bytes)
    }

    /// What a correct host answers; `fail` refuses what can be refused.
    private func normalReplies(to message: ChannelMessage, _ s: inout State, fail: Bool) -> [ChannelMessage] {
        switch message {
        case .initiateContact(let m):
            if !fail { s.version = m.versionRequested }
            return [.versionResponse(VersionResponse(versionSupported: !fail, messageConnectionID: 1))]
        case .requestOffers:
            return s.offers.map { .offerChannel($0) } + [.allOffersDelivered(AllOffersDelivered())]
        case .gpadlHeader(let h):
            guard !fail, let a = try? GPADLAssembler(header: h) else {
                return [.gpadlCreated(GPADLCreated(childRelID: h.childRelID, gpadl: h.gpadl, creationStatus: 1))]
            }
            s.assemblers[h.gpadl] = a
            return completed(h.gpadl, &s)
        case .gpadlBody(let b):
            if fail { s.assemblers[b.gpadl] = nil }
            _ = try? s.assemblers[b.gpadl]?.add(body: b)
            return completed(b.gpadl, &s)
        case .openChannel(let o):
            // The guest opens only GPADLs the host created.
            guard let pfns = s.gpadls[o.ringBufferGPADLHandle] else {
                fuzzCheck(false, "OPENCHANNEL on GPADL 0x\(String(o.ringBufferGPADLHandle, radix: 16)) the host never created")
                return []
            }
            let downstream = Int(o.downstreamRingBufferPageOffset)
            fuzzCheck(downstream >= 2 && downstream <= pfns.count - 2, "downstream offset \(downstream)")
            if !fail { s.openRings[o.childRelID] = Array(pfns[downstream...]) }
            return [.openChannelResult(OpenChannelResult(childRelID: o.childRelID, openID: o.openID,
                                                         status: fail ? 0xC000_0001 : 0))]
        case .closeChannel(let c):
            s.openRings[c.childRelID] = nil
            return []
        case .gpadlTeardown(let t):
            s.gpadls[t.gpadl] = nil
            return [.gpadlTorndown(GPADLTorndown(gpadl: t.gpadl))]
        case .relIDReleased(let r):
            s.openRings[r.childRelID] = nil
            return []
        case .unload:
            s.openRings = [:]
            return [.unloadResponse(UnloadResponse())]
        default:
            return []
        }
    }

    private func completed(_ handle: UInt32, _ s: inout State) -> [ChannelMessage] {
        guard let a = s.assemblers[handle], a.isComplete else { return [] }
        s.assemblers[handle] = nil
        guard let ranges = try? a.ranges() else {
            fuzzCheck(false, "the guest sent GPADL 0x\(String(handle, radix: 16)) with invalid ranges")
            return []
        }
        // The guest describes its own memory only.
        for r in ranges {
            for pfn in r.pfns { fuzzCheck(sharedMemory.contains(pfn: pfn), "GPADL with PFN \(pfn) outside guest memory") }
        }
        s.gpadls[handle] = ranges.flatMap { $0.pfns }
        return [.gpadlCreated(GPADLCreated(childRelID: a.childRelID, gpadl: handle, creationStatus: 0))]
    }
}

func makeOffer(relID: UInt32, echo: Bool, instance: UInt8, subchannelIndex: UInt16) -> OfferChannel {
    OfferChannel(interfaceType: echo ? EchoProtocol.classID : DeviceClass.nic.guid,
                 interfaceInstance: InProcessSystem.instanceID(UInt32(instance & 3)),
                 subchannelIndex: subchannelIndex, childRelID: relID, monitorID: 0xFF, monitorAllocated: false,
                 isDedicatedInterrupt: true, connectionID: 0x2000 &+ relID)
}

let tryOrders: [[VMBusVersion]] = [[.copper], [.win10_v5_3], [.copper] + VMBusVersion.linuxTryOrder, [.ws2008]]

final class WeakBus: @unchecked Sendable { weak var bus: GuestBus? }

@Sendable func fuzzGuestBus(_ data: [UInt8]) {
    let weak = WeakBus()
    session(data, weak)
    // The bus thread drops its reference just after `disconnect()` returns. Wait for the bus to go: it must not
    // outlive the session (a retain cycle would leak every GuestBus), and LeakSanitizer would otherwise see its
    // weak-reference side table, whose only pointer is encoded in the live object, as leaked.
    var waited = 0
    while weak.bus != nil, waited < 2000 {
        usleep(50)
        waited += 1
    }
    fuzzCheck(weak.bus == nil, "the GuestBus outlived its session (a retain cycle)")
}

func session(_ data: [UInt8], _ weak: WeakBus) {
    var input = FuzzInput(data)
    let config = input.byte()
    var offers: [OfferChannel] = []
    for _ in 0..<(input.byte() % 4) {
        let relID = UInt32(input.byte() % 8)
        let kind = input.byte()
        offers.append(makeOffer(relID: relID, echo: kind & 1 == 0, instance: input.byte(),
                                subchannelIndex: UInt16(input.byte() % 3)))
    }
    // The script is the rest of the input; the host and the ops below read it in turn.
    let host = ScriptedHost(input: FuzzInput(input.rest()), offers: offers)
    let bus = GuestBus(
        synic: host,
        configuration: GuestBus.Configuration(tryOrder: tryOrders[Int(config & 3)],
                                              responseTimeoutNanoseconds: 50_000),
        logger: logger)
    weak.bus = bus
    let driver = EchoDriver(ringSize: 8192)
    do {
        try bus.connect()
        bus.register(driver)
    } catch {
        _ = error.description
    }
    var steps = 0
    while steps < 64 {
        steps += 1
        guard let (op, arg, bytes) = host.state.withLock({ s -> (UInt8, UInt8, [UInt8])? in
            guard !s.input.isAtEnd else { return nil }
            return (s.input.byte(), s.input.byte(), s.input.chunk())
        }) else { break }
        switch op % 5 {
        case 0:
            // A raw host message.
            fuzzLog("host sends raw \(bytes)")
            host.deliver(bytes)
        case 1:
            // A well-formed host message of a type chosen by `arg`, fields from `bytes`.
            var w = WireWriter(capacity: ChannelMessage.maximumLength)
            w.writeUInt32(UInt32(arg % 30))
            w.writeUInt32(0)
            w.writeBytes(bytes)
            let extra = ChannelMessage.entry(for: ChannelMessageType(rawValue: UInt32(arg % 30)))?.minimumLength ?? 0
            w.writeBytes([UInt8](repeating: 0, count: max(0, extra - w.bytes.count)))
            fuzzLog("host sends typed \(arg % 30)")
            host.deliver(w.bytes)
        case 2:
            // An offer or rescind of one of a few relids.
            let relID = UInt32(arg % 8)
            if arg & 0x80 != 0 {
                fuzzLog("host rescinds \(relID)")
                host.deliver(ChannelMessage.rescindChannelOffer(RescindChannelOffer(childRelID: relID)).bytes)
            } else {
                fuzzLog("host offers \(relID)")
                let o = makeOffer(relID: relID, echo: arg & 0x40 == 0, instance: arg >> 3,
                                  subchannelIndex: UInt16(bytes.first ?? 0) % 3)
                host.deliver(ChannelMessage.offerChannel(o).bytes)
            }
        case 3:
            // A packet in the host→guest ring of an open channel, then its interrupt.
            ringPacket(host, bus, arg: arg, bytes: bytes)
        default:
            // The driver sends an echo request (transaction ids 1, 2, … for the host's completions to name).
            let clients = driver.clients
            guard !clients.isEmpty else { break }
            let channels = clients[Int(arg) % clients.count].channels
            guard let channel = channels.first else { break }
            var payload = [UInt8](repeating: arg, count: 16 + Int(bytes.first ?? 0) % 48)
            payload[0] = 1
            let context = UInt64(steps) | UInt64(payload.count) << 40
            let id = try? payload.withUnsafeBytes { p in try channel.sendRequest(p, context: context) }
            fuzzLog("guest sends request \(id.map { "\($0)" } ?? "refused") on \(channel.relID)")
        }
        // Offers and rescinds are bus work; wait for it, so the next op sees its result (a handoff to the bus
        // thread and back, the main cost of a run: done only when needed).
        if host.state.withLock({ s in defer { s.workQueued = false }; return s.workQueued }) { bus.flushWork() }
    }
    fuzzLog("disconnect")
    _ = bus.disconnect()
    _ = bus.rejectedMessages
    _ = bus.lastRejection
}

/// Writes a well-formed packet with hostile contents into the host→guest ring of an open channel (the host
/// side of the ring, as `VMBusHost` would) and raises the channel's interrupt.
func ringPacket(_ host: ScriptedHost, _ bus: GuestBus, arg: UInt8, bytes: [UInt8]) {
    let rings = host.state.withLock { $0.openRings }
    guard !rings.isEmpty else { return }
    let relID = rings.keys.sorted()[Int(arg) % rings.count]
    let pfns = rings[relID]!
    guard let memory = try? sharedMemory.ringMemory(pfns: pfns[...]) else {
        fuzzCheck(false, "ring pages of \(relID) outside guest memory")
        return
    }
    let ring = OutgoingRing(memory: memory)
    let types: [VMBusPacketType] = [.completion, .dataInband, .dataUsingXferPages, .dataUsingGPADirect]
    var r = FuzzInput(bytes)
    // Transaction ids near the ones the guest uses (slot + 1), or anything.
    let tid = arg & 0x10 != 0 ? r.u64() : UInt64(r.byte() % 4)
    let payload = r.rest()
    if var batch = try? ring.beginWrite() {
        _ = try? payload.withUnsafeBytes { p in
            try ring.append(&batch, type: types[Int(arg >> 5) & 3], flags: UInt16(arg >> 7), transactionID: tid,
                            payload: p)
        }
        _ = ring.commit(batch)
    }
    fuzzLog("host writes a packet on \(relID), tid \(tid), \(payload.count) bytes")
    bus.channelInterrupt(relID: relID)
}

// MARK: - Seeds

@Sendable func guestBusSeeds() -> [(String, [UInt8])] {
    // Version 6.0, one echo offer on relid 1: the guest connects, the echo driver opens the channel (GPADL
    // header, OPENCHANNEL), the host sends a completion and an in-band packet, rescinds, and the guest unloads.
    var a = FuzzInputBuilder()
    a.byte(0); a.byte(1)
    a.raw([1, 0, 0, 0])
    a.raw([0, 0])  // INITIATE_CONTACT, REQUESTOFFERS: normal
    a.raw([0, 0])  // GPADL_HEADER, OPENCHANNEL: normal
    a.byte(4); a.byte(0x00); a.chunk([0])                               // echo request, tid 1
    a.byte(3); a.byte(0x00); a.chunk([1, 1, 2, 3, 4, 5, 6, 7, 8])       // completion tid 1
    a.byte(3); a.byte(0x20); a.chunk([0, 9, 9, 9, 9])                   // in-band packet
    a.byte(2); a.byte(0x81); a.chunk([])                                // rescind relid 1
    a.raw([0, 0, 0])                                                     // CLOSE, RELID_RELEASED, UNLOAD
    // 5.3 with two offers (echo and another class), a refused GPADL, raw and typed host messages.
    var b = FuzzInputBuilder()
    b.byte(1); b.byte(2)
    b.raw([1, 0, 2, 0]); b.raw([2, 1, 1, 0])
    b.raw([0, 0, 0xE0])  // INITIATE_CONTACT, REQUESTOFFERS normal; GPADL refused, so the probe fails
    b.byte(0); b.byte(0); b.chunk(ChannelMessage.allOffersDelivered(AllOffersDelivered()).bytes)
    b.byte(1); b.byte(10); b.chunk([1, 0, 0, 0, 0x10, 0x1E, 0x0E, 0])
    b.byte(2); b.byte(3); b.chunk([0])
    b.raw([0])  // UNLOAD
    return [("echo-open-rescind", a.bytes), ("two-offers", b.bytes)]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzGuestBus_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
