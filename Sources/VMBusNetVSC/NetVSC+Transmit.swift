import Atomics
import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusWire

/// What senders share, under ``NetVSC/transmit``: free send sections and GPA-direct buffers, and the
/// writers the headers are encoded into (reused: no allocation per frame).
struct TransmitState {
    var freeSections: [Int] = []
    var sectionCount = 0
    var large: [GuestPageBuffer] = []
    var freeLarge: [Int] = []
    var header = WireWriter(capacity: 128)
    var payload = WireWriter(capacity: NVSPMessage.wireSize)
    var ranges = WireWriter(capacity: 64)
}

extension NetVSC {
    /// Sends one Ethernet frame (no FCS; at most ``maxFrameSize`` bytes). A frame whose RNDIS message fits a
    /// send section is copied there and named in-band; a larger one is copied to a GPA-direct buffer and sent
    /// as GPA ranges. Never waits: ``NetVSCSendResult/busy`` when no section or buffer is free or the ring is
    /// full. `offload` asks the host to fill in checksums (honoured only if ``checksumOffload``).
    public func send(_ frame: UnsafeRawBufferPointer, offload: TransmitOffload? = nil) -> NetVSCSendResult {
        guard running.load(ordering: .relaxed), let channel else { return .dropped }
        let segmenting = offload?.largeSend != nil && largeSendMaxSize > 0
        guard frame.count >= 14, frame.count <= (segmenting ? largeSendMaxSize : maxFrameSize) else {
            counters.txDropped.bump()
            return .dropped
        }
        let info = RNDISPacketInfo(checksum: checksumOffload ? offload?.checksum : nil,
                                   largeSend: segmenting ? offload?.largeSend : nil, vlan: offload?.vlan)
        let length = RNDISPacket.messageLength(info: info, frameLength: frame.count)
        return transmit.withLock { t -> NetVSCSendResult in
            t.header.reset()
            RNDISPacket.encodeHeaders(into: &t.header, info: info, frameLength: frame.count)
            if length <= sendSectionSize {
                return sendCopied(frame, length: length, channel, &t)
            }
            return sendGPADirect(frame, length: length, channel, &t)
        }
    }

    public func send(bytes: [UInt8], offload: TransmitOffload? = nil) -> NetVSCSendResult {
        bytes.withUnsafeBytes { send($0, offload: offload) }
    }

    private func sendCopied(_ frame: UnsafeRawBufferPointer, length: Int, _ channel: GuestChannel,
                            _ t: inout TransmitState) -> NetVSCSendResult {
        guard let sb = sendBuffer, let section = t.freeSections.popLast() else {
            counters.txBusy.bump()
            return .busy
        }
        let at = section * sendSectionSize
        do {
            try t.header.bytes.withUnsafeBytes { try sb.write(at: at, from: $0) }
            try sb.write(at: at + t.header.count, from: frame)
        } catch {
            t.freeSections.append(section)
            return .dropped
        }
        t.payload.reset()
        NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data, sendBufferSectionIndex: UInt32(section),
                                                        sendBufferSectionSize: UInt32(length))).encode(into: &t.payload)
        let result: Result<UInt64, GuestError> = t.payload.bytes.withUnsafeBytes { p in
            do throws(GuestError) { return .success(try channel.sendRequest(p, context: UInt64(section))) }
            catch { return .failure(error) }
        }
        return outcome(result, bytes: frame.count, counter: counters.txCopied) { t.freeSections.append(section) }
    }

    private func sendGPADirect(_ frame: UnsafeRawBufferPointer, length: Int, _ channel: GuestChannel,
                               _ t: inout TransmitState) -> NetVSCSendResult {
        guard let index = t.freeLarge.popLast() else {
            counters.txBusy.bump()
            return .busy
        }
        let buffer = t.large[index]
        guard length <= buffer.size else {
            t.freeLarge.append(index)
            return .dropped
        }
        do {
            try t.header.bytes.withUnsafeBytes { try buffer.write(at: 0, from: $0) }
            try buffer.write(at: t.header.count, from: frame)
        } catch {
            t.freeLarge.append(index)
            return .dropped
        }
        // `reserved`, `rangecount` 1, then one gpa_range over the pages the message spans.
        let pages = (length + GuestMemory.pageSize - 1) / GuestMemory.pageSize
        t.ranges.reset()
        t.ranges.writeUInt32(0)
        t.ranges.writeUInt32(1)
        t.ranges.writeUInt32(UInt32(length))
        t.ranges.writeUInt32(0)
        for i in 0..<pages { t.ranges.writeUInt64(buffer.pages[i]) }
        t.payload.reset()
        NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data)).encode(into: &t.payload)
        let context = Self.largeContextBase | UInt64(index)
        let result: Result<UInt64, GuestError> = t.ranges.bytes.withUnsafeBytes { h in
            t.payload.bytes.withUnsafeBytes { p in
                do throws(GuestError) { return .success(try channel.sendGPADirectRequest(rangeHeader: h, payload: p, context: context)) }
                catch { return .failure(error) }
            }
        }
        return outcome(result, bytes: frame.count, counter: counters.txGPADirect) { t.freeLarge.append(index) }
    }

    /// Counts a send, or gives its section or buffer back (`giveBack`) and says whether to retry.
    private func outcome(_ result: Result<UInt64, GuestError>, bytes: Int, counter: ManagedAtomic<Int>,
                         giveBack: () -> Void) -> NetVSCSendResult {
        guard case .failure(let e) = result else {
            counter.bump()
            counters.txPackets.bump()
            counters.txBytes.bump(bytes)
            return .sent
        }
        giveBack()
        switch e {
        case .channel(.sendTimedOut), .channel(.tooManyOutstandingRequests):
            counters.txSendFull.bump()
            return .busy
        default:
            return .dropped
        }
    }

    /// The host completed (or will never complete) the send that used `context`'s section or buffer.
    func releaseSendResource(_ context: UInt64) {
        transmit.withLock { t in
            if context & Self.largeContextBase != 0 {
                let i = Int(context & 0xFFFF_FFFF)
                if i < t.large.count { t.freeLarge.append(i) }
            } else if Int(context) < t.sectionCount {
                t.freeSections.append(Int(context))
            }
        }
    }
}
