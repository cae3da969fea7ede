// Fuzz target: the host's `Server` state machine driven by a guest (raw and well-formed messages), by devices
// (offers, rescinds) and by the runtime (ring mapping results, disconnects), with its invariants checked
// after every step. Build and run with Scripts/fuzz; see docs/CONFORMANCE.md "Fuzzing".
//
// Input: byte 0 configures the server (bits 0-3 maximum version, bit 4 small guest memory, bit 5 few GPADLs,
// bit 6 no REQUESTOFFERS in the prefix), byte 1 the number of devices offered before the guest connects;
// the server then sees a valid INITIATE_CONTACT (and REQUESTOFFERS), and each following op (one byte, then
// its arguments) is one step: see `Op`.
import FuzzSupport
import VMBusHost
import VMBusProtocol
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-server",
    corpus: "Server",
    summary: "the host Server state machine under guest messages, device events and runtime results",
    body: fuzzServer,
    seeds: serverSeeds)

enum Op: UInt8, CaseIterable {
    case rawMessage = 0        // chunk: raw guest message bytes
    case gpadl                 // relid, handle, pages, first PFN, bodies to send
    case open                  // relid, handle, downstream offset, open id, target VP, 6.0 tail?
    case close                 // relid
    case teardown              // relid, handle
    case relIDReleased         // relid
    case unload
    case initiateContact       // version, SINT
    case requestOffers
    case modifyChannel         // relid, target VP
    case addOffer              // sub-channel index
    case rescind               // relid
    case completeOpens         // status selector: the runtime finishes mapping pending rings
    case guestDisconnected
    case gpadlBody             // handle, chunk of range data
    case typedMessage          // msgtype, chunk of the rest of the message
}

let versionChoices = VMBusVersion.all + [VMBusVersion(rawValue: 0x0007_0000), VMBusVersion(rawValue: 0)]

/// The server plus a model of the runtime (`VMBusHost`) performing its actions.
struct Harness {
    var server: Server
    /// Channels whose rings the runtime has mapped (a worker runs): `VMBusHost.State.open`.
    var mapped: Set<UInt32> = []
    /// OPENCHANNEL accepted, runtime still mapping. `VMBusHost` completes these right after the guest
    /// message that asked, but device requests can run in between.
    var pending: [UInt32] = []
    var devices: UInt32 = 0
    var rejected = 0
    /// The GPADL table before the current guest message.
    var gpadlsBefore: [UInt32: Server.GPADL] = [:]

    init(configuration: Server.Configuration) { server = Server(configuration: configuration) }

    func relID(_ b: UInt8) -> UInt32 {
        let known = server.channels.keys.sorted()
        if b >= 0xF0 || known.isEmpty { return [0, 1, 2, 3, 2047, 2048, 0xFFFF_FFFF, 7][Int(b & 7)] }
        return known[Int(b) % known.count]
    }

    func handle(_ b: UInt8) -> UInt32 {
        if b >= 0xF8 { return [0, 0xFFFF_FFFF, 1, 0xE1E0F, 0x8000_0000, 2, 3, 4][Int(b & 7)] }
        return GPADLMessages.linuxFirstHandle + UInt32(b % 8)
    }

    /// Channels open or opening now (a CLOSECHANNEL may close only those).
    func openOrOpening() -> Set<UInt32> {
        var set: Set<UInt32> = []
        for (relID, c) in server.channels {
            switch c.state {
            case .open, .opening: set.insert(relID)
            default: break
            }
        }
        return set
    }

    // MARK: Steps

    mutating func guest(_ bytes: [UInt8]) {
        completeOpens(status: 0)
        let before = openOrOpening()
        gpadlsBefore = server.gpadls
        let actions = server.handle(bytes)
        fuzzLog("guest \((try? ChannelMessage.parse(bytes)).map { "\($0)" } ?? "raw \(bytes)") -> \(actions)"
                + (server.rejectedMessages > rejected ? " REJECTED: \(server.lastRejection ?? "")" : ""))
        perform(actions, guestMessage: true, before: before)
        fuzzCheck(server.rejectedMessages >= rejected, "rejectedMessages went down")
        rejected = server.rejectedMessages
    }

    mutating func guest(_ message: ChannelMessage) { guest(message.bytes) }

