import VMBusGuest
import VMBusICGuest
import VMBusICProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// A guest that answers an IC channel however a test says: `answer` maps each request (payload and VMBus
/// transaction id) to the packets to send back.
final class RawICGuest: VMBusDriver, GuestChannelHandler, @unchecked Sendable {
    let name = "raw_ic"
    let service: ICService
    let answer: @Sendable ([UInt8], UInt64) -> [([UInt8], UInt64)]
    let channel = Condition<GuestChannel?>(nil)

    init(service: ICService, answer: @escaping @Sendable ([UInt8], UInt64) -> [([UInt8], UInt64)]) {
        self.service = service
        self.answer = answer
    }

    var classIDs: [GUID] { [service.classID] }

    func probe(_ device: GuestDevice) throws {
        let c = try device.open(outgoingRingSize: ICGuestDriver.ringSize, incomingRingSize: ICGuestDriver.ringSize,
                                maxPacketSize: 16 << 10, handler: self)
        channel.update { $0 = c }
    }

    func remove(_ device: GuestDevice) { channel.withLock { $0 }?.close() }

    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        for (bytes, id) in answer(buffer.payloadArray(of: packet), packet.descriptor.transactionID) {
            bytes.withUnsafeBytes { try? channel.sendInband($0, transactionID: id) }
        }
    }

    /// Linux's answer to a NEGOTIATE, for a test that misbehaves only afterwards.
    static func linuxNegotiation(_ service: ICService, _ bytes: [UInt8]) -> [UInt8]? {
        guard let m = try? ICMessage(packet: bytes), m.header.icmsgtype == .negotiate else { return nil }
        return try? service.linuxAnswer(to: bytes).response
    }
}
