import Atomics
import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusWire

/// What senders share, under ``NetVSC/transmit``: free send sections and GPA-direct buffers, and the
/// writers the headers are encoded into (reused: no allocation per frame).
struct TransmitState {
    /// What a send needs from ``NetVSC/start()``'s outcome, copied here once traffic may flow (nil before
    /// and after): read under the lock with the rest, it costs no exclusivity check or retain per frame, as
    /// the NIC's own `var` properties would.
    var path: TransmitPath?
    var freeSections: [Int] = []
    var sectionCount = 0
    var large: [GuestPageBuffer] = []
    var freeLarge: [Int] = []
    var header = WireWriter(capacity: 128)
    /// The headers of a frame sent without offload: encoded once, lengths patched per frame.
    var plainHeader = RNDISPacketHeaderTemplate()
    var payload = WireWriter(capacity: NVSPMessage.wireSize)
    /// SEND_RNDIS_PKT naming a section: encoded once, section index and size patched per frame.
    var sectionPayload: WireWriter = {
        var w = WireWriter(capacity: NVSPMessage.wireSize)
        NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data, sendBufferSectionIndex: 0,
                                                        sendBufferSectionSize: 0)).encode(into: &w)
        return w
    }()
    /// Offsets in SEND_RNDIS_PKT of `send_buf_section_index` and `send_buf_section_size` (after the
    /// message type and `channel_type`).
    static let sectionIndexOffset = 8
    static let sectionSizeOffset = 12
    var ranges = WireWriter(capacity: 64)
    /// The host's send indirection table (NVSP 5 SEND_INDIRECTION_TABLE): a flow's hash picks an entry, the
    /// entry a queue (`netvsc_select_queue`). Empty until the host sends one: everything goes on the primary.
    var sendTable: [UInt32] = []
    /// The section being filled with frames sent with `more`.
    var batch = SendBatch()
}

/// A send section holding several RNDIS PACKET messages, sent as one SEND_RNDIS_PKT when the batch ends
/// (Linux's multi-send data, `netvsc_send`'s `msd`): each message starts at the host's packet alignment, the
/// padding counted in the message before it (`msg_len`), as Linux pads.
struct SendBatch {
    var section = 0
    /// Messages in it (0: no batch), and on which queue it goes.
    var count = 0
    var queue = 0
    /// Bytes used (the last message's end) and where the last message starts.
    var used = 0
    var lastStart = 0
    /// Frame bytes, for the counters once it is sent.
    var frameBytes = 0
    /// The sender ended the batch but the ring could not take it: the next completion sends it.
    var ended = false
}

/// The negotiated facts a send reads, fixed while the NIC runs (a class: a send takes it with one retain).
final class TransmitPath: Sendable {
    let channel: GuestChannel
    /// Every open queue in sub-channel index order (the primary first).
    let queues: [GuestChannel]
    let sendBuffer: GuestPageBuffer
    let sectionSize: Int
    let maxFrameSize: Int
    let largeSendMaxSize: Int
    let checksumOffload: Bool
    /// The most PACKET messages one send carries (the host's `max_pkt_per_msg`; 1: no batching) and the
    /// alignment of each in a section (`1 << pkt_alignment_factor`).
    let batchLimit: Int
    let packetAlignment: Int

    init(channel: GuestChannel, queues: [GuestChannel], sendBuffer: GuestPageBuffer, sectionSize: Int, maxFrameSize: Int,
         largeSendMaxSize: Int, checksumOffload: Bool, batchLimit: Int, packetAlignment: Int) {
        self.channel = channel
        self.queues = queues
        self.sendBuffer = sendBuffer
        self.sectionSize = sectionSize
        self.maxFrameSize = maxFrameSize
        self.largeSendMaxSize = largeSendMaxSize
        self.checksumOffload = checksumOffload
        self.batchLimit = batchLimit
        self.packetAlignment = packetAlignment
    }
}

