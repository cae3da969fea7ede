import VMBusHost
import VMBusMemory
import VMBusNetProtocol
import VMBusNetVSP
import VMBusProtocol
import VMBusRing
import VMBusSync
import VMBusTransport
import VMBusWire

/// A NetVSP that can also send the guest whatever a test writes: it forwards everything to a real NetVSP,
/// remembers the primary channel and the receive buffer's GPADL, and injects raw packets and raw bytes into
/// the guest's receive buffer.
final class HostileNetHost: VMBusDeviceProvider, @unchecked Sendable {
    let inner: NetVSP
    private let state = Lock<(channel: HostChannel?, device: HostDeviceHandle?, receiveGPADL: UInt32?)>((nil, nil, nil))
    private let sendGPADL = Lock<UInt32?>(nil)
    /// Each SEND_RNDIS_PKT naming a send section, with the section's bytes as the host read them then.
    let sections = Condition<[(index: UInt32, bytes: [UInt8])]>([])

    init(_ inner: NetVSP) { self.inner = inner }

    var offer: HostDeviceOffer { inner.offer }
    func attached(_ device: HostDeviceHandle) {
        state.withLock { $0.device = device }
        inner.attached(device)
    }
    func channelOpened(_ channel: HostChannel) throws {
        state.withLock { $0.channel = channel }
        try inner.channelOpened(channel)
    }
    func channelClosed(_ channel: HostChannel) { inner.channelClosed(channel) }
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        if packet.descriptor.type == .dataInband {
            var r = buffer.wireReader(for: packet)
            switch try? NVSPMessage(from: &r, direction: .guestToHost) {
            case .sendReceiveBuffer(let m)?: state.withLock { $0.receiveGPADL = m.gpadlHandle }
            case .sendSendBuffer(let m)?: sendGPADL.withLock { $0 = m.gpadlHandle }
            case .sendRNDISPacket(let m)? where m.usesSendBuffer: recordSection(m, channel)
            default: break
            }
        }
        inner.packetReceived(packet, buffer: buffer, on: channel)
    }

    private func recordSection(_ m: NVSPSendRNDISPacket, _ channel: HostChannel) {
        let device = state.withLock { $0.device }
        guard let handle = sendGPADL.withLock({ $0 }), let device, let range = device.gpadlRanges(handle, relID: channel.relID)?.first,
              let buffer = try? GuestPageBuffer(memory: channel.memory, pages: range.pfns) else { return }
        let at = Int(m.sendBufferSectionIndex) * inner.configuration.sendSectionSize
        var bytes = [UInt8](repeating: 0, count: Int(m.sendBufferSectionSize))
        guard (try? buffer.read(at: at, count: bytes.count, into: &bytes)) != nil else { return }
        sections.update { $0.append((m.sendBufferSectionIndex, bytes)) }
    }

    /// The guest's receive buffer.
    func receiveBuffer() throws -> GuestPageBuffer {
        let (channel, device, handle) = state.withLock { ($0.channel, $0.device, $0.receiveGPADL) }
        guard let channel, let device, let handle, let ranges = device.gpadlRanges(handle, relID: channel.relID),
              let range = ranges.first else { throw NetTestError.notReady }
        return try GuestPageBuffer(memory: channel.memory, pages: range.pfns)
    }

    /// A transfer-page packet with the given set id and ranges (count, offset), `claimedRanges` in its
    /// header, and `payload` after them.
    func sendTransferPage(setID: UInt16 = 0xCAFE, ranges: [(UInt32, UInt32)], claimedRanges: UInt32? = nil,
                          payload: [UInt8] = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data)).wireBytes,
                          transactionID: UInt64 = 0xDEAD_0000) throws {
        guard let channel = state.withLock({ $0.channel }) else { throw NetTestError.notReady }
        var w = WireWriter()
        w.writeUInt16(setID)
        w.writeUInt8(0)
        w.writeUInt8(0)
        w.writeUInt32(claimedRanges ?? UInt32(ranges.count))
        for (count, offset) in ranges {
            w.writeUInt32(count)
            w.writeUInt32(offset)
        }
        let header = w.bytes
        try header.withUnsafeBytes { h in
            try payload.withUnsafeBytes { p in
                try channel.endpoint.send(type: .dataUsingXferPages, flags: PacketDescriptor.flagCompletionRequested,
                                          transactionID: transactionID, header: h, payload: p)
            }
        }
    }

    func sendInband(_ bytes: [UInt8]) throws {
        guard let channel = state.withLock({ $0.channel }) else { throw NetTestError.notReady }
        try channel.sendInband(bytes: bytes)
    }

    func sendCompletion(transactionID: UInt64, _ bytes: [UInt8]) throws {
        guard let channel = state.withLock({ $0.channel }) else { throw NetTestError.notReady }
        try channel.sendCompletion(transactionID: transactionID, bytes: bytes)
    }
}

enum NetTestError: Error { case notReady }

/// A PACKET message with a frame, then `mutate` applied to its bytes.
func rndisPacketBytes(frame: [UInt8], info: RNDISPacketInfo = RNDISPacketInfo(), _ mutate: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
    var w = WireWriter()
    RNDISPacket.encodeMessage(into: &w, info: info, frame: frame)
    var b = w.bytes
    mutate(&b)
    return b
}

extension Array where Element == UInt8 {
    mutating func setLE32(_ v: UInt32, at i: Int) {
        for k in 0..<4 { self[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
    }
}
