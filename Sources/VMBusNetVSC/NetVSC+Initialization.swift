import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusTransport
import VMBusWire

/// Waiting for RNDIS answers: one control request at a time, matched by `req_id`.
struct ControlState {
    var nextRequestID: UInt32 = 1
    var busy = false
    var awaiting: UInt32?
    var response: RNDISMessage?
    var currentMAC: [UInt8]?
}

extension NetVSC {
    /// The completion context of RNDIS control requests (sections use their index, large buffers 1 << 32 | i).
    static let controlContext: UInt64 = 2 << 32
    static let largeContextBase: UInt64 = 1 << 32
    /// Largest packet the host may send us, descriptor included: transfer-page packets with many ranges.
    static let maxIncomingPacket = 8192
    /// The largest receive slot taken: a 64 KiB frame and its RNDIS headers (RSC, which could need more, is
    /// not asked for).
    static let maxReceiveSlot: UInt32 = 66 * 1024
    /// `max_xfer_size` Linux puts in RNDIS INITIALIZE.
    static let rndisMaxTransferSize: UInt32 = 0x4000

    // MARK: Start and stop

    /// Opens the primary channel and runs Linux's sequence: NVSP INIT (newest version first), NDIS config
    /// and version, receive and send buffers, RNDIS INITIALIZE and the queries and sets of
    /// `rndis_filter_device_add`, then the packet filter.
    public func start() throws(NetVSCError) {
        guard let allocator = device.pageAllocator else { throw .channel(.notConnected) }
        let sendSlots = configuration.sendBufferBytes / 512 + configuration.largeSendBuffers + 16
        // The buffers exist before the channel does: the interrupt thread reads them without a lock.
        try reserveMemory(allocator)
        let opened: GuestChannel
        do {
            opened = try device.open(nil, outgoingRingSize: configuration.ringSize, incomingRingSize: configuration.ringSize,
                                     maxPacketSize: Self.maxIncomingPacket, requestSlots: sendSlots, handler: self)
        } catch {
            allocator.release(allPages)
            allPages = []
            throw .channel(error)
        }
        channel = opened
        // Under the completion queue's lock: its flush reads the table on the interrupt thread.
        pendingCompletions.withLock { _ in channelsByIndex[0] = opened }
        do {
            try negotiateVersion(opened)
            try announceNDIS(opened)
            try handOverReceiveBuffer(opened)
            try handOverSendBuffer(opened)
            try initializeRNDIS()
            try setUpReceiveScaling(opened)
        } catch {
            stop()
            throw error
        }
        // From here on no send waits for ring space: a full ring is the caller's to retry (Linux stops the
        // queue), so neither the interrupt thread nor a sender ever blocks on the host.
        opened.endpoint.sendTimeoutNanoseconds = 0
        for c in subchannels { c.endpoint.sendTimeoutNanoseconds = 0 }
        if let sb = sendBuffer {
            let path = TransmitPath(channel: opened, queues: [opened] + subchannels, sendBuffer: sb, sectionSize: sendSectionSize, maxFrameSize: maxFrameSize,
                                    largeSendMaxSize: largeSendMaxSize, checksumOffload: checksumOffload,
                                    batchLimit: batchLimit, packetAlignment: packetAlignment)
            transmit.withLock { $0.path = path }
        }
        running.store(true, ordering: .releasing)
        retryThreadStarted = startThread(name: "netvsc-comp") { [self] in completionRetryLoop() }
        do { try setPacketFilter(configuration.packetFilter) } catch {
            stop()
            throw error
        }
    }