extension NetVSC {
    /// Sends one Ethernet frame (no FCS; at most ``maxFrameSize`` bytes). A frame whose RNDIS message fits a
    /// send section is copied there and named in-band; a larger one is copied to a GPA-direct buffer and sent
    /// as GPA ranges. Never waits: ``NetVSCSendResult/busy`` when no section or buffer is free or the ring is
    /// full. `offload` asks the host to fill in checksums (honoured only if ``checksumOffload``).
    ///
    /// `more` says another frame follows at once (Linux's `xmit_more`): a frame that fits a section may then
    /// wait there for the next ones, up to the host's `max_pkt_per_msg`, and they go as one request that the
    /// host completes once. A frame sent without `more`, or ``flushSends()``, ends the batch; a caller that
    /// passes `more` must end every batch. A held frame counts as sent: a batch the ring cannot take yet stays
    /// held and goes with the next send or flush.
    public func send(_ frame: UnsafeRawBufferPointer, offload: TransmitOffload? = nil, more: Bool = false) -> NetVSCSendResult {
        guard running.load(ordering: .relaxed) else { return .dropped }
        return transmit.withLock { t -> NetVSCSendResult in
            guard let path = t.path else { return .dropped }
            let segmenting = offload?.largeSend != nil && path.largeSendMaxSize > 0
            guard frame.count >= 14, frame.count <= (segmenting ? path.largeSendMaxSize : path.maxFrameSize) else {
                counters.txDropped.bump()
                return .dropped
            }
            let info = offload.map {
                RNDISPacketInfo(checksum: path.checksumOffload ? $0.checksum : nil,
                                largeSend: segmenting ? $0.largeSend : nil, vlan: $0.vlan)
            } ?? RNDISPacketInfo()
            let length = RNDISPacket.messageLength(info: info, frameLength: frame.count)
            let copied = length <= path.sectionSize
            let queue = t.sendTable.isEmpty || path.queues.count < 2 ? 0
                : Int(t.sendTable[Self.flowHash(frame) & (t.sendTable.count - 1)]) % path.queues.count
            if t.batch.count > 0 {
                let at = (t.batch.used + path.packetAlignment - 1) & ~(path.packetAlignment - 1)
                if copied, queue == t.batch.queue, t.batch.count < path.batchLimit, at + length <= path.sectionSize {
                    return appendToBatch(frame, info: info, offload: offload != nil, length: length, at: at, more: more, path, &t)
                }
                // What is held goes first (a flow's order is kept); a ring that cannot take it yet is busy.
                guard flushBatch(path, &t) else { return .busy }
            }
            // A sender that finds everything in flight retries at once, so the busy answer comes before any
            // encoding.
            guard let slot = copied ? t.freeSections.popLast() : t.freeLarge.popLast() else {
                counters.txBusy.bump()
                return .busy
            }
            let header = encodeHeader(info, offload: offload != nil, frameLength: frame.count, &t)
            let channel = path.queues[queue]
            if copied, more, path.batchLimit > 1 {
                return startBatch(frame, header: header, length: length, section: slot, queue: queue, path, &t)
            }
            return copied ? sendCopied(frame, header: header, length: length, section: slot, channel, path, &t)
                : sendGPADirect(frame, header: header, length: length, buffer: slot, channel, &t)
        }
    }

    /// Ends the batch: sends the frames held for it. If the ring cannot take them yet they go with the host's
    /// next completion (there is one: a full ring or request table means sends in flight), or with the next
    /// send, whichever comes first.
    public func flushSends() {
        transmit.withLock { t in
            guard let path = t.path else { return }
            if !flushBatch(path, &t) { t.batch.ended = true }
        }
    }

    /// The RNDIS headers for a frame: the template's when nothing is asked of the host.
    private func encodeHeader(_ info: RNDISPacketInfo, offload: Bool, frameLength: Int, _ t: inout TransmitState) -> [UInt8] {
        guard offload else { return t.plainHeader.bytes(frameLength: frameLength) }
        t.header.reset()
        RNDISPacket.encodeHeaders(into: &t.header, info: info, frameLength: frameLength)
        return t.header.bytes
    }

    /// Writes the batch's first message at the start of `section`.
    private func startBatch(_ frame: UnsafeRawBufferPointer, header: [UInt8], length: Int, section: Int, queue: Int,
                            _ path: TransmitPath, _ t: inout TransmitState) -> NetVSCSendResult {
        guard writeMessage(header, frame, at: section * path.sectionSize, path) else {
            t.freeSections.append(section)
            return .dropped
        }
        t.batch = SendBatch(section: section, count: 1, queue: queue, used: length, lastStart: 0, frameBytes: frame.count)
        return .sent
    }

