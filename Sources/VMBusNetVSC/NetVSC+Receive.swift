import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// The interrupt thread's reused buffer: one receive slot's bytes, copied out of the receive buffer before
/// they are parsed (the host can change the shared bytes at any time).
struct ReceiveState {
    var scratch: [UInt8] = []
    var slotSize = 0
    var perQueue = [Int](repeating: 0, count: 64)
    /// The RSC packet being joined (all its fragments come in one transfer-page packet, which is handled
    /// under the receive lock, so one buffer serves every queue): allocated at the first fragment.
    var joined: [UInt8] = []
    var joinedLength = 0
    var joinedFragments = 0
    var joining = false
    var joinedVerified = false
}

/// A receive completion still to send: the transaction id and the channel (sub-channel index) it is for.
struct PendingCompletion {
    var queue: UInt16
    var id: UInt64
}

/// Receive completions that found the ring full, oldest first, for the retry thread.
struct PendingCompletions {
    var ids: [PendingCompletion] = []
    var head = 0
    var stopped = false
    var count: Int { ids.count - head }
}

extension NetVSC {
    /// Transfer-page packets name at most this many ranges (Linux: 562 with RSC).
    static let maxRanges = 562
    /// The largest frame RSC fragments may join into.
    static let maxJoinedFrame = 72 * 1024
    /// The shortened SEND_RNDIS_PKT_COMPLETE {108, SUCCESS} a guest returns for transfer pages.
    static let receiveCompletion: [UInt8] = {
        var w = WireWriter(capacity: 8)
        NVSPMessage.sendRNDISPacketComplete(NVSPSendRNDISPacketComplete(status: .success)).encode(into: &w, minimumSize: 0)
        return w.bytes
    }()

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        switch packet.descriptor.type {
        case .dataUsingXferPages:
            receiveTransferPages(packet, buffer, queue: Int(channel.subchannelIndex))
            complete(packet.descriptor.transactionID, on: channel)
        case .dataInband:
            // SEND_INDIRECTION_TABLE picks the transmit queues; VF_ASSOCIATION is decoded (we have no VF).
            var r = buffer.wireReader(for: packet)
            switch try? NVSPMessage(from: &r, direction: .hostToGuest, version: version) {
            case .sendIndirectionTable(let t)?: sendTableReceived(t.entries)
            case nil: counters.malformed.bump()
            default: break
            }
            if packet.descriptor.completionRequested { complete(packet.descriptor.transactionID, on: channel) }
        default:
            counters.malformed.bump()
        }
    }

    public func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        var r = buffer.wireReader(for: packet)
        let ok: Bool
        if let m = try? NVSPMessage(from: &r, direction: .hostToGuest), case .sendRNDISPacketComplete(let c) = m {
            ok = c.status == .success
        } else {
            counters.malformed.bump()
            ok = false
        }
        if context == Self.controlContext { return }
        if !ok { counters.txErrors.bump() }
        releaseSendResource(context)
    }

    public func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {
        for c in contexts where c != Self.controlContext { releaseSendResource(c) }
    }

    /// Checks the transfer-page header in place (no arrays), then copies each range out of the receive
    /// buffer and hands on what it holds. A bad header drops the whole packet; a bad range drops that range.
    private func receiveTransferPages(_ packet: ReceivedPacket, _ buffer: PacketBuffer, queue: Int) {
        guard let rb = receiveBuffer else { return counters.malformed.bump() }
        var r = buffer.wireReader(wholePacket: packet)
        let header = TransferPagePacketHeader.wireSize
        let payloadOffset = packet.payloadOffset
        guard payloadOffset >= header, (try? r.skip(PacketDescriptor.wireSize)) != nil,
              let setID = try? r.readUInt16(), (try? r.skip(2)) != nil, let count = try? r.readUInt32() else {
            return counters.malformed.bump()
        }
        let room = (payloadOffset - header) / TransferPageRange.wireSize
        guard setID == NVSPSendReceiveBuffer.linuxBufferID, count >= 1, Int(count) <= room, Int(count) <= Self.maxRanges else {
            return counters.malformed.bump()
        }
        var p = buffer.wireReader(for: packet)
        guard let m = try? NVSPMessage(from: &p, direction: .hostToGuest, version: version),
              case .sendRNDISPacket = m else {
            return counters.malformed.bump()
        }
        let ranges = r
        receive.withLock { state in
            var walk = ranges
            defer { state.joining = false }
            for i in 0..<Int(count) {
                guard let length = try? walk.readUInt32(), let offset = try? walk.readUInt32() else {
                    counters.malformed.bump()
                    return
                }
                if receiveRange(offset: Int(offset), length: Int(length), last: i == Int(count) - 1, rb, &state),
                   queue < state.perQueue.count {
                    state.perQueue[queue] += 1
                }
            }
        }
    }

    /// One range: inside the buffer, no longer than a slot, copied out, then parsed. True if it was a frame
    /// handed to the handler. `last`: the packet's last range (an RSC packet must end in it).
    private func receiveRange(offset: Int, length: Int, last: Bool, _ rb: GuestPageBuffer, _ state: inout ReceiveState) -> Bool {
        guard length >= RNDISMessage.headerSize, length <= state.slotSize, rb.contains(offset: offset, count: length),
              (try? rb.read(at: offset, count: length, into: &state.scratch)) != nil else {
            counters.malformed.bump()
            return false
        }
        var r = WireReader(state.scratch, start: 0, end: length)
        guard let type = try? r.peekUInt32() else {
            counters.malformed.bump()
            return false
        }
        if type == RNDISMessageType.packet.rawValue {
            guard let view = try? RNDISPacketView(from: &r) else {
                counters.malformed.bump()
                return false
            }
            if let id = view.info.packetID, id.flags & RNDISPacketInfoID.flagSubAllocation != 0 {
                return receiveFragment(view, id, last: last, &state)
            }
            if state.joining {
                // A plain frame inside an RSC packet: what was joined so far is dropped (Linux resets too).
                counters.malformed.bump()
                state.joining = false
            }
            guard view.dataLength >= 14, view.dataLength <= maxFrameSize, let handler = receiveHandler else {
                counters.rxDropped.bump()
                return false
            }
            counters.rxPackets.bump()
            counters.rxBytes.bump(view.dataLength)
            let info = ReceivedFrameInfo(checksumVerified: Self.verified(view.info.checksum))
            state.scratch.withUnsafeBytes { raw in
                handler(UnsafeRawBufferPointer(rebasing: raw[view.dataIndex..<(view.dataIndex + view.dataLength)]), info)
            }
            return true
        }
        guard let message = try? RNDISMessage(from: &r) else {
            counters.malformed.bump()
            return false
        }
        controlReceived(message)
        return false
    }

    /// One RSC fragment (in `state.scratch`): joined to the frame being built, which goes to the handler with
    /// the last. A middle fragment with nothing begun, a packet that ends before the last fragment, or a frame
    /// past ``maxJoinedFrame`` drops what was joined, counted.
    private func receiveFragment(_ view: RNDISPacketView, _ id: RNDISPacketInfoID, last: Bool, _ state: inout ReceiveState) -> Bool {
        if id.flags & RNDISPacketInfoID.flagFirstFragment != 0 {
            state.joining = true
            state.joinedLength = 0
            state.joinedFragments = 0
            state.joinedVerified = Self.verified(view.info.checksum)
        } else if !state.joining {
            counters.malformed.bump()
            return false
        }
        let isLast = id.flags & RNDISPacketInfoID.flagLastFragment != 0
        guard state.joinedLength + view.dataLength <= Self.maxJoinedFrame, isLast || !last else {
            counters.malformed.bump()
            state.joining = false
            return false
        }
        if state.joined.isEmpty { state.joined = [UInt8](repeating: 0, count: Self.maxJoinedFrame) }
        let at = state.joinedLength
        state.scratch.withUnsafeBytes { raw in
            state.joined.withUnsafeMutableBytes { out in
                UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + view.dataLength)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[view.dataIndex..<(view.dataIndex + view.dataLength)]))
            }
        }
        state.joinedLength += view.dataLength
        state.joinedFragments += 1
        guard isLast else { return false }
        state.joining = false
        guard state.joinedLength >= 14, let handler = receiveHandler else {
            counters.rxDropped.bump()
            return false
        }
        counters.rxPackets.bump()
        counters.rxBytes.bump(state.joinedLength)
        counters.rxCoalesced.bump()
        let info = ReceivedFrameInfo(checksumVerified: state.joinedVerified, fragments: state.joinedFragments)
        let length = state.joinedLength
        state.joined.withUnsafeBytes { handler(UnsafeRawBufferPointer(rebasing: $0[0..<length]), info) }
        return true
    }

    static func verified(_ c: NDISTCPIPChecksumInfo?) -> Bool {
        guard let c else { return false }
        return (c.tcpChecksumSucceeded || c.udpChecksumSucceeded) && !c.tcpChecksumFailed && !c.udpChecksumFailed
            && !c.ipChecksumFailed
    }

    /// An RNDIS completion for the waiting request, or a status indication.
    private func controlReceived(_ message: RNDISMessage) {
        if case .indicateStatus(let s) = message {
            counters.statusIndications.bump()
            switch s.status {
            case .mediaConnect: setLink(true)
            case .mediaDisconnect: setLink(false)
            default: break
            }
            return
        }
        let matched = control.update { c -> Bool in
            guard let id = message.requestID, let awaiting = c.awaiting, id == awaiting, c.response == nil else { return false }
            c.response = message
            return true
        }
        if !matched { counters.unexpectedControl.bump() }
    }

    private func setLink(_ up: Bool) {
        let was = link.exchange(up, ordering: .acquiringAndReleasing)
        if was != up { linkHandler?(up) }
    }

    // MARK: Receive completions

    /// Completes a transfer-page packet without waiting; a full ring queues it for the retry thread. Older
    /// queued completions go first.
    private func complete(_ id: UInt64, on channel: GuestChannel) {
        let queued = pendingCompletions.withLock { p -> Bool in
            if p.count == 0, sendCompletion(id, on: channel) { return false }
            guard p.count < configuration.maxPendingCompletions else {
                counters.rxCompDropped.bump()
                return false
            }
            counters.rxCompBusy.bump()
            p.ids.append(PendingCompletion(queue: channel.subchannelIndex, id: id))
            flush(&p)
            return true
        }
        if queued { pendingCompletions.update { _ in } }  // wake the retry thread
    }

    private func sendCompletion(_ id: UInt64, on channel: GuestChannel) -> Bool {
        Self.receiveCompletion.withUnsafeBytes { p in (try? channel.sendCompletion(transactionID: id, p)) != nil }
    }

    /// Sends queued completions in order until one does not fit (one whose channel is gone is dropped).
    private func flush(_ p: inout PendingCompletions) {
        while p.head < p.ids.count {
            let entry = p.ids[p.head]
            if Int(entry.queue) < channelsByIndex.count, let channel = channelsByIndex[Int(entry.queue)] {
                guard sendCompletion(entry.id, on: channel) else { break }
            }
            p.head += 1
        }
        if p.head == p.ids.count {
            p.ids.removeAll(keepingCapacity: true)
            p.head = 0
        } else if p.head > 1024 {
            p.ids.removeFirst(p.head)
            p.head = 0
        }
    }

    /// The retry thread: while completions wait, tries again every 20 µs (the ring frees as the host reads).
    func completionRetryLoop() {
        defer { retryThreadDone.open() }
        while true {
            let stop = pendingCompletions.wait(timeoutNanoseconds: 100_000_000) { p -> Bool? in
                p.stopped ? true : (p.count > 0 ? false : nil)
            }
            if stop == true { return }
            guard stop == false else { continue }
            let left = pendingCompletions.withLock { p -> Int in
                flush(&p)
                return p.count
            }
            if left > 0 { sleepNanoseconds(20_000) }
        }
    }
}