    mutating func completeOpens(status: UInt32) {
        while !pending.isEmpty {
            let relID = pending.removeFirst()
            if status == 0 {
                // VMBusHost records the open channel before telling the server.
                fuzzCheck(!mapped.contains(relID), "channel \(relID) mapped twice")
                mapped.insert(relID)
            }
            let before = openOrOpening()
            let actions = server.channelOpenCompleted(relID: relID, status: status)
            fuzzLog("runtime opened \(relID) status \(status) -> \(actions)")
            perform(actions, guestMessage: false, before: before)
        }
    }

    mutating func addOffer(subchannelIndex: UInt16) {
        // Enough channels for every state; many more would only slow each step down.
        guard server.channels.count < 48 else { return }
        let taken = Set(server.channels.keys)
        devices += 1
        let id = GUID(data1: devices, data2: 0x5A5A, data3: 0, data4: (1, 2, 3, 4, 5, 6, 7, 8))
        let class_ = GUID(data1: 0xEC40_EC40, data2: 1, data3: 2, data4: (0, 0, 0, 0, 0, 0, 0, 1))
        let before = openOrOpening()
        guard let (relID, actions) = server.addOffer(
            HostDeviceOffer(classID: class_, instanceID: id, maxSubchannels: 2), subchannelIndex: subchannelIndex)
        else {
            fuzzCheck(server.channels.count == Server.relIDRange.count, "addOffer refused with free relids")
            return
        }
        fuzzCheck(!taken.contains(relID) && Server.relIDRange.contains(relID), "addOffer reused relid \(relID)")
        fuzzCheck(!mapped.contains(relID) && !pending.contains(relID), "new relid \(relID) still mapped")
        fuzzLog("device offer \(relID) -> \(actions)")
        perform(actions, guestMessage: false, before: before)
    }

    mutating func rescind(_ relID: UInt32) {
        let before = openOrOpening()
        let actions = server.rescind(relID: relID)
        fuzzLog("device rescinds \(relID) -> \(actions)")
        perform(actions, guestMessage: false, before: before)
    }

    mutating func disconnected() {
        // The port reports a disconnect on the control thread, after the last message's opens completed.
        // (`VMBusHost.stop()` may race an open in flight; then a rescind can release the relid before the
        // runtime finishes mapping it, which costs nothing at shutdown, so the model leaves that order out.)
        completeOpens(status: 0)
        let before = openOrOpening()
        let actions = server.guestDisconnected()
        fuzzLog("guest disconnected -> \(actions)")
        perform(actions, guestMessage: false, before: before)
    }