    /// Writes a message at `at` (aligned) in the batch's section, the padding before it counted in the one
    /// before; the batch goes when it is full or `more` is false.
    private func appendToBatch(_ frame: UnsafeRawBufferPointer, info: RNDISPacketInfo, offload: Bool, length: Int, at: Int,
                               more: Bool, _ path: TransmitPath, _ t: inout TransmitState) -> NetVSCSendResult {
        let header = encodeHeader(info, offload: offload, frameLength: frame.count, &t)
        let base = t.batch.section * path.sectionSize
        let previousLength = UInt32(at - t.batch.lastStart).littleEndian
        let sb = path.sendBuffer, used = t.batch.used, lastStart = t.batch.lastStart
        let padded = at == used || (try? Self.zeros.withUnsafeBytes {
            try sb.write(at: base + used, from: UnsafeRawBufferPointer(rebasing: $0[0..<(at - used)]))
        }) != nil
        guard padded, writeMessage(header, frame, at: base + at, path),
              (try? withUnsafeBytes(of: previousLength) { try sb.write(at: base + lastStart + 4, from: $0) }) != nil else {
            counters.txDropped.bump()
            return .dropped
        }
        t.batch.count += 1
        t.batch.lastStart = at
        t.batch.used = at + length
        t.batch.frameBytes += frame.count
        if !more || t.batch.count >= path.batchLimit, !flushBatch(path, &t) { t.batch.ended = !more }
        return .sent
    }

    /// Padding between batched messages (alignments are capped at a page).
    private static let zeros = [UInt8](repeating: 0, count: 4096)

    /// Copies a PACKET message (its headers, then the frame) into the send buffer at `at`; false if the buffer
    /// refused the range.
    private func writeMessage(_ header: [UInt8], _ frame: UnsafeRawBufferPointer, at: Int, _ path: TransmitPath) -> Bool {
        do {
            try header.withUnsafeBytes { try path.sendBuffer.write(at: at, from: $0) }
            try path.sendBuffer.write(at: at + header.count, from: frame)
            return true
        } catch {
            return false
        }
    }

    /// SEND_RNDIS_PKT naming the first `size` bytes of `section`, completed with the section as its context.
    private func sendSection(_ section: Int, size: Int, on channel: GuestChannel, _ t: inout TransmitState) -> Result<UInt64, GuestError> {
        t.sectionPayload.setUInt32(UInt32(section), at: TransmitState.sectionIndexOffset)
        t.sectionPayload.setUInt32(UInt32(size), at: TransmitState.sectionSizeOffset)
        return t.sectionPayload.bytes.withUnsafeBytes { p in
            do throws(GuestError) { return .success(try channel.sendRequest(p, context: UInt64(section))) }
            catch { return .failure(error) }
        }
    }

    /// Sends the batch as one SEND_RNDIS_PKT naming its section. False if the ring is full (the batch stays);
    /// a channel that failed otherwise drops it, counted.
    private func flushBatch(_ path: TransmitPath, _ t: inout TransmitState) -> Bool {
        guard t.batch.count > 0 else { return true }
        let section = t.batch.section
        let channel = t.batch.queue < path.queues.count ? path.queues[t.batch.queue] : path.channel
        let result = sendSection(section, size: t.batch.used, on: channel, &t)
        let (count, bytes) = (t.batch.count, t.batch.frameBytes)
        switch result {
        case .success:
            counters.txCopied.bump(count)
            counters.txPackets.bump(count)
            counters.txBytes.bump(bytes)
            counters.txBatched.bump(count)
        case .failure(.channel(.sendTimedOut)), .failure(.channel(.tooManyOutstandingRequests)):
            counters.txSendFull.bump()
            return false
        case .failure:
            t.freeSections.append(section)
            counters.txDropped.bump(count)
        }
        t.batch.count = 0
        t.batch.ended = false
        return true
    }

    public func send(bytes: [UInt8], offload: TransmitOffload? = nil, more: Bool = false) -> NetVSCSendResult {
        bytes.withUnsafeBytes { send($0, offload: offload, more: more) }
    }