    /// Linux's teardown: packet filter 0, HALT, revoke both buffers, tear down their GPADLs, close the
    /// channel. Pages go back to the allocator only if their GPADLs were torn down (else they leak).
    public func stop() {
        let wasRunning = running.exchange(false, ordering: .acquiringAndReleasing)
        // A send that is past its running check finishes first; none starts after.
        transmit.withLock { t in
            t.path = nil
            t.batch = SendBatch()
        }
        guard let channel else { return }
        if wasRunning {
            _ = try? setPacketFilter([])
            _ = try? sendRNDIS(.halt(RNDISHaltRequest(requestID: nextRequestID())))
        }
        pendingCompletions.update { $0.stopped = true }
        if retryThreadStarted { _ = retryThreadDone.wait(timeoutNanoseconds: 10_000_000_000) }
        if receiveGPADL != nil {
            sendInbandIgnoringFull(channel, .revokeReceiveBuffer(NVSPRevokeReceiveBuffer(id: NVSPSendReceiveBuffer.linuxBufferID)))
        }
        if sendGPADL != nil {
            sendInbandIgnoringFull(channel, .revokeSendBuffer(NVSPRevokeSendBuffer(id: NVSPSendSendBuffer.linuxBufferID)))
        }
        var torndown = true
        for handle in [receiveGPADL, sendGPADL].compactMap({ $0 }) {
            do { try device.teardownGPADL(handle) } catch { torndown = false }
        }
        for c in subchannels.reversed() { c.close() }
        channel.close()
        self.channel = nil
        subchannels = []
        pendingCompletions.withLock { _ in channelsByIndex = [GuestChannel?](repeating: nil, count: channelsByIndex.count) }
        receiveGPADL = nil
        sendGPADL = nil
        if !allPages.isEmpty, let allocator = device.pageAllocator {
            if torndown { allocator.release(allPages) }
            else { logger.warning("netvsc \(device.instanceID): leaking buffer pages whose GPADL teardown failed") }
        }
        allPages = []
        receiveBuffer = nil
        sendBuffer = nil
        controlPage = nil
    }

    private func sendInbandIgnoringFull(_ channel: GuestChannel, _ m: NVSPMessage) {
        let bytes = m.wireBytes
        bytes.withUnsafeBytes { p in _ = try? channel.sendInband(p) }
    }

    /// The receive and send buffers, the GPA-direct buffers and the control page, from guest memory.
    private func reserveMemory(_ allocator: PageAllocator) throws(NetVSCError) {
        let receivePages = max(1, configuration.receiveBufferBytes / GuestMemory.pageSize)
        let sendPages = max(2, configuration.sendBufferBytes / GuestMemory.pageSize)
        let per = pagesPerLargeBuffer
        let largePages = per * max(0, configuration.largeSendBuffers)
        let pages: [UInt64]
        do { pages = try allocator.allocate(pages: receivePages + sendPages + largePages + 1) } catch {
            throw .invalidArgument("guest memory for the NIC's buffers: \(error)")
        }
        allPages = pages
        do {
            receiveBuffer = try GuestPageBuffer(memory: allocator.memory, pages: Array(pages[0..<receivePages]))
            sendBuffer = try GuestPageBuffer(memory: allocator.memory,
                                             pages: Array(pages[receivePages..<(receivePages + sendPages)]))
            var at = receivePages + sendPages
            var large: [GuestPageBuffer] = []
            for _ in 0..<max(0, configuration.largeSendBuffers) {
                large.append(try GuestPageBuffer(memory: allocator.memory, pages: Array(pages[at..<(at + per)])))
                at += per
            }
            controlPage = try GuestPageBuffer(memory: allocator.memory, pages: [pages[at]])
            transmit.withLock { t in
                t.large = large
                t.freeLarge = Array((0..<large.count).reversed())
            }
        } catch {
            throw .invalidArgument("buffer pages: \(error)")
        }
    }

    /// A GPA-direct buffer holds the RNDIS header, three PPIs and the largest frame (a 64 KiB LSO send
    /// when LSO is configured).
    var pagesPerLargeBuffer: Int {
        let frame = configuration.largeSendOffload ? Self.largeSendLimit : configuration.mtu + 18
        return (RNDISPacket.messageHeaderSize + RNDISPacket.wireSize + 3 * RNDISPacketInfo.entrySize + frame
            + GuestMemory.pageSize - 1) / GuestMemory.pageSize
    }