    /// Performs `actions` as the runtime would, checking each against the state.
    mutating func perform(_ actions: [ServerAction], guestMessage: Bool, before: Set<UInt32>) {
        for action in actions {
            switch action {
            case .send(let message):
                fuzzCheck(message.type.direction == .hostToGuest, "server sent \(message.type)")
                let bytes = message.bytes
                fuzzCheck(bytes.count <= ChannelMessage.maximumLength, "server sent \(bytes.count) bytes")
                // Offers are built from device data and round-trip tested elsewhere; re-parsing each of them
                // here would cost more than the server itself.
                if message.type != .offerChannel {
                    fuzzCheck((try? ChannelMessage.parse(bytes)) == message, "server message does not round trip")
                }
                if let version = server.version {
                    fuzzCheck(message.type.minimumVersion <= version || message.type == .versionResponse,
                              "\(message.type) sent at version \(version)")
                }
                // Each answer agrees with the state it leaves behind.
                switch message {
                case .gpadlCreated(let m):
                    if m.creationStatus == 0 {
                        guard let g = server.gpadls[m.gpadl], g.relID == m.childRelID, case .ready = g.state else {
                            fuzzCheck(false, "GPADL_CREATED(0) for 0x\(String(m.gpadl, radix: 16)) that is not ready")
                            return
                        }
                    } else {
                        // A header naming a handle in use is refused and the GPADL holding it left alone.
                        fuzzCheck(server.gpadls[m.gpadl] == nil || server.gpadls[m.gpadl] == gpadlsBefore[m.gpadl],
                                  "failed GPADL 0x\(String(m.gpadl, radix: 16)) kept")
                    }
                case .gpadlTorndown(let m):
                    fuzzCheck(server.gpadls[m.gpadl] == nil, "GPADL 0x\(String(m.gpadl, radix: 16)) torn down but kept")
                case .openChannelResult(let m):
                    if guestMessage { fuzzCheck(m.status != 0, "OPENCHANNEL answered with success before the rings were mapped") }
                    if m.status == 0 {
                        guard case .open? = server.channels[m.childRelID]?.state else {
                            fuzzCheck(false, "OPENCHANNEL_RESULT(0) for channel \(m.childRelID) not open")
                            return
                        }
                    }
                case .versionResponse(let m):
                    fuzzCheck(m.versionSupported == (server.version != nil), "VERSION_RESPONSE disagrees with the state")
                case .unloadResponse:
                    fuzzCheck(server.connection == .disconnected, "UNLOAD_RESPONSE while connected")
                case .offerChannel(let o):
                    fuzzCheck(server.channels[o.childRelID]?.offerSent == true, "offer \(o.childRelID) not marked sent")
                case .rescindChannelOffer(let m):
                    fuzzCheck(server.channels[m.childRelID]?.state == .rescinded, "RESCIND of \(m.childRelID) not rescinded")
                default:
                    break
                }
            case .openChannel(let relID, let ranges, let downstream, _, let userData):
                fuzzCheck(guestMessage, "openChannel without a guest message")
                fuzzCheck(!mapped.contains(relID) && !pending.contains(relID), "open of channel \(relID) already mapped")
                guard let c = server.channels[relID], case .opening(_, let handle, _) = c.state else {
                    fuzzCheck(false, "openChannel for channel \(relID) not opening")
                    return
                }
                guard let g = server.gpadls[handle], case .ready(let ready) = g.state else {
                    fuzzCheck(false, "openChannel with GPADL 0x\(String(handle, radix: 16)) not ready")
                    return
                }
                fuzzCheck(ready == ranges && ranges.count == 1, "ring ranges differ from the GPADL")
                fuzzCheck(downstream >= 2 && Int(downstream) <= ranges[0].pfns.count - 2, "downstream \(downstream)")
                fuzzCheck(userData.count == OpenChannel.userDataSize, "user data of \(userData.count) bytes")
                pending.append(relID)
            case .closeChannel(let relID):
                if guestMessage {
                    fuzzCheck(before.contains(relID), "closeChannel for channel \(relID) that was not open")
                }
                mapped.remove(relID)
            case .releaseChannel(let relID):
                fuzzCheck(server.channels[relID] == nil, "released channel \(relID) still exists")
                fuzzCheck(!mapped.contains(relID) && !pending.contains(relID), "released channel \(relID) still mapped")
            case .connectionReset:
                break
            }
        }
        checkInvariants()
    }

    func checkInvariants() {
        let s = server
        let config = s.configuration
        var assembling = 0
        var readyPages: UInt64 = 0
        for (handle, g) in s.gpadls {
            // No GPADL without a channel the guest was offered.
            guard let c = s.channels[g.relID] else {
                fuzzCheck(false, "GPADL 0x\(String(handle, radix: 16)) of relid \(g.relID) without a channel")
                return
            }
            fuzzCheck(c.offerSent, "GPADL 0x\(String(handle, radix: 16)) on a channel never offered")
            switch g.state {
            case .assembling(let a):
                assembling += 1
                fuzzCheck(!a.isComplete && a.gpadl == handle, "complete GPADL still assembling")
            case .ready(let ranges):
                fuzzCheck(!ranges.isEmpty, "ready GPADL without ranges")
                for r in ranges {
                    fuzzCheck((try? r.validate()) != nil, "ready GPADL with an invalid range")
                    for pfn in r.pfns { fuzzCheck(pfn < config.guestPageCount, "PFN \(pfn) outside guest memory") }
                    readyPages += UInt64(r.pfns.count)
                }
            }
        }
        fuzzCheck(s.gpadls.count <= config.maxGPADLs, "\(s.gpadls.count) GPADLs")
        fuzzCheck(assembling <= config.maxAssemblingGPADLs, "\(assembling) GPADLs assembling")
        fuzzCheck(readyPages <= config.maxGPADLPages, "\(readyPages) GPADL pages")

        var open: Set<UInt32> = []
        for (relID, c) in s.channels {
            fuzzCheck(Server.relIDRange.contains(relID) && c.offer.childRelID == relID, "relid \(relID)")
            fuzzCheck(c.offer.connectionID == Server.connectionIDBase + relID, "connection id of \(relID)")
            if c.offerSent { fuzzCheck(s.offersRequested, "offer sent before REQUESTOFFERS") }
            switch c.state {
            case .offered: break
            case .rescinded:
                fuzzCheck(c.offerSent, "rescinded channel \(relID) the guest never saw")
            case .opening(_, let handle, _), .open(let handle, _):
                if case .open = c.state { open.insert(relID) } else {
                    fuzzCheck(pending.contains(relID), "channel \(relID) opening without a pending open")
                }
                fuzzCheck(c.offerSent, "open channel \(relID) never offered")
                // Open channels have ready ring GPADLs of their own.
                guard let g = s.gpadls[handle], g.relID == relID, case .ready(let ranges) = g.state else {
                    fuzzCheck(false, "channel \(relID) open on GPADL 0x\(String(handle, radix: 16)) that is not its ready GPADL")
                    return
                }
                fuzzCheck(ranges.count == 1 && ranges[0].byteOffset == 0 && ranges[0].pfns.count >= 4,
                          "ring GPADL of channel \(relID): \(ranges)")
            }
        }
        if pending.isEmpty {
            fuzzCheck(open == mapped, "server open \(open.sorted()) but runtime mapped \(mapped.sorted())")
        } else {
            fuzzCheck(open.isSubset(of: mapped), "open channels \(open.sorted()) not mapped \(mapped.sorted())")
        }
        if s.connection == .disconnected {
            fuzzCheck(s.gpadls.isEmpty && !s.offersRequested && open.isEmpty, "state left after disconnect")
        }
    }
}