    private func sendCopied(_ frame: UnsafeRawBufferPointer, header: [UInt8], length: Int, section: Int, _ channel: GuestChannel,
                            _ path: TransmitPath, _ t: inout TransmitState) -> NetVSCSendResult {
        guard writeMessage(header, frame, at: section * path.sectionSize, path) else {
            t.freeSections.append(section)
            return .dropped
        }
        let result = sendSection(section, size: length, on: channel, &t)
        return outcome(result, bytes: frame.count, counter: counters.txCopied) { t.freeSections.append(section) }
    }

    private func sendGPADirect(_ frame: UnsafeRawBufferPointer, header: [UInt8], length: Int, buffer index: Int,
                               _ channel: GuestChannel, _ t: inout TransmitState) -> NetVSCSendResult {
        let buffer = t.large[index]
        guard length <= buffer.size else {
            t.freeLarge.append(index)
            return .dropped
        }
        do {
            try header.withUnsafeBytes { try buffer.write(at: 0, from: $0) }
            try buffer.write(at: header.count, from: frame)
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

    /// A flow's hash for picking its queue: the IP addresses, and the ports of TCP and UDP (an IPv4 fragment
    /// without them), folded; 0 for anything else. Every frame of a flow hashes alike, so a flow keeps one
    /// queue and its order.
    static func flowHash(_ frame: UnsafeRawBufferPointer) -> Int {
        guard frame.count >= 14 else { return 0 }
        var l3 = 14
        var type = UInt16(frame[12]) << 8 | UInt16(frame[13])
        if type == 0x8100, frame.count >= 18 {
            l3 = 18
            type = UInt16(frame[16]) << 8 | UInt16(frame[17])
        }
        var hash: UInt32 = 2_166_136_261
        func mix(_ from: Int, _ count: Int) {
            for i in from..<(from + count) { hash = (hash ^ UInt32(frame[i])) &* 16_777_619 }
        }
        let l4: Int, proto: UInt8
        switch type {
        case 0x0800:
            guard frame.count >= l3 + 20 else { return 0 }
            mix(l3 + 12, 8)
            proto = frame[l3 + 9]
            let fragment = (UInt16(frame[l3 + 6]) << 8 | UInt16(frame[l3 + 7])) & 0x3FFF != 0
            l4 = fragment ? -1 : l3 + Int(frame[l3] & 0xF) * 4
        case 0x86DD:
            guard frame.count >= l3 + 40 else { return 0 }
            mix(l3 + 8, 32)
            proto = frame[l3 + 6]
            l4 = l3 + 40
        default:
            return 0
        }
        if proto == 6 || proto == 17, l4 > 0, frame.count >= l4 + 4 { mix(l4, 4) }
        return Int(hash ^ hash >> 16)
    }

    /// The host sent its send indirection table: entries past the open queues wrap (Linux: `txq -= num`),
    /// a table whose size is not a power of two is ignored.
    func sendTableReceived(_ entries: [UInt32]) {
        guard !entries.isEmpty, entries.count & (entries.count - 1) == 0 else {
            counters.malformed.bump()
            return
        }
        transmit.withLock { $0.sendTable = entries }
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
            if t.batch.ended, let path = t.path { _ = flushBatch(path, &t) }
        }
        // Only a sender that found everything in flight pays for the wake-up.
        if sendSpaceWaiters.load(ordering: .sequentiallyConsistent) > 0 { sendSpace.update { $0 &+= 1 } }
    }

    /// For a sender answered ``NetVSCSendResult/busy`` that wants to wait for the host to complete a send rather
    /// than poll: from this call on completions are counted; retry the send once, then wait with
    /// ``waitForSendSpace(after:timeoutNanoseconds:)`` (a completion between the two is not missed), and end
    /// with ``endWaitingForSendSpace()``. Returns the count to wait past.
    public func beginWaitingForSendSpace() -> Int {
        sendSpaceWaiters.wrappingIncrement(ordering: .sequentiallyConsistent)
        return sendSpace.withLock { $0 }
    }

    /// Waits (at most `timeoutNanoseconds`) until a completion beyond `generation`; the new count, or nil on
    /// timeout.
    public func waitForSendSpace(after generation: Int, timeoutNanoseconds: UInt64) -> Int? {
        sendSpace.wait(timeoutNanoseconds: timeoutNanoseconds) { $0 != generation ? $0 : nil }
    }

    public func endWaitingForSendSpace() {
        sendSpaceWaiters.wrappingDecrement(ordering: .releasing)
    }
}
