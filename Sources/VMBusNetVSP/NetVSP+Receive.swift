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
    var header = WireWriter(capacity: 16 + 8 * NetVSP.maxCoalescedFragments)
    var payload = WireWriter(capacity: NVSPMessage.wireSize)
    /// The channel type and size `payload` was encoded for (nil: encode again), so a stream of data frames
    /// encodes its SEND_RNDIS_PKT once.
    var payloadKey: (type: UInt32, size: Int)?
    /// A frame's headers (no PPIs on receive): encoded once, lengths patched per frame.
    var plainHeader = RNDISPacketHeaderTemplate()
    /// The guest turned RSC on (IPv4, IPv6): segments a backend hands over whole go as one coalesced packet.
    var coalescing = (ipv4: false, ipv6: false)
    /// A frame the backend left unfinished, copied to be finished or cut in software.
    var unfinished = [UInt8](repeating: 0, count: NetVSP.maxGatherBytes)
    var segment: [UInt8] = []
    /// The slots of one coalesced packet, in order.
    var chain = [Int32](repeating: 0, count: NetVSP.maxCoalescedFragments)
    /// Tells the fragments of one coalesced packet from the next (`rndis_pktinfo_id.pkt_id`).
    var coalescedID: UInt16 = 0
    /// Per queue, the frames delivered with `more` not sent yet, and how many queues hold any.
    var held: [HeldReceivePacket]
    var heldQueues = 0

    init(queues: Int) {
        channels = [HostChannel?](repeating: nil, count: queues)
        deliveredPerChannel = [Int](repeating: 0, count: queues)
        held = [HeldReceivePacket](repeating: HeldReceivePacket(), count: queues)
    }

    /// Forgets what is held without giving slots back: the receive buffer they were in is gone.
    mutating func forgetHeld() {
        for q in held.indices where held[q].count > 0 {
            held[q].count = 0
            held[q].bytes = 0
        }
        heldQueues = 0
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
    /// The most fragments one coalesced packet is cut into (Linux's `NVSP_RSC_MAX`).
    static let maxCoalescedFragments = 562
    /// The most frames one transfer-page packet carries when a backend batches (``deliver(_:more:)``).
    static let maxFramesPerReceivePacket = 64

    /// Hands a frame to the guest (see ``NetPort/deliver(_:)``), with any held before it.
    public func deliver(_ frame: UnsafeRawBufferPointer) -> NetDelivery { deliver(frame, more: false) }

    /// See ``NetPort/deliver(_:more:)``: with `more` the frame may wait for the next ones, to go with them in
    /// one transfer-page packet.
    public func deliver(_ frame: UnsafeRawBufferPointer, more: Bool) -> NetDelivery {
        withReceiveTarget(frame, upTo: maxFrameSize, more: more) { d, rb, _, queue in deliverComplete(frame, &d, rb, queue) }
    }

    /// Sends every frame held for a batch (see ``NetPort/flushDeliveries()``).
    public func flushDeliveries() {
        delivery.withLock { d in
            if let rb = d.receive { flushHeld(&d, rb) }
        }
    }

    /// Runs `body` under the delivery lock with the receive buffer and the channel RSS picks, or counts the
    /// frame dropped if its size is off or the guest is not receiving. What is held goes at the end of a batch
    /// (`more` false) and when the guest has no space left (it can only return what it was sent).
    private func withReceiveTarget(_ frame: UnsafeRawBufferPointer, upTo limit: Int, more: Bool,
                                   _ body: (inout DeliveryState, HostReceiveBuffer, HostChannel, Int) -> NetDelivery) -> NetDelivery {
        delivery.withLock { d -> NetDelivery in
            var result = NetDelivery.dropped
            if frame.count >= 14, frame.count <= limit, d.open, d.receiving, let rb = d.receive,
               let (queue, channel) = d.channel(for: frame) {
                result = body(&d, rb, channel, queue)
            } else {
                counters.rxDropped.bump()
            }
            if !more || result == .busy, let rb = d.receive { flushHeld(&d, rb) }
            return result
        }
    }

    /// Hands a frame with work left (see ``NetPort/deliver(_:offload:)``): a TCP segment to cut goes as one
    /// RSC packet to a guest that turned RSC on; otherwise it is cut and its checksums finished here, as is a
    /// partial checksum (the guest did not ask for receive checksum offload).
    public func deliver(_ frame: UnsafeRawBufferPointer, offload: FrameOffload) -> NetDelivery {
        deliver(frame, offload: offload, more: false)
    }

    /// ``deliver(_:offload:)`` in a batch, as ``deliver(_:more:)``.
    public func deliver(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, more: Bool) -> NetDelivery {
        withReceiveTarget(frame, upTo: Self.maxGatherBytes, more: more) { d, rb, channel, queue in
            if offload.segmentation != .none, offload.segmentation == .tcpIPv6 ? d.coalescing.ipv6 : d.coalescing.ipv4 {
                // Frames held on this queue go first: a flow's order is kept.
                sendHeld(&d, rb, queue: queue)
                return deliverCoalesced(frame, offload, &d, rb, channel, queue)
            }
            let length = frame.count
            d.unfinished.withUnsafeMutableBytes { $0.copyMemory(from: frame) }
            guard offload.segmentation != .none else {
                guard length <= maxFrameSize, PartialChecksum.complete(&d.unfinished, frameStart: 0, frameEnd: length,
                                                                      start: offload.checksumStart, offset: offload.checksumOffset) else {
                    counters.rxDropped.bump()
                    return .dropped
                }
                return d.unfinished.withUnsafeBytes { deliverComplete(UnsafeRawBufferPointer(rebasing: $0[0..<length]), &d, rb, queue) }
            }
            // Every segment needs a slot: a cut that ran out halfway would deliver part of the frame twice.
            let mss = max(1, min(offload.segmentSize, maxFrameSize - offload.headerLength))
            if rb.freeSlots < (length - offload.headerLength + mss - 1) / mss { flushHeld(&d, rb) }
            guard rb.freeSlots >= (length - offload.headerLength + mss - 1) / mss else {
                counters.rxBusy.bump()
                backendWaiting.store(true, ordering: .sequentiallyConsistent)
                return .busy
            }
            if d.segment.isEmpty { d.segment = [UInt8](repeating: 0, count: maxFrameSize) }
            var segment = d.segment
            d.segment = []
            defer { d.segment = segment }
            let source = d.unfinished
            var result = NetDelivery.dropped
            let cut = LargeSendOffload.segment(offload, source: source, start: 0, length: length, maxFrame: maxFrameSize,
                                               into: &segment) { piece in
                result = deliverComplete(piece, &d, rb, queue)
            }
            if !cut { counters.rxDropped.bump() }
            return cut ? result : .dropped
        }
    }

    /// One complete frame into one slot, held on `queue` for the batch's packet, under the delivery lock.
    private func deliverComplete(_ frame: UnsafeRawBufferPointer, _ d: inout DeliveryState, _ rb: HostReceiveBuffer,
                                 _ queue: Int) -> NetDelivery {
        guard let slot = takeSlot(&d, rb) else {
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
        hold(slot, length: headerLength + frame.count, frameBytes: frame.count, &d, rb, queue: queue)
        return .accepted
    }

    /// Adds a written slot to `queue`'s held packet; a full packet goes at once.
    private func hold(_ slot: Int, length: Int, frameBytes: Int, _ d: inout DeliveryState, _ rb: HostReceiveBuffer, queue: Int) {
        if d.held[queue].count > 0, !rb.link(slot, after: d.held[queue].last) { sendHeld(&d, rb, queue: queue) }
        if d.held[queue].count == 0 {
            d.held[queue].header.reset()
            d.held[queue].header.writeUInt16(rb.id)   // xfer_pageset_id: the id the guest registered (Linux 0xCAFE)
            d.held[queue].header.writeUInt8(0)        // sender_owns_set
            d.held[queue].header.writeUInt8(0)        // reserved
            d.held[queue].header.writeUInt32(0)       // range_cnt, set when sent
            d.held[queue].first = slot
            d.heldQueues += 1
        }
        d.held[queue].header.writeUInt32(UInt32(length))
        d.held[queue].header.writeUInt32(UInt32(slot * rb.slotSize))
        d.held[queue].last = slot
        d.held[queue].count += 1
        d.held[queue].bytes += frameBytes
        if d.held[queue].count >= Self.maxFramesPerReceivePacket { sendHeld(&d, rb, queue: queue) }
    }

    /// Sends `queue`'s held packet, if any. Its frames are dropped (counted, slots given back) if the guest
    /// stopped receiving or the channel closed since they were taken, or if the send fails.
    func sendHeld(_ d: inout DeliveryState, _ rb: HostReceiveBuffer, queue: Int) {
        guard queue < d.held.count, d.held[queue].count > 0 else { return }
        let count = d.held[queue].count, bytes = d.held[queue].bytes, first = d.held[queue].first
        d.held[queue].count = 0
        d.held[queue].bytes = 0
        d.heldQueues -= 1
        guard d.open, d.receiving, let channel = d.channels[queue] else {
            _ = rb.release(transactionID: HostReceiveBuffer.transactionID(slot: first))
            counters.rxDropped.bump(count)
            return
        }
        d.held[queue].header.setUInt32(UInt32(count), at: HeldReceivePacket.rangeCountOffset)
        // The packet is sent from `d.header`; swapping moves no bytes.
        swap(&d.header, &d.held[queue].header)
        let sent = sendPreparedTransferPages(&d, rb, channel, first: first, type: .data)
        swap(&d.header, &d.held[queue].header)
        guard sent else {
            counters.rxDropped.bump(count)
            return
        }
        counters.rxPackets.bump(count)
        counters.rxBytes.bump(bytes)
        d.deliveredPerChannel[queue] += count
    }

    /// Sends what every queue holds.
    func flushHeld(_ d: inout DeliveryState, _ rb: HostReceiveBuffer) {
        guard d.heldQueues > 0 else { return }
        for q in d.held.indices where d.held[q].count > 0 { sendHeld(&d, rb, queue: q) }
    }

    /// A TCP segment as one RSC packet: one transfer-page packet whose ranges are slots each holding a PACKET
    /// message with a piece of the frame, tied by `RNDIS_PKTINFO_ID` (first and last marked), the first also
    /// carrying the checksum verdict, as Linux's `rndis_filter_receive_data` reassembles them. The TCP checksum
    /// is finished on the way (the frame's copy in the guest gets it), so the joined frame is right on any wire
    /// and the verdict is true.
    private func deliverCoalesced(_ frame: UnsafeRawBufferPointer, _ offload: FrameOffload, _ d: inout DeliveryState,
                                  _ rb: HostReceiveBuffer, _ channel: HostChannel, _ queue: Int) -> NetDelivery {
        var verdict = NDISTCPIPChecksumInfo()
        verdict.tcpChecksumSucceeded = true
        verdict.ipChecksumSucceeded = true
        let firstInfo = RNDISPacketInfo(checksum: verdict, packetID: RNDISPacketInfoID(flags: 0, packetID: 0))
        let perSlot = rb.slotSize - RNDISPacket.messageLength(info: firstInfo, frameLength: 0)
        let fragments = (frame.count + perSlot - 1) / perSlot
        let field = offload.checksumStart + offload.checksumOffset
        guard perSlot > 0, fragments <= Self.maxCoalescedFragments, offload.checksumStart >= 14, field + 2 <= min(perSlot, frame.count) else {
            counters.rxDropped.bump()
            return .dropped
        }
        let checksum = ~InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: frame[offload.checksumStart...]))
        guard rb.take(fragments, into: &d.chain) || retryTake(&d, rb, fragments) else {
            counters.rxBusy.bump()
            return .busy
        }
        d.coalescedID &+= 1
        d.header.reset()
        d.header.writeUInt16(rb.id)
        d.header.writeUInt8(0)
        d.header.writeUInt8(0)
        d.header.writeUInt32(UInt32(fragments))
        var at = 0
        for k in 0..<fragments {
            let n = min(perSlot, frame.count - at)
            var flags = RNDISPacketInfoID.flagSubAllocation
            if k == 0 { flags |= RNDISPacketInfoID.flagFirstFragment }
            if k == fragments - 1 { flags |= RNDISPacketInfoID.flagLastFragment }
            let info = RNDISPacketInfo(checksum: k == 0 ? verdict : nil,
                                       packetID: RNDISPacketInfoID(flags: flags, packetID: d.coalescedID))
            d.message.reset()
            RNDISPacket.encodeHeaders(into: &d.message, info: info, frameLength: n)
            let offset = Int(d.chain[k]) * rb.slotSize
            do {
                try d.message.bytes.withUnsafeBytes { try rb.pages.write(at: offset, from: $0) }
                try rb.pages.write(at: offset + d.message.count, from: UnsafeRawBufferPointer(rebasing: frame[at..<(at + n)]))
                if k == 0 {
                    let value = checksum.bigEndian
                    try withUnsafeBytes(of: value) { try rb.pages.write(at: offset + d.message.count + field, from: $0) }
                }
            } catch {
                _ = rb.release(transactionID: HostReceiveBuffer.transactionID(slot: Int(d.chain[0])))
                counters.rxDropped.bump()
                return .dropped
            }
            d.header.writeUInt32(UInt32(d.message.count + n))
            d.header.writeUInt32(UInt32(offset))
            at += n
        }
        guard sendPreparedTransferPages(&d, rb, channel, first: Int(d.chain[0]), type: .data) else {
            counters.rxDropped.bump()
            return .dropped
        }
        counters.rxPackets.bump()
        counters.rxBytes.bump(frame.count)
        counters.rxCoalesced.bump()
        d.deliveredPerChannel[queue] += 1
        return .accepted
    }

    /// As ``takeSlot(_:_:)`` for several into `d.chain`.
    private func retryTake(_ d: inout DeliveryState, _ rb: HostReceiveBuffer, _ count: Int) -> Bool {
        flushHeld(&d, rb)
        backendWaiting.store(true, ordering: .sequentiallyConsistent)
        return rb.take(count, into: &d.chain)
    }

    /// A free slot. If there is none, what is held is sent (the guest can only return what it was sent), the
    /// backend is marked waiting, then we look once more, so a completion that came in between is not missed.
    private func takeSlot(_ d: inout DeliveryState, _ rb: HostReceiveBuffer) -> Int? {
        if let slot = rb.take() { return slot }
        flushHeld(&d, rb)
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
        return sendPreparedTransferPages(&d, rb, channel, first: slot, type: type)
    }

    /// Sends the transfer-page packet whose header and ranges are in `d.header`, completed by the transaction
    /// id of its `first` slot; on failure every slot of it is given back.
    private func sendPreparedTransferPages(_ d: inout DeliveryState, _ rb: HostReceiveBuffer, _ channel: HostChannel, first: Int,
                                           type: NVSPSendRNDISPacket.ChannelType) -> Bool {
        if d.payloadKey?.type != type.rawValue || d.payloadKey?.size != d.messageSize {
            d.payload.reset()
            NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: type)).encode(into: &d.payload,
                                                                                     minimumSize: d.messageSize)
            d.payloadKey = (type.rawValue, d.messageSize)
        }
        let id = HostReceiveBuffer.transactionID(slot: first)
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
            // Frames delivered before the answer or indication reach the guest before it.
            flushHeld(&d, rb)
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
            (d.receiving, d.coalescing) = rndis.withLock { r in
                (r.stage == .initialized && !r.packetFilter.isEmpty && r.linkUp, r.receiveCoalescing)
            }
            // Filter 0 stops receive at once, held frames included (sendHeld drops them once not receiving).
            if !d.receiving, let rb = d.receive { flushHeld(&d, rb) }
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

    /// The guest's open receive queues: the primary channel and its open sub-channels.
    public var openQueues: Int { delivery.withLock { d in d.channels.filter { $0 != nil }.count } }
}