@Sendable func fuzzServer(_ data: [UInt8]) {
    var input = FuzzInput(data)
    let config = input.byte()
    let maxVersion = VMBusVersion.all[Int(config & 0xF) % VMBusVersion.all.count]
    var configuration = Server.Configuration(
        maxVersion: maxVersion, guestPageCount: config & 0x10 != 0 ? 64 : 1024,
        maxGPADLs: config & 0x20 != 0 ? 3 : 4096)
    configuration.maxAssemblingGPADLs = config & 0x20 != 0 ? 2 : 64
    var h = Harness(configuration: configuration)
    for _ in 0..<(input.byte() % 4) { h.addOffer(subchannelIndex: 0) }

    // A valid handshake prefix.
    h.guest(.initiateContact(maxVersion.usesMessageConnectionID
        ? InitiateContact(versionRequested: maxVersion, targetVCPU: 0, messageSINT: VMBusSynIC.messageSINT)
        : InitiateContact(versionRequested: maxVersion, targetVCPU: 0)))
    fuzzCheck(h.server.version == maxVersion, "handshake at \(maxVersion) refused")
    if config & 0x40 == 0 { h.guest(.requestOffers(RequestOffers())) }

    var steps = 0
    while !input.isAtEnd, steps < 512 {
        steps += 1
        let op = Op(rawValue: input.byte() % UInt8(Op.allCases.count))!
        switch op {
        case .rawMessage:
            h.guest(input.chunk())
        case .gpadl:
            let relID = h.relID(input.byte()), handle = h.handle(input.byte())
            let pages = 1 + Int(input.byte() % 64)
            let first = UInt64(input.byte()) * 8
            let bodies = Int(input.byte())
            let (header, rest) = GPADLMessages.split(
                childRelID: relID, gpadl: handle,
                ranges: [GPARange(wholePages: (0..<UInt64(pages)).map { first + $0 })])
            h.guest(.gpadlHeader(header))
            for body in rest.prefix(bodies == 0xFF ? rest.count : bodies % (rest.count + 1)) {
                h.guest(.gpadlBody(body))
            }
        case .open:
            let relID = h.relID(input.byte()), handle = h.handle(input.byte())
            let downstream = UInt32(input.byte() % 40)
            let openID = UInt32(input.byte()), vp = UInt32(input.byte())
            let tail = input.bool() ? OpenChannelSignalParameters(connectionID: 0x2001, eventFlag: 1) : nil
            h.guest(.openChannel(OpenChannel(
                childRelID: relID, openID: openID, ringBufferGPADLHandle: handle, targetVP: vp,
                downstreamRingBufferPageOffset: downstream, userData: [1, 2, 3], signalParameters: tail)))
        case .close:
            h.guest(.closeChannel(CloseChannel(childRelID: h.relID(input.byte()))))
        case .teardown:
            let relID = h.relID(input.byte()), handle = h.handle(input.byte())
            h.guest(.gpadlTeardown(GPADLTeardown(childRelID: relID, gpadl: handle)))
        case .relIDReleased:
            h.guest(.relIDReleased(RelIDReleased(childRelID: h.relID(input.byte()))))
        case .unload:
            h.guest(.unload(Unload()))
        case .initiateContact:
            let version = versionChoices[Int(input.byte()) % versionChoices.count]
            let sint = input.byte()
            h.guest(.initiateContact(version.usesMessageConnectionID
                ? InitiateContact(versionRequested: version, targetVCPU: 0, messageSINT: sint & 0x80 != 0 ? sint : 2)
                : InitiateContact(versionRequested: version, targetVCPU: 0)))
        case .requestOffers:
            h.guest(.requestOffers(RequestOffers()))
        case .modifyChannel:
            h.guest(.modifyChannel(ModifyChannel(childRelID: h.relID(input.byte()), targetVP: UInt32(input.byte()))))
        case .addOffer:
            h.addOffer(subchannelIndex: UInt16(input.byte() % 3))
        case .rescind:
            h.rescind(h.relID(input.byte()))
        case .completeOpens:
            h.completeOpens(status: input.bool() ? 0 : Server.statusFailure)
        case .guestDisconnected:
            h.disconnected()
        case .gpadlBody:
            let handle = h.handle(input.byte())
            h.guest(.gpadlBody(GPADLBody(gpadl: handle, data: Array(input.chunk().prefix(GPADLBody.maximumDataLength)))))
        case .typedMessage:
            var w = WireWriter(capacity: ChannelMessage.maximumLength)
            w.writeUInt32(UInt32(input.byte() % 31))
            w.writeUInt32(0)
            w.writeBytes(input.chunk())
            h.guest(w.bytes)
        }
    }
    h.completeOpens(status: 0)
    h.disconnected()
    fuzzCheck(h.mapped.isEmpty, "channels still mapped after the guest disconnected")
}