    /// An IPv4 datagram's limit plus the Ethernet header and one tag.
    public static let largeSendLimit = 65_535 + 18

    // MARK: NVSP

    private func nvspRequest(_ channel: GuestChannel, _ m: NVSPMessage, _ what: String) throws(NetVSCError) -> NVSPMessage {
        let reply: [UInt8]
        do { reply = try channel.request(m.wireBytes, timeoutNanoseconds: configuration.controlTimeoutNanoseconds) } catch {
            if case .timedOut = error { throw .timedOut("\(what): no answer from the host") }
            throw .channel(error)
        }
        do { return try NVSPMessage(wireBytes: reply, direction: .hostToGuest) } catch {
            throw .malformedResponse("\(what): \(error)")
        }
    }

    private func negotiateVersion(_ channel: GuestChannel) throws(NetVSCError) {
        for v in configuration.versions {
            let reply = try nvspRequest(channel, .`init`(NVSPInit(version: v)), "INIT \(v)")
            guard case .initComplete(let c) = reply else { throw .malformedResponse("INIT \(v) answered with \(reply.type)") }
            if c.status == .success {
                version = v
                return
            }
        }
        throw .negotiation("the host accepted none of the NVSP versions \(configuration.versions.map(\.description))")
    }

    /// SEND_NDIS_CONFIG (NVSP ≥ 2) and SEND_NDIS_VER, neither completed (Linux asks for no completion).
    private func announceNDIS(_ channel: GuestChannel) throws(NetVSCError) {
        guard let version else { return }
        if version >= .v2 {
            var capability: NVSPVSCCapability = .ieee8021q
            if version >= .v5 { capability.insert(.teaming) }
            try sendInband(channel, .sendNDISConfig(NVSPSendNDISConfig(mtu: UInt32(configuration.mtu + 14),
                                                                       capability: capability)))
        }
        try sendInband(channel, .sendNDISVersion(.linuxChoice(for: version)))
    }

    private func sendInband(_ channel: GuestChannel, _ m: NVSPMessage) throws(NetVSCError) {
        let bytes = m.wireBytes
        let r: Result<Void, GuestError> = bytes.withUnsafeBytes { p in
            do throws(GuestError) { try channel.sendInband(p); return .success(()) } catch { return .failure(error) }
        }
        do { try r.get() } catch { throw .channel(error) }
    }

    /// Creates the GPADL over `buffer`, records its handle at `handle` at once (so ``stop()`` tears it down
    /// whatever happens next), and sends the request naming it; returns the answer.
    private func handOver(_ buffer: GuestPageBuffer, _ channel: GuestChannel, _ what: String,
                          _ handle: ReferenceWritableKeyPath<NetVSC, UInt32?>,
                          _ request: (UInt32) -> NVSPMessage) throws(NetVSCError) -> NVSPMessage {
        let created: UInt32
        do { created = try device.createGPADL(pages: buffer.pages) } catch { throw .channel(error) }
        self[keyPath: handle] = created
        return try nvspRequest(channel, request(created), what)
    }

    private func handOverReceiveBuffer(_ channel: GuestChannel) throws(NetVSCError) {
        guard let rb = receiveBuffer else { throw .stopped }
        let reply = try handOver(rb, channel, "SEND_RECV_BUF", \.receiveGPADL) { .sendReceiveBuffer(NVSPSendReceiveBuffer(gpadlHandle: $0)) }
        guard case .sendReceiveBufferComplete(let c) = reply else {
            throw .malformedResponse("SEND_RECV_BUF answered with \(reply.type)")
        }
        guard c.status == .success else { throw .negotiation("SEND_RECV_BUF refused: \(c.status)") }
        // Linux's checks: one section at offset 0, slots of at least 68 bytes that fit the buffer. Ours too:
        // slots of at most `maxReceiveSlot` (each range is copied out whole, so the slot size bounds what one
        // range can make us copy).
        guard c.sections.count == 1, let s = c.sections.first, s.offset == 0, s.subAllocationSize >= 68,
              s.subAllocationSize <= Self.maxReceiveSlot,
              s.subAllocationCount >= 1,
              UInt64(s.subAllocationSize) * UInt64(s.subAllocationCount) <= UInt64(rb.size) else {
            throw .malformedResponse("receive sections \(c.sections)")
        }
        receiveSlotSize = Int(s.subAllocationSize)
        receive.withLock { r in
            r.scratch = [UInt8](repeating: 0, count: receiveSlotSize)
            r.slotSize = receiveSlotSize
        }
    }

