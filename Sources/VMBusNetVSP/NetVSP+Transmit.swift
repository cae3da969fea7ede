import VMBusHost
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusRing
import VMBusWire

extension NetVSP {
    /// The most RNDIS messages one request may carry (Linux batches up to `max_pkt_per_msg`, which we set
    /// to 8); more is a guest that makes us loop.
    static let maxMessagesPerRequest = 64

    /// SEND_RNDIS_PKT: gathers the request's bytes (section first, then GPA ranges: Linux's partial copy
    /// puts earlier packets in the section and the last frame in the ranges), walks the RNDIS messages,
    /// hands PACKET frames to the backend and control messages to the RNDIS device, then completes.
    func transmit(_ m: NVSPSendRNDISPacket, gather: GPADirectPacketView?, packet: ReceivedPacket, _ state: ChannelContext) {
        guard let length = gatherRequest(m, gather, state) else { return completeWithFailure(packet, state) }
        guard parseMessages(length: length, state) else { return completeWithFailure(packet, state) }
        for frame in state.frames { forward(frame, state) }
        state.transmitted.wrappingIncrement(by: state.frames.count, ordering: .relaxed)
        state.frames.removeAll(keepingCapacity: true)
        if packet.descriptor.completionRequested {
            replySuccess(packet.descriptor.transactionID, state)
        }
    }

    /// Copies the request's bytes into the worker's scratch; returns how many, or nil (counted) if the
    /// section or a range is not the guest's to name.
    private func gatherRequest(_ m: NVSPSendRNDISPacket, _ gather: GPADirectPacketView?, _ state: ChannelContext) -> Int? {
        var length = 0
        if m.usesSendBuffer {
            guard let send = buffers.withLock({ $0.send }) else {
                fault("SEND_RNDIS_PKT names a section without a send buffer")
                return nil
            }
            let sectionSize = configuration.sendSectionSize
            let sections = send.size / sectionSize
            let size = Int(m.sendBufferSectionSize)
            guard Int(m.sendBufferSectionIndex) < sections, size <= sectionSize else {
                fault("section \(m.sendBufferSectionIndex) of \(sections), \(size) bytes")
                return nil
            }
            do { try send.read(at: Int(m.sendBufferSectionIndex) * sectionSize, count: size, into: &state.scratch) } catch {
                fault("send section: \(error)")
                return nil
            }
            length = size
        }
        guard let gather else {
            if !m.usesSendBuffer { fault("in-band SEND_RNDIS_PKT without a section") }
            return m.usesSendBuffer ? length : nil
        }
        let memory = state.channel.memory
        var failure: String?
        let capacity = state.scratch.count
        state.scratch.withUnsafeMutableBytes { scratch in
            gather.forEachRange { range in
                guard failure == nil else { return }
                var left = Int(range.byteCount)
                guard left <= capacity - length else {
                    failure = "GPA ranges of more than \(capacity) bytes"
                    return
                }
                var offset = Int(range.byteOffset)
                var i = 0
                while left > 0 {
                    let n = min(GuestMemory.pageSize - offset, left)
                    do {
                        let pfn = try range.pfn(i)
                        guard memory.contains(pfn: pfn) else { failure = "PFN \(pfn) outside guest memory"; return }
                        try memory.read(gpa: pfn << GuestMemory.pageShift + UInt64(offset),
                                        into: scratch.baseAddress! + length, count: n)
                    } catch {
                        failure = "GPA range: \(error)"
                        return
                    }
                    length += n
                    left -= n
                    offset = 0
                    i += 1
                }
            }
        }
        if let failure { fault(failure); return nil }
        return length
    }

    /// Walks the RNDIS messages in `scratch[0 ..< length]`: PACKETs are noted in `state.frames` (forwarded
    /// after the walk, when no reader shares the scratch any more), control messages are answered now. Any
    /// malformed message drops the whole request.
    private func parseMessages(length: Int, _ state: ChannelContext) -> Bool {
        state.frames.removeAll(keepingCapacity: true)
        var r = WireReader(state.scratch, start: 0, end: length)
        var count = 0
        do {
            while r.remaining >= RNDISMessage.headerSize {
                let type = try r.peekUInt32()
                // Zero padding after the last message (no RNDIS type is 0).
                if type == 0 { break }
                count += 1
                guard count <= Self.maxMessagesPerRequest else {
                    fault("more than \(Self.maxMessagesPerRequest) RNDIS messages in one request")
                    return false
                }
                if type == RNDISMessageType.packet.rawValue {
                    let view = try RNDISPacketView(from: &r)
                    state.frames.append(TransmitFrame(index: view.dataIndex, length: view.dataLength,
                                                      checksum: view.info.checksum, largeSend: view.info.largeSend,
                                                      vlan: view.info.vlan))
                } else {
                    let message = try RNDISMessage(from: &r)
                    rndisControl(message)
                }
            }
        } catch {
            fault("RNDIS message: \(error)")
            state.frames.removeAll(keepingCapacity: true)
            return false
        }
        return true
    }