// MARK: - Seeds

@Sendable func serverSeeds() -> [(String, [UInt8])] {
    func op(_ o: Op, _ b: inout FuzzInputBuilder, _ args: [UInt8] = []) {
        b.byte(o.rawValue)
        b.raw(args)
    }
    // Version 6.0 (index 10), two devices; GPADL of 8 pages on the first channel, open, close, teardown.
    var a = FuzzInputBuilder()
    a.byte(10); a.byte(2)
    op(.gpadl, &a, [0, 0, 7, 10, 0xFF])
    op(.open, &a, [0, 0, 4, 1, 0, 0])
    op(.modifyChannel, &a, [0, 1])
    op(.close, &a, [0])
    op(.teardown, &a, [0, 0])
    op(.unload, &a)

    // 5.3, one device; a 40-page GPADL (header and one body), open at 20, rescind, release.
    var b = FuzzInputBuilder()
    b.byte(9); b.byte(1)
    op(.gpadl, &b, [0, 1, 39, 0, 0xFF])
    op(.open, &b, [0, 1, 20, 5, 0, 1])
    op(.rescind, &b, [0])
    op(.completeOpens, &b, [1])
    op(.close, &b, [0])
    op(.relIDReleased, &b, [0])
    op(.addOffer, &b, [0])
    op(.guestDisconnected, &b)

    // WS2008, no REQUESTOFFERS in the prefix; raw and typed messages, reconnect.
    var c = FuzzInputBuilder()
    c.byte(0x40); c.byte(3)
    op(.rawMessage, &c)
    c.chunk(ChannelMessage.requestOffers(RequestOffers()).bytes)
    op(.typedMessage, &c, [8])
    c.chunk([1, 0, 0, 0, 0x10, 0x1E, 0x0E, 0, 16, 0, 1, 0, 0, 16, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
    op(.gpadlBody, &c, [0])
    c.chunk([UInt8](repeating: 0, count: 16))
    op(.initiateContact, &c, [5, 2])
    op(.requestOffers, &c)
    return [("open-close", a.bytes), ("rescind", b.bytes), ("raw", c.bytes)]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzServer_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