    private func handOverSendBuffer(_ channel: GuestChannel) throws(NetVSCError) {
        guard let sb = sendBuffer else { throw .stopped }
        let reply = try handOver(sb, channel, "SEND_SEND_BUF", \.sendGPADL) { .sendSendBuffer(NVSPSendSendBuffer(gpadlHandle: $0)) }
        guard case .sendSendBufferComplete(let c) = reply else {
            throw .malformedResponse("SEND_SEND_BUF answered with \(reply.type)")
        }
        guard c.status == .success else { throw .negotiation("SEND_SEND_BUF refused: \(c.status)") }
        // Linux refuses sections below its minimum MTU; sections must also fit the buffer at least once.
        guard c.sectionSize >= 68, Int(c.sectionSize) <= sb.size else {
            throw .malformedResponse("send section size \(c.sectionSize)")
        }
        sendSectionSize = Int(c.sectionSize)
        let count = sb.size / sendSectionSize
        transmit.withLock { t in
            t.freeSections = Array((0..<count).reversed())
            t.sectionCount = count
        }
    }

    // MARK: RNDIS

    func nextRequestID() -> UInt32 {
        control.withLock { c in
            defer { c.nextRequestID = c.nextRequestID == .max ? 1 : c.nextRequestID + 1 }
            return c.nextRequestID
        }
    }

