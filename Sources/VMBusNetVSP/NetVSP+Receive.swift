import VMBusHost
import VMBusNetProtocol
import VMBusProtocol
import VMBusRing
import VMBusWire

/// What the writers of receive slots share, under ``NetVSP/delivery``.
struct DeliveryState {
    var open = false
    /// RNDIS initialized, packet filter not 0, link up.
    var receiving = false
    var receive: HostReceiveBuffer?
    /// Open channels by sub-channel index (0 = primary).
    var channels: [HostChannel?]
    var receiveScaling: ReceiveScaling?
    var deliveredPerChannel: [Int]
    var messageSize = NVSPMessage.wireSize
    var message = WireWriter(capacity: 128)
    var header = WireWriter(capacity: 16)
    var payload = WireWriter(capacity: NVSPMessage.wireSize)
    /// The channel type and size `payload` was encoded for (nil: encode again), so a stream of data frames
    /// encodes its SEND_RNDIS_PKT once.
    var payloadKey: (type: UInt32, size: Int)?
    /// A frame's headers (no PPIs on receive): encoded once, lengths patched per frame.
    var plainHeader = RNDISPacketHeaderTemplate()

    init(queues: Int) {
        channels = [HostChannel?](repeating: nil, count: queues)
        deliveredPerChannel = [Int](repeating: 0, count: queues)
    }

    /// The channel RSS picks for `frame` (the primary when RSS is off or the chosen sub-channel is not open).
    func channel(for frame: UnsafeRawBufferPointer) -> (Int, HostChannel)? {
        if let scaling = receiveScaling {
            let i = scaling.channel(for: frame)
            if i < channels.count, let c = channels[i] { return (i, c) }
        }
        return channels.first.flatMap { $0 }.map { (0, $0) }
    }
}

extension NetVSP {
    /// Hands a frame to the guest (see ``NetPort/deliver(_:)``).
    public func deliver(_ frame: UnsafeRawBufferPointer) -> NetDelivery {
        guard frame.count >= 14, frame.count <= maxFrameSize else {
            counters.rxDropped.bump()
            return .dropped
        }
        return delivery.withLock { d -> NetDelivery in
            guard d.open, d.receiving, let rb = d.receive, let (queue, channel) = d.channel(for: frame) else {
                counters.rxDropped.bump()
                return .dropped
            }
            guard let slot = takeSlot(rb) else {
                counters.rxBusy.bump()
                return .busy
            }
            let header = d.plainHeader.bytes(frameLength: frame.count)
            let offset = slot * rb.slotSize
            let headerLength = header.count
            do {
                try header.withUnsafeBytes { try rb.pages.write(at: offset, from: $0) }
                try rb.pages.write(at: offset + headerLength, from: frame)
            } catch {
                _ = rb.release(transactionID: HostReceiveBuffer.transactionID(slot: slot))
                counters.rxDropped.bump()
                return .dropped
            }
            guard sendTransferPage(&d, rb, channel, slot: slot, length: headerLength + frame.count, type: .data) else {
                counters.rxDropped.bump()
                return .dropped
            }
            counters.rxPackets.bump()
            counters.rxBytes.bump(frame.count)
            d.deliveredPerChannel[queue] += 1
            return .accepted
        }
    }

    /// A free slot; if there is none the backend is marked waiting, then we look once more, so a completion
    /// that came in between is not missed.
    private func takeSlot(_ rb: HostReceiveBuffer) -> Int? {
        if let slot = rb.take() { return slot }
        backendWaiting.store(true, ordering: .sequentiallyConsistent)
        return rb.take()
    }

    /// Sends the transfer-page packet naming `length` bytes of `slot`. On failure (the channel closed, or
    /// the guest left the ring full past the send timeout) the slot is given back.
    private func sendTransferPage(_ d: inout DeliveryState, _ rb: HostReceiveBuffer, _ channel: HostChannel, slot: Int,
                                  length: Int, type: NVSPSendRNDISPacket.ChannelType) -> Bool {
        d.header.reset()
        d.header.writeUInt16(rb.id)   // xfer_pageset_id: the id the guest registered (Linux 0xCAFE)
        d.header.writeUInt8(0)        // sender_owns_set
        d.header.writeUInt8(0)        // reserved
        d.header.writeUInt32(1)       // range_cnt
        d.header.writeUInt32(UInt32(length))
        d.header.writeUInt32(UInt32(slot * rb.slotSize))
        if d.payloadKey?.type != type.rawValue || d.payloadKey?.size != d.messageSize {
            d.payload.reset()
            NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: type)).encode(into: &d.payload,
                                                                                     minimumSize: d.messageSize)
            d.payloadKey = (type.rawValue, d.messageSize)
        }
        let id = HostReceiveBuffer.transactionID(slot: slot)
        let sent: Bool = d.header.bytes.withUnsafeBytes { h in
            d.payload.bytes.withUnsafeBytes { p in
                (try? channel.endpoint.send(type: .dataUsingXferPages, flags: PacketDescriptor.flagCompletionRequested,
                                            transactionID: id, header: h, payload: p)) != nil
            }
        }
        if !sent { _ = rb.release(transactionID: id) }
        return sent
    }

    /// Sends an RNDIS control message (a completion or an indication) through the receive buffer.
    func sendControl(_ message: RNDISMessage) {
        delivery.withLock { d in
            guard d.open, let rb = d.receive, let channel = d.channels.first ?? nil else {
                counters.controlResponsesDropped.bump()
                return
            }
            d.message.reset()
            message.encode(into: &d.message)
            guard d.message.count <= rb.slotSize, let slot = rb.take() else {
                counters.controlResponsesDropped.bump()
                return
            }
            let written: Bool = d.message.bytes.withUnsafeBytes { (try? rb.pages.write(at: slot * rb.slotSize, from: $0)) != nil }
            guard written else {
                _ = rb.release(transactionID: HostReceiveBuffer.transactionID(slot: slot))
                counters.controlResponsesDropped.bump()
                return
            }
            if !sendTransferPage(&d, rb, channel, slot: slot, length: d.message.count, type: .control) {
                counters.controlResponsesDropped.bump()
            }
        }
    }

    /// Recomputes whether frames may go to the guest, under the delivery lock: a delivery either finished
    /// before the change or sees it.
    func refreshReceiveGate() {
        delivery.withLock { d in
            d.receiving = rndis.withLock { r in r.stage == .initialized && !r.packetFilter.isEmpty && r.linkUp }
        }
    }

    /// Link up or down: the guest hears MEDIA_CONNECT or MEDIA_DISCONNECT (once RNDIS is initialized), and no
    /// frame reaches it while the link is down.
    public func setLink(up: Bool) {
        let (changed, ready) = rndis.withLock { r -> (Bool, Bool) in
            defer { r.linkUp = up }
            return (r.linkUp != up, r.stage == .initialized)
        }
        refreshReceiveGate()
        if changed && ready { sendControl(RNDISDevice.linkIndication(up: up)) }
    }

    public var linkUp: Bool { rndis.withLock { $0.linkUp } }
}
