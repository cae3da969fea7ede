import VMBusHost
import VMBusRing
import VMBusSCSI
import VMBusStorageProtocol
import VMBusStorVSP
import VMBusSync
import VMBusTransport
import VMBusWire

/// A storage host that serves the initialization and discovery through a real StorVSP, then answers READ(16)
/// and WRITE(16) the way ``mode`` says: silence, wrong ids, short or inconsistent completions, error statuses.
final class HostileStorageHost: VMBusDeviceProvider, @unchecked Sendable {
    enum Mode: Sendable {
        case honest
        case silent
        case unknownID
        case short(Int)
        case senseLength(UInt8)
        case overTransfer
        case wrongOperation
        /// SRB status BUSY this many times, then honest.
        case busy(Int)
        case unitAttentionOnce
        case mediumError
        /// Nothing at all is answered, the initialization included.
        case mute
    }

    let inner: StorVSP
    let mode = Lock(Mode.honest)
    /// Requests held back by `.silent`, to be answered late.
    let held = Lock<[(HostChannel, UInt64, VStorPacket)]>([])
    private let answered = Lock(0)

    var offer: HostDeviceOffer { inner.offer }

    init(_ inner: StorVSP) { self.inner = inner }

    func attached(_ device: HostDeviceHandle) { inner.attached(device) }
    func channelOpened(_ channel: HostChannel) throws { try inner.channelOpened(channel) }
    func channelClosed(_ channel: HostChannel) { inner.channelClosed(channel) }

    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        if case .mute = mode.withLock({ $0 }) { return }
        var r = buffer.wireReader(for: packet)
        guard let request = try? VStorPacket(from: &r), request.operation == .executeSRB,
              request.srb.cdb(0) == SCSIOpcode.READ_16 || request.srb.cdb(0) == SCSIOpcode.WRITE_16 else {
            return inner.packetReceived(packet, buffer: buffer, on: channel)
        }
        let id = packet.descriptor.transactionID
        var srb = request.srb
        var reply = VStorPacket(operation: .completeIO, flags: 0, srb: srb)
        func send(_ p: VStorPacket, size: Int = 64, id: UInt64 = id) {
            var w = WireWriter(capacity: 64)
            p.encode(into: &w, size: size)
            try? channel.sendCompletion(transactionID: id, bytes: w.bytes)
        }
        func sense(_ key: UInt8, _ asc: UInt8) -> VStorPacket {
            srb.srbStatus = SRBStatus.error.withAutosense()
            srb.scsiStatus = SAMStatus.CHECK_CONDITION
            srb.dataTransferLength = 0
            srb.senseInfoLength = 18
            let s = FixedSenseData(key: key, AdditionalSense(asc, 0))
            for i in 0..<18 { srb.dataArea[i] = s.byte(i) }
            return VStorPacket(operation: .completeIO, flags: 0, status: .ioDeviceError, srb: srb)
        }
        switch mode.withLock({ $0 }) {
        case .honest:
            inner.packetReceived(packet, buffer: buffer, on: channel)
        case .silent:
            held.withLock { $0.append((channel, id, request)) }
        case .unknownID:
            send(reply, id: id &+ 0x1234_0000_0000)
        case .short(let n):
            srb.srbStatus = .success
            reply.srb = srb
            send(reply, size: n)
        case .senseLength(let n):
            var s = sense(SenseKey.MEDIUM_ERROR, 0x11)
            s.body[9] = n  // sense_info_length
            send(s)
        case .overTransfer:
            srb.srbStatus = .success
            srb.dataTransferLength += 4096
            reply.srb = srb
            send(reply)
        case .wrongOperation:
            srb.srbStatus = .success
            reply = VStorPacket(operation: .executeSRB, flags: 0, srb: srb)
            send(reply)
        case .busy(let n):
            let count = answered.withLock { a -> Int in a += 1; return a }
            if count > n { return inner.packetReceived(packet, buffer: buffer, on: channel) }
            srb.srbStatus = .busy
            srb.dataTransferLength = 0
            reply.srb = srb
            send(reply)
        case .unitAttentionOnce:
            mode.withLock { $0 = .honest }
            send(sense(SenseKey.UNIT_ATTENTION, 0x29))
        case .mediumError:
            send(sense(SenseKey.MEDIUM_ERROR, 0x11))
        case .mute:
            break
        }
    }

    /// Answers the requests `.silent` held back, with success and no data.
    func answerHeld() {
        for (channel, id, request) in held.withLock({ h in defer { h.removeAll() }; return h }) {
            var srb = request.srb
            srb.srbStatus = .success
            let p = VStorPacket(operation: .completeIO, flags: 0, srb: srb)
            try? channel.sendCompletion(transactionID: id, bytes: p.wireBytes)
        }
    }
}