    /// Writes `message` to the control page and sends it GPA-direct as Linux does (SEND_RNDIS_PKT, control
    /// channel type, no section). Retries a full ring until the control timeout.
    func sendRNDIS(_ message: RNDISMessage) throws(NetVSCError) {
        guard let channel, let page = controlPage else { throw .stopped }
        var w = WireWriter(capacity: 256)
        message.encode(into: &w)
        guard w.count <= GuestMemory.pageSize else { throw .invalidArgument("an RNDIS request of \(w.count) bytes") }
        do { try w.bytes.withUnsafeBytes { try page.write(at: 0, from: $0) } } catch { throw .invalidArgument("control page: \(error)") }
        let range = GPARange(byteCount: UInt32(w.count), byteOffset: 0, pfns: page.pages)
        let payload = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .control)).wireBytes
        let deadline = monotonicNanoseconds() &+ configuration.controlTimeoutNanoseconds
        while true {
            do {
                try channel.sendGPADirectRequest(ranges: [range], payload: payload, context: Self.controlContext)
                return
            } catch {
                let full = error == .channel(.sendTimedOut) || error == .channel(.tooManyOutstandingRequests)
                guard full, monotonicNanoseconds() < deadline else { throw .channel(error) }
                sleepNanoseconds(100_000)
            }
        }
    }

    /// Sends a request built around a fresh `req_id` and waits for the completion carrying it.
    func rndisRequest(_ what: String, _ make: (UInt32) -> RNDISMessage) throws(NetVSCError) -> RNDISMessage {
        let timeout = configuration.controlTimeoutNanoseconds
        guard control.wait(timeoutNanoseconds: timeout, until: { c -> Bool? in
            guard !c.busy else { return nil }
            c.busy = true
            return true
        }) != nil else { throw .timedOut("\(what): another control request did not finish") }
        defer { control.update { c in c.busy = false; c.awaiting = nil; c.response = nil } }
        let id = nextRequestID()
        control.withLock { c in c.awaiting = id; c.response = nil }
        try sendRNDIS(make(id))
        guard let response = control.wait(timeoutNanoseconds: timeout, until: { c -> RNDISMessage? in c.response }) else {
            throw .timedOut("\(what): no RNDIS answer")
        }
        return response
    }

    func query(_ oid: RNDISOID, info: [UInt8] = []) throws(NetVSCError) -> RNDISQueryComplete {
        let r = try rndisRequest("QUERY \(oid)") { .queryRequest(RNDISQueryRequest(requestID: $0, oid: oid, infoBuffer: info)) }
        guard case .queryComplete(let c) = r else { throw .malformedResponse("QUERY \(oid) answered with \(r.type)") }
        return c
    }

    func set(_ oid: RNDISOID, _ info: [UInt8]) throws(NetVSCError) -> RNDISStatus {
        let r = try rndisRequest("SET \(oid)") { .setRequest(RNDISSetRequest(requestID: $0, oid: oid, infoBuffer: info)) }
        guard case .setComplete(let c) = r else { throw .malformedResponse("SET \(oid) answered with \(r.type)") }
        return c.status
    }

    static func u32(_ b: [UInt8]) -> UInt32? {
        guard b.count >= 4 else { return nil }
        var r = WireReader(b)
        return try? r.readUInt32()
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// `rndis_filter_device_add`'s order: INITIALIZE, MAXIMUM_FRAME_SIZE, PERMANENT_ADDRESS, offload
    /// capabilities and parameters, MEDIA_CONNECT_STATUS, and LINK_SPEED from NVSP 5.
    private func initializeRNDIS() throws(NetVSCError) {
        let r = try rndisRequest("INITIALIZE") {
            .initializeRequest(RNDISInitializeRequest(requestID: $0, maxTransferSize: Self.rndisMaxTransferSize))
        }
        guard case .initializeComplete(let c) = r, c.status == .success else {
            throw .negotiation("RNDIS INITIALIZE answered with \(r)")
        }
        // Batching as the host allows (Linux: `max_pkt`, `pkt_align`), within what we take from a host: at
        // most 64 messages a send, aligned to at most a page (a larger factor turns batching off).
        batchLimit = c.packetAlignmentFactor <= 12 ? Int(min(max(c.maxPacketsPerMessage, 1), 64)) : 1
        packetAlignment = c.packetAlignmentFactor <= 12 ? 1 << Int(c.packetAlignmentFactor) : 1
        mtu = configuration.mtu
        let frame = try query(.genMaximumFrameSize)
        if frame.status == .success, let v = Self.u32(frame.infoBuffer), v >= 68, Int(v) < mtu { mtu = Int(v) }
        let mac = try query(.ieee802_3PermanentAddress)
        guard mac.status == .success, mac.infoBuffer.count == 6 else {
            throw .negotiation("PERMANENT_ADDRESS: \(mac.status), \(mac.infoBuffer.count) bytes")
        }
        permanentMACAddress = mac.infoBuffer
        try negotiateOffloads()
        let media = try query(.genMediaConnectStatus)
        let up = media.status == .success && Self.u32(media.infoBuffer) == RNDISMediaState.connected.rawValue
        link.store(up, ordering: .releasing)
        if let version, version >= .v5 {
            let speed = try query(.genLinkSpeed)
            if speed.status == .success, let v = Self.u32(speed.infoBuffer) { linkSpeed = v }
        }
    }

    /// Asks for the offload capabilities at the revision Linux uses for this NVSP version and turns on
    /// transmit checksums (IPv4 header, TCP and UDP over IPv4 and IPv6) and, when configured, LSOv2 for the IP
    /// versions offered; no receive offloads.
    private func negotiateOffloads() throws(NetVSCError) {
        guard let version else { return }
        let (revision, size): (UInt8, Int) = version >= .v5 ? (NDISOffload.revision3, NDISOffload.wireSize)
            : version >= .v4 ? (NDISOffload.revision2, NDISOffload.size6_1) : (NDISOffload.revision1, NDISOffload.size6_0)
        var w = WireWriter(capacity: NDISObjectHeader.wireSize)
        NDISObjectHeader(type: NDISObjectHeader.typeOffload, revision: revision, size: UInt16(size)).encode(into: &w)
        let caps = try query(.tcpOffloadHardwareCapabilities, info: w.bytes)
        guard caps.status == .success else { return }
        var r = WireReader(caps.infoBuffer)
        guard let offload = try? NDISOffload(from: &r) else {
            counters.malformed.bump()
            return
        }
        let tx4 = offload.checksum.ip4TXChecksum, tx6 = offload.checksum.ip6TXChecksum
        let wanted = NDISChecksumOffload.capIP4 | NDISChecksumOffload.allTCP4 | NDISChecksumOffload.capUDP4
        let checksums = tx4 & wanted == wanted
        // As netvsc: TCP over IPv6 when all of ALL_TCP6 is offered, UDP when CAP_UDP6 is.
        let checksums6 = offload.checksum.ip6TXEncapsulation & NDISOffload.encapsulation8023 != 0
            && tx6 & NDISChecksumOffload.allTCP6 == NDISChecksumOffload.allTCP6 && tx6 & NDISChecksumOffload.capUDP6 != 0
        // Linux: TSO for IPv4 when `ip4_encap` names 802.3, its limit `ip4_maxsz`; for IPv6 when `ip6_encap`
        // does and `ip6_opts` has all of NDIS_LSOV2_CAP_IP6.
        let lso = configuration.largeSendOffload && offload.lsoV2.ip4Encapsulation & NDISOffload.encapsulation8023 != 0
            && offload.lsoV2.ip4MaxSize > 0
        let lso6 = lso && offload.lsoV2.ip6Encapsulation & NDISOffload.encapsulation8023 != 0
            && offload.lsoV2.ip6Options & NDISLSOv2Offload.capIP6 == NDISLSOv2Offload.capIP6 && offload.lsoV2.ip6MaxSize > 0
        // Linux offers LRO when RSC is there for both IP versions (revision 3 of the structure, NVSP 5+).
        let rsc = configuration.receiveCoalescing && version >= .v5 && offload.rsc.ip4 != 0 && offload.rsc.ip6 != 0
        guard checksums || checksums6 || lso || rsc else { return }
        var params = NDISOffloadParams(header: NDISOffloadParams.header(legacy: version <= .v4))
        if checksums {
            params.ipV4Checksum = NDISOffloadParams.txEnabledRXDisabled
            params.tcpIPv4Checksum = NDISOffloadParams.txEnabledRXDisabled
            params.udpIPv4Checksum = NDISOffloadParams.txEnabledRXDisabled
        }
        if checksums6 {
            params.tcpIPv6Checksum = NDISOffloadParams.txEnabledRXDisabled
            params.udpIPv6Checksum = NDISOffloadParams.txEnabledRXDisabled
        }
        params.lsoV2IPv4 = lso ? NDISOffloadParams.lsoV2Enabled : NDISOffloadParams.lsoV2Disabled
        params.lsoV2IPv6 = lso6 ? NDISOffloadParams.lsoV2Enabled : NDISOffloadParams.lsoV2Disabled
        if version >= .v5 {
            params.rscIPv4 = rsc ? NDISOffloadParams.rscEnabled : NDISOffloadParams.rscDisabled
            params.rscIPv6 = params.rscIPv4
        }
        var pw = WireWriter(capacity: NDISOffloadParams.wireSize)
        params.encode(into: &pw)
        guard try set(.tcpOffloadParameters, pw.bytes) == .success else { return }
        checksumOffload = checksums
        checksumOffloadIPv6 = checksums6
        receiveCoalescing = rsc
        if lso {
            var limit = min(Int(offload.lsoV2.ip4MaxSize), Self.largeSendLimit)
            if lso6 { limit = min(limit, Int(offload.lsoV2.ip6MaxSize)) }
            largeSendMaxSize = limit
            largeSendIPv6 = lso6
        }
    }

    /// Linux's RSS set-up (`rndis_filter_device_add`, NVSP 5+): RSS capabilities, SUBCHANNEL for the queues
    /// beyond the primary, the sub-channels opened as they are offered, then RECEIVE_SCALE_PARAMETERS twice
    /// (disabled, then a 128-entry table spreading the buckets over the channels and Linux's key).
    private func setUpReceiveScaling(_ primary: GuestChannel) throws(NetVSCError) {
        guard configuration.queues > 1, let version, version >= .v5 else { return }
        let capsReply = try query(.genReceiveScaleCapabilities)
        guard capsReply.status == .success else { return }
        var r = WireReader(capsReply.infoBuffer)
        guard let caps = try? NDISReceiveScaleCapabilities(from: &r) else { return counters.malformed.bump() }
        let wanted = min(configuration.queues, Int(caps.receiveQueueCount), channelsByIndex.count)
        guard wanted >= 2 else { return }
        let reply = try nvspRequest(primary, .subchannelRequest(NVSPSubchannelRequest(subchannelCount: UInt32(wanted - 1))),
                                    "SUBCHANNEL")
        guard case .subchannelComplete(let c) = reply, c.status == .success else { return }
        // Linux refuses more sub-channels than it asked for.
        guard Int(c.subchannelCount) <= wanted - 1 else {
            throw .malformedResponse("SUBCHANNEL granted \(c.subchannelCount) of \(wanted - 1)")
        }
        guard c.subchannelCount > 0 else { return }
        let offers: [OfferChannel]
        do { offers = try device.waitForSubchannels(Int(c.subchannelCount), timeoutNanoseconds: configuration.controlTimeoutNanoseconds) }
        catch { throw .channel(error) }
        for offer in offers {
            guard Int(offer.subchannelIndex) < channelsByIndex.count, channelsByIndex[Int(offer.subchannelIndex)] == nil else {
                throw .malformedResponse("sub-channel index \(offer.subchannelIndex)")
            }
            let sub: GuestChannel
            do {
                sub = try device.open(offer, outgoingRingSize: configuration.ringSize, incomingRingSize: configuration.ringSize,
                                      maxPacketSize: Self.maxIncomingPacket, requestSlots: 16, handler: self)
            } catch { throw .channel(error) }
            pendingCompletions.withLock { _ in channelsByIndex[Int(offer.subchannelIndex)] = sub }
            subchannels.append(sub)
        }
        let channels = UInt32(1 + subchannels.count)
        let table = (0..<UInt32(NDISReceiveScaleParameters.linuxIndirectionTableEntries)).map { $0 % channels }
        for disabled in [true, false] {
            let p = NDISReceiveScaleParameters(flags: disabled ? NDISReceiveScaleParameters.flagDisableRSS : 0,
                                               indirectionTable: table)
            var w = WireWriter(capacity: p.encodedLength)
            p.encode(into: &w)
            let status = try set(.genReceiveScaleParameters, w.bytes)
            guard status == .success else { throw .negotiation("RECEIVE_SCALE_PARAMETERS refused: \(status)") }
        }
    }

    /// SET GEN_CURRENT_PACKET_FILTER; 0 stops reception (what Linux sends when the interface goes down).
    public func setPacketFilter(_ filter: NDISPacketFilter) throws(NetVSCError) {
        let status = try set(.genCurrentPacketFilter, Self.le32(filter.rawValue))
        guard status == .success else { throw .negotiation("packet filter refused: \(status)") }
    }

    /// Changes the MAC address as Linux does: GEN_RNDIS_CONFIG_PARAMETER "NetworkAddress" = 12 hex digits.
    public func setMACAddress(_ mac: [UInt8]) throws(NetVSCError) {
        guard mac.count == 6 else { throw .invalidArgument("a MAC address of \(mac.count) bytes") }
        var w = WireWriter(capacity: 128)
        RNDISConfigParameterInfo.networkAddress(mac).encode(into: &w)
        let status = try set(.genRNDISConfigParameter, w.bytes)
        guard status == .success else { throw .negotiation("NetworkAddress refused: \(status)") }
        control.withLock { $0.currentMAC = mac }
    }
}
