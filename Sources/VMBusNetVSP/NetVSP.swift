import Atomics
import VMBusHost
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusRing
import VMBusSync
import VMBusTransport
import VMBusWire

/// The host's network VSP: one synthetic NIC (Linux's peer is `hv_netvsc`) whose frames go to a
/// ``NetBackend``.
///
/// Control: NVSP on the primary channel through ``NetVSPNegotiation`` (INIT with fallback, NDIS config and
/// version), the receive and send buffers (GPADLs), and RNDIS control messages through ``RNDISDevice``.
///
/// Transmit (guest → host, the channel's worker thread): SEND_RNDIS_PKT from a send-buffer section, from GPA
/// ranges, or both (a section followed by the ranges); each PACKET's frame gets the checksums the guest left
/// to offload and goes to the backend; the request is completed.
///
/// Receive (host → guest, the backend's thread through ``deliver(_:)``): the frame is written into a free
/// receive slot and named by a transfer-page packet; the guest's completion gives the slot back. A frame is
/// accepted only once its slot is written; the packet then waits for ring space (`pending_send_sz`) rather than
/// being dropped.
public final class NetVSP: VMBusDeviceProvider, NetPort, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var macAddress: [UInt8]
        public var mtu: Int = 1500
        public var acceptedVersions: Set<NVSPProtocolVersion> = Set(NVSPProtocolVersion.all)
        /// `NETVSC_SEND_SECTION_SIZE`, what Hyper-V and OpenVMM answer.
        public var sendSectionSize: Int = 6144
        /// Largest buffers a guest may hand over (Linux: 31 MiB receive, 15 MiB send at most).
        public var maxReceiveBufferBytes: Int = 32 << 20
        public var maxSendBufferBytes: Int = 16 << 20
        /// In 100 bit/s units.
        public var linkSpeed: UInt32 = 100_000_000
        public var offersChecksumOffload = true
        /// Whether LSOv2 (TCP over IPv4 and IPv6) is offered; the host segments such sends itself.
        public var offersLargeSendOffload = true
        /// Receive queues (the primary channel plus sub-channels the guest asks for, NVSP 5 and later), frames
        /// spread over them by the guest's RSS settings. 1: no RSS, one channel.
        public var receiveQueues = 1
        /// What RNDIS INITIALIZE_CMPLT tells the guest about batching sends: at most this many PACKET messages
        /// per request (`max_pkt_per_msg`), each aligned to `1 << packetAlignmentFactor` bytes in a section.
        public var maxPacketsPerMessage: UInt32 = 8
        public var packetAlignmentFactor: UInt32 = 3
        public init(macAddress: [UInt8]) { self.macAddress = macAddress }
    }

    public let offer: HostDeviceOffer
    public let configuration: Configuration
    public let backend: any NetBackend
    /// One receive slot: the RNDIS PACKET header, two PPIs and the largest frame, 64-byte aligned.
    public let receiveSlotSize: Int
    /// The largest GPA-direct payload gathered for one request (a 64 KiB LSO packet and its headers).
    static let maxGatherBytes = 72 * 1024

    let counters = NetVSPCounterSet()
    let lastError = Lock<String?>(nil)
    let negotiation: Lock<NetVSPNegotiation>
    let rndis: Lock<RNDISDevice>
    private let device = Lock<HostDeviceHandle?>(nil)
    /// Serialises writers of receive slots and transfer-page packets, and holds what they reuse; see
    /// ``NetVSP+Receive``.
    let delivery: Lock<DeliveryState>
    /// A backend was told busy: tell it when a slot comes back.
    let backendWaiting = ManagedAtomic<Bool>(false)
    /// Every open channel's worker state, by sub-channel index (0 = primary).
    let contexts = Lock<[UInt16: ChannelContext]>([:])
    /// The buffers the guest lent, shared by every channel (sub-channels receive into the same buffer).
    let buffers = Lock(Buffers())

    struct Buffers {
        var receive: HostReceiveBuffer?
        var send: GuestPageBuffer?
        var sendID: UInt16 = 0
    }

    /// One channel's worker-only state: the bytes of the current request (section and/or GPA ranges), the
    /// frames found in it, an LSO segment, a frame with its 802.1Q tag inserted, and the completion writer.
    /// Only the channel's worker thread uses it (packets are handled there one at a time), so its buffers are
    /// not checked for exclusivity at run time: that check is a thread-local lookup per access.
    final class ChannelContext: @unchecked Sendable {
        let channel: HostChannel
        @exclusivity(unchecked) var scratch: [UInt8]
        @exclusivity(unchecked) var frames: [TransmitFrame] = []
        @exclusivity(unchecked) var segment: [UInt8]
        @exclusivity(unchecked) var tagged: [UInt8]
        @exclusivity(unchecked) var writer = WireWriter(capacity: NVSPMessage.wireSize)
        /// SEND_RNDIS_PKT_COMPLETE with SUCCESS at the size it was encoded for (-1: not yet): every sent
        /// frame is completed with it, so it is encoded once.
        @exclusivity(unchecked) var success = WireWriter(capacity: NVSPMessage.wireSize)
        @exclusivity(unchecked) var successSize = -1
        /// Frames the guest sent on this channel (read by ``NetVSP/transmitPacketsPerQueue``).
        let transmitted = ManagedAtomic<Int>(0)
        init(channel: HostChannel, maxFrameSize: Int) {
            self.channel = channel
            scratch = [UInt8](repeating: 0, count: NetVSP.maxGatherBytes)
            segment = [UInt8](repeating: 0, count: maxFrameSize)
            tagged = [UInt8](repeating: 0, count: NetVSP.maxGatherBytes + 4)
            frames.reserveCapacity(64)
        }
    }

    struct TransmitFrame {
        var index: Int
        var length: Int
        var checksum: NDISTCPIPChecksumInfo?
        var largeSend: NDISTCPLSOInfo?
        var vlan: NDISPacket8021QInfo?
    }

    public init(instanceID: GUID, configuration: Configuration, backend: any NetBackend) {
        self.configuration = configuration
        self.backend = backend
        // RNDIS header (8) + PACKET (36) + two PPIs (32) + the frame (MTU + 14, and room for one 802.1Q tag).
        receiveSlotSize = (8 + 36 + 32 + configuration.mtu + 18 + 63) & ~63
        // Linux raises its own max_pkt_size for netvsc; GPA-direct sends name up to 32 page ranges.
        let queues = min(64, max(1, configuration.receiveQueues))
        offer = HostDeviceOffer(classID: DeviceClass.nic.classID, instanceID: instanceID, maxSubchannels: queues - 1,
                                maxPacketSize: 16 * 1024)
        negotiation = Lock(NetVSPNegotiation(configuration: .init(acceptedVersions: configuration.acceptedVersions)))
        var device = RNDISDevice.Configuration(macAddress: configuration.macAddress, mtu: configuration.mtu,
                                               linkSpeed: configuration.linkSpeed,
                                               offersChecksumOffload: configuration.offersChecksumOffload,
                                               offersLargeSendOffload: configuration.offersLargeSendOffload)
        device.receiveQueues = queues
        device.maxPacketsPerMessage = configuration.maxPacketsPerMessage
        device.packetAlignmentFactor = configuration.packetAlignmentFactor
        rndis = Lock(RNDISDevice(configuration: device))
        delivery = Lock(DeliveryState(queues: queues))
    }

    public var counterSnapshot: NetVSPCounters { counters.snapshot(lastError: lastError.withLock { $0 }) }
    public var negotiatedVersion: NVSPProtocolVersion? { negotiation.withLock { $0.version } }
    public var rndisStage: RNDISDevice.Stage { rndis.withLock { $0.stage } }
    public var packetFilter: NDISPacketFilter { rndis.withLock { $0.packetFilter } }
    public var macAddress: [UInt8] { rndis.withLock { $0.currentMACAddress } }
    public var maxFrameSize: Int { configuration.mtu + 18 }
    /// Receive slots the guest has not returned.
    public var outstandingReceiveSlots: Int {
        buffers.withLock { b in b.receive.map { $0.slotCount - $0.freeSlots } ?? 0 }
    }
    /// Frames delivered on each channel (0 = primary), for seeing RSS at work.
    public var receivePacketsPerChannel: [Int] { delivery.withLock { $0.deliveredPerChannel } }

    func fault(_ why: String) {
        counters.protocolErrors.bump()
        lastError.withLock { $0 = why }
    }

    // MARK: Channel life

    public func attached(_ device: HostDeviceHandle) { self.device.withLock { $0 = device } }

    public func channelOpened(_ channel: HostChannel) throws {
        let index = channel.subchannelIndex
        contexts.withLock { $0[index] = ChannelContext(channel: channel, maxFrameSize: maxFrameSize) }
        delivery.withLock { d in if Int(index) < d.channels.count { d.channels[Int(index)] = channel } }
    }

    public func channelClosed(_ channel: HostChannel) {
        let index = channel.subchannelIndex
        let was = contexts.withLock { c -> Bool in
            guard c[index]?.channel === channel else { return false }
            c[index] = nil
            return true
        }
        // Under the delivery lock: a delivery that is writing a slot finishes first, and none starts after,
        // so no guest memory is touched through this channel once this returns.
        delivery.withLock { d in
            if Int(index) < d.channels.count, d.channels[Int(index)] === channel {
                d.channels[Int(index)] = nil
                // Slots held for it go back (sendHeld sees the channel gone).
                if let rb = d.receive { sendHeld(&d, rb, queue: Int(index)) }
            }
            if index == 0 {
                d.open = false
                d.forgetHeld()
                d.receive = nil
                d.receiveScaling = nil
            }
        }
        guard index == 0 else { return }
        buffers.withLock { $0 = Buffers() }
        negotiation.withLock { n in n = NetVSPNegotiation(configuration: n.configuration) }
        rndis.withLock { r in
            let up = r.linkUp
            r = RNDISDevice(configuration: r.configuration)
            r.linkUp = up
        }
        if was { backend.detached(self) }
    }

    /// Frames the guest sent on each open channel, by sub-channel index (0 = primary).
    public var transmitPacketsPerQueue: [Int] {
        contexts.withLock { c in
            let last = c.keys.max().map(Int.init) ?? -1
            return (0...max(0, last)).map { c[UInt16($0)]?.transmitted.load(ordering: .relaxed) ?? 0 }
        }
    }

    // MARK: Packets

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        guard let state = contexts.withLock({ $0[channel.subchannelIndex] }), state.channel === channel else {
            return fault("packet on a channel that is not open")
        }
        switch packet.descriptor.type {
        case .completion:
            receiveCompleted(transactionID: packet.descriptor.transactionID, state)
        case .dataInband:
            var r = buffer.wireReader(for: packet)
            let version = negotiation.withLock { $0.version }
            let message: NVSPMessage
            do { message = try NVSPMessage(from: &r, direction: .guestToHost, version: version) } catch {
                fault("NVSP message: \(error)")
                return completeWithFailure(packet, state)
            }
            if case .sendRNDISPacket(let m) = message {
                transmit(m, gather: nil, packet: packet, state)
            } else if channel.subchannelIndex == 0 {
                control(message, packet: packet, state)
            } else {
                fault("\(message.type) on sub-channel \(channel.subchannelIndex)")
                completeWithFailure(packet, state)
            }
        case .dataUsingGPADirect:
            var r = buffer.wireReader(wholePacket: packet)
            do {
                let view = try GPADirectPacketView(from: &r)
                let message = try NVSPMessage(from: &r, direction: .guestToHost, version: negotiation.withLock { $0.version })
                guard case .sendRNDISPacket(let m) = message else {
                    fault("GPA-direct packet carrying \(message.type)")
                    return completeWithFailure(packet, state)
                }
                transmit(m, gather: view, packet: packet, state)
            } catch {
                fault("GPA-direct packet: \(error)")
                completeWithFailure(packet, state)
            }
        default:
            fault("unexpected packet type \(packet.descriptor.type)")
        }
    }

    /// The guest is done with the slot of a transfer-page packet.
    private func receiveCompleted(transactionID: UInt64, _ state: ChannelContext) {
        guard let receive = buffers.withLock({ $0.receive }), receive.release(transactionID: transactionID) else {
            counters.unknownCompletions.bump()
            return
        }
        if backendWaiting.exchange(false, ordering: .acquiringAndReleasing) { backend.receiveSpaceAvailable(self) }
    }

    // MARK: NVSP control

    private func control(_ message: NVSPMessage, packet: ReceivedPacket, _ state: ChannelContext) {
        let wants = packet.descriptor.completionRequested
        let id = packet.descriptor.transactionID
        switch message {
        case .sendReceiveBuffer(let m):
            let status = attachReceiveBuffer(m, state)
            let sections: [NVSPReceiveBufferSection]
            if status == .success, let rb = buffers.withLock({ $0.receive }) {
                sections = [NVSPReceiveBufferSection(offset: 0, subAllocationSize: UInt32(rb.slotSize),
                                                     subAllocationCount: UInt32(rb.slotCount),
                                                     endOffset: UInt32(rb.slotCount * rb.slotSize))]
            } else {
                sections = []
            }
            if wants {
                reply(.sendReceiveBufferComplete(NVSPSendReceiveBufferComplete(status: status, sections: sections)),
                      id, state)
            }
        case .sendSendBuffer(let m):
            let status = attachSendBuffer(m, state)
            if wants {
                reply(.sendSendBufferComplete(NVSPSendSendBufferComplete(
                    status: status, sectionSize: status == .success ? UInt32(configuration.sendSectionSize) : 0)), id, state)
            }
        case .revokeReceiveBuffer(let m):
            guard let rb = buffers.withLock({ $0.receive }), rb.id == m.id else {
                fault("REVOKE_RECV_BUF of unknown id \(m.id)")
                return completeWithFailure(packet, state)
            }
            delivery.withLock { d in
                d.forgetHeld()
                d.receive = nil
            }
            buffers.withLock { $0.receive = nil }
            if wants { reply(nil, id, state) }
        case .revokeSendBuffer(let m):
            guard buffers.withLock({ $0.send != nil && $0.sendID == m.id }) else {
                fault("REVOKE_SEND_BUF of unknown id \(m.id)")
                return completeWithFailure(packet, state)
            }
            buffers.withLock { $0.send = nil }
            if wants { reply(nil, id, state) }
        case .subchannelRequest(let m):
            // Granted up to the queues offered (Linux refuses more than it asked for); the offers follow the
            // completion, and the guest opens each before it sets RSS.
            let allowed = negotiation.withLock { ($0.version ?? .v1) >= .v5 } && m.operation == .allocate
            let granted = allowed ? min(Int(m.subchannelCount), offer.maxSubchannels) : 0
            if wants {
                reply(.subchannelComplete(NVSPSubchannelComplete(status: allowed ? .success : .fail,
                                                                 subchannelCount: UInt32(granted))), id, state)
            }
            if !allowed { fault("SUBCHANNEL request before NVSP 5 or not ALLOCATE") }
            if granted > 0 {
                _ = device.withLock({ $0 })?.offerSubchannels(granted)
                sendIndirectionTable(queues: granted + 1, state)
            }
        case .switchDataPath:
            // No VF: the synthetic path stays; the completion is empty (PROTOCOL.md §8.3).
            if wants { reply(nil, id, state) }
        default:
            let outcome = negotiation.withLock { $0.handle(message) }
            switch outcome {
            case .complete(let m): if wants { reply(m, id, state) }
            case .none: if wants { reply(nil, id, state) }
            case .refuse(let why):
                fault(why)
                completeWithFailure(packet, state)
            }
        }
    }

    /// Maps the receive buffer the guest lent: a known GPADL of whole pages within our cap. Once only.
    private func attachReceiveBuffer(_ m: NVSPSendReceiveBuffer, _ state: ChannelContext) -> NVSPStatus {
        guard negotiation.withLock({ $0.bufferAllowed }) else { fault("SEND_RECV_BUF before INIT"); return .fail }
        guard buffers.withLock({ $0.receive == nil }) else { fault("a second SEND_RECV_BUF"); return .fail }
        guard let pages = bufferPages(m.gpadlHandle, state, limit: configuration.maxReceiveBufferBytes) else {
            return .fail
        }
        guard pages.size / receiveSlotSize >= 1 else { fault("receive buffer smaller than a slot"); return .fail }
        let rb = HostReceiveBuffer(id: m.id, gpadl: m.gpadlHandle, pages: pages, slotSize: receiveSlotSize)
        buffers.withLock { $0.receive = rb }
        delivery.withLock { d in
            d.receive = rb
            d.open = true
            d.messageSize = negotiation.withLock { $0.messageSize }
        }
        return .success
    }

    private func attachSendBuffer(_ m: NVSPSendSendBuffer, _ state: ChannelContext) -> NVSPStatus {
        guard negotiation.withLock({ $0.bufferAllowed }) else { fault("SEND_SEND_BUF before INIT"); return .fail }
        guard buffers.withLock({ $0.send == nil }) else { fault("a second SEND_SEND_BUF"); return .fail }
        guard let pages = bufferPages(m.gpadlHandle, state, limit: configuration.maxSendBufferBytes) else { return .fail }
        guard pages.size >= configuration.sendSectionSize else { fault("send buffer smaller than a section"); return .fail }
        buffers.withLock { b in
            b.send = pages
            b.sendID = m.id
        }
        return .success
    }

    /// The GPADL's pages if it is one range of whole pages, at most `limit` bytes, inside guest memory.
    private func bufferPages(_ handle: UInt32, _ state: ChannelContext, limit: Int) -> GuestPageBuffer? {
        guard let ranges = device.withLock({ $0 })?.gpadlRanges(handle, relID: state.channel.relID) else {
            fault("buffer GPADL 0x\(String(handle, radix: 16)) is not a ready GPADL of this channel")
            return nil
        }
        guard ranges.count == 1, let r = ranges.first, r.byteOffset == 0,
              Int(r.byteCount) == r.pfns.count * GuestMemory.pageSize, Int(r.byteCount) <= limit else {
            fault("buffer GPADL 0x\(String(handle, radix: 16)) is not one range of whole pages within \(limit) bytes")
            return nil
        }
        do { return try GuestPageBuffer(memory: state.channel.memory, pages: r.pfns) } catch {
            fault("buffer GPADL pages: \(error)")
            return nil
        }
    }

    /// Sends `message` (or an empty payload) as the completion of `id`, sized for the negotiated version.
    func reply(_ message: NVSPMessage?, _ id: UInt64, _ state: ChannelContext) {
        state.writer.reset()
        message?.encode(into: &state.writer, minimumSize: negotiation.withLock { $0.messageSize })
        sendCompletion(state.writer.bytes, id, state)
    }

    /// SEND_INDIRECTION_TABLE (NVSP 5), as Hyper-V sends it once sub-channels are granted: the guest picks the
    /// channel of each send from its 16 entries by the flow's hash, so transmit spreads over the queues too. The
    /// entries name the queues round robin.
    func sendIndirectionTable(queues: Int, _ state: ChannelContext) {
        let entries = (0..<NVSPSendIndirectionTable.linuxEntryCount).map { UInt32($0 % queues) }
        var w = WireWriter(capacity: NVSPMessage.wireSize + 4 * entries.count)
        NVSPMessage.sendIndirectionTable(NVSPSendIndirectionTable(entries: entries))
            .encode(into: &w, minimumSize: negotiation.withLock { $0.messageSize })
        let sent: Bool = w.bytes.withUnsafeBytes { p in
            (try? state.channel.endpoint.send(type: .dataInband, flags: 0, transactionID: 0, header: UnsafeRawBufferPointer(start: nil, count: 0),
                                              payload: p)) != nil
        }
        if !sent { lastError.withLock { $0 = "SEND_INDIRECTION_TABLE could not be sent" } }
    }

    /// SEND_RNDIS_PKT_COMPLETE with SUCCESS, the same bytes ``reply(_:_:_:)`` would write.
    func replySuccess(_ id: UInt64, _ state: ChannelContext) {
        let size = negotiation.withLock { $0.messageSize }
        if state.successSize != size {
            state.success.reset()
            NVSPMessage.sendRNDISPacketComplete(NVSPSendRNDISPacketComplete(status: .success))
                .encode(into: &state.success, minimumSize: size)
            state.successSize = size
        }
        sendCompletion(state.success.bytes, id, state)
    }

    private func sendCompletion(_ bytes: [UInt8], _ id: UInt64, _ state: ChannelContext) {
        let sent: Bool = bytes.withUnsafeBytes { p in (try? state.channel.sendCompletion(transactionID: id, p)) != nil }
        if !sent { lastError.withLock { $0 = "completion \(id) could not be sent" } }
    }

    /// Fails a request the guest wants completed: SEND_RNDIS_PKT_COMPLETE with FAIL (what Linux's completion
    /// handler reads for every kind of request it waits on).
    func completeWithFailure(_ packet: ReceivedPacket, _ state: ChannelContext) {
        guard packet.descriptor.completionRequested else { return }
        reply(.sendRNDISPacketComplete(NVSPSendRNDISPacketComplete(status: .fail)), packet.descriptor.transactionID, state)
    }
}