    private func forward(_ frame: TransmitFrame, _ state: ChannelContext) {
        let passOffloads = backend.acceptsOffloads
        if let lso = frame.largeSend, configuration.offersLargeSendOffload {
            // A GSO backend takes the whole segment (its receiver cuts it, or a local socket never does); the
            // 802.1Q tag emit() may insert must still fit one IP packet's worth of frame.
            if passOffloads, frame.length <= NetVSP.maxGatherBytes,
               let offload = LargeSendOffload.leaveForReceiver(lso, frame: &state.scratch, start: frame.index,
                                                               length: frame.length, maxFrame: maxFrameSize) {
                counters.largeSendsPassed.bump()
                return state.scratch.withUnsafeBytes { raw in
                    emit(UnsafeRawBufferPointer(rebasing: raw[frame.index..<(frame.index + frame.length)]), vlan: frame.vlan,
                         offload: offload, state)
                }
            }
            let ok = LargeSendOffload.segment(lso, source: state.scratch, start: frame.index, length: frame.length,
                                              maxFrame: maxFrameSize, into: &state.segment) { segment in
                emit(segment, vlan: frame.vlan, offload: nil, state)
            }
            if !ok { fault("an LSO send whose headers do not add up (\(frame.length) bytes)") }
            return
        }
        guard frame.length >= 14, frame.length <= maxFrameSize else {
            return fault("a transmitted frame of \(frame.length) bytes")
        }
        var offload: FrameOffload?
        if let checksum = frame.checksum {
            if passOffloads {
                offload = ChecksumOffload.leavePartial(checksum, in: &state.scratch, start: frame.index, length: frame.length)
            }
            if offload == nil, !ChecksumOffload.apply(checksum, to: &state.scratch, start: frame.index, length: frame.length) {
                counters.checksumErrors.bump()
            }
        }
        state.scratch.withUnsafeBytes { raw in
            emit(UnsafeRawBufferPointer(rebasing: raw[frame.index..<(frame.index + frame.length)]), vlan: frame.vlan,
                 offload: offload, state)
        }
    }

    /// Hands one frame to the backend, with the 802.1Q tag the guest put in a PPI inserted after the MAC
    /// addresses (the backend sees the frame as it would be on a wire).
    private func emit(_ frame: UnsafeRawBufferPointer, vlan: NDISPacket8021QInfo?, offload: FrameOffload?,
                      _ state: ChannelContext) {
        counters.txPackets.bump()
        guard let vlan, vlan.value & 0xFFFF != 0, frame.count >= 14 else {
            counters.txBytes.bump(frame.count)
            return hand(frame, offload)
        }
        let tagged = frame.count + 4
        counters.txBytes.bump(tagged)
        let tci = UInt16(truncatingIfNeeded: vlan.priority << 13 | (vlan.cfi ? 1 << 12 : 0) | vlan.vlanID)
        state.tagged.withUnsafeMutableBytes { out in
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0..<12]))
            out[12] = 0x81
            out[13] = 0x00
            out[14] = UInt8(tci >> 8)
            out[15] = UInt8(truncatingIfNeeded: tci)
            UnsafeMutableRawBufferPointer(rebasing: out[16..<tagged]).copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[12...]))
        }
        state.tagged.withUnsafeBytes { hand(UnsafeRawBufferPointer(rebasing: $0[0..<tagged]), offload?.shifted(by: 4)) }
    }

    private func hand(_ frame: UnsafeRawBufferPointer, _ offload: FrameOffload?) {
        if let offload { backend.transmit(frame, offload: offload, from: self) } else { backend.transmit(frame, from: self) }
    }

    /// One RNDIS control message: the device answers, the answer goes back through the receive buffer.
    func rndisControl(_ message: RNDISMessage) {
        counters.controlMessages.bump()
        let version = negotiation.withLock { $0.version } ?? .v1
        let (response, effect) = rndis.withLock { $0.handle(message, nvspVersion: version) }
        // The receive gate changes before the answer is queued: after SET filter 0 completes no frame follows.
        refreshReceiveGate()
        if let response { sendControl(response) }
        switch effect {
        case .initialized: backend.attached(self)
        case .halted: backend.detached(self)
        case .receiveScalingChanged(let scaling): delivery.withLock { $0.receiveScaling = scaling }
        case .receiveScalingRejected(let why): fault(why)
        default: break
        }
    }
}
