import VMBusHost
import VMBusICHost
import VMBusICProtocol
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// A host that sends whatever bytes a test gives it on an IC channel, and keeps what the guest answers.
final class RawICHost: VMBusDeviceProvider, @unchecked Sendable {
    let offer: HostDeviceOffer
    let channel = Condition<HostChannel?>(nil)
    /// (transaction id, payload) of every packet the guest sent.
    let answers = Condition<[(UInt64, [UInt8])]>([])

    init(service: ICService) {
        offer = HostDeviceOffer(classID: service.classID, instanceID: InProcessSystem.instanceID(50),
                                maxPacketSize: ICHostChannel.maxPacketSize)
    }

    func channelOpened(_ channel: HostChannel) throws { self.channel.update { $0 = channel } }
    func channelClosed(_ channel: HostChannel) { self.channel.update { $0 = nil } }
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        let bytes = buffer.payloadArray(of: packet)
        answers.update { $0.append((packet.descriptor.transactionID, bytes)) }
    }

    func send(_ bytes: [UInt8], id: UInt64) throws {
        guard let c = channel.wait(timeoutNanoseconds: 5_000_000_000, until: { $0 }) else { throw RawPeerError.noChannel }
        try c.sendInband(bytes: bytes, transactionID: id)
    }

    /// Sends and waits for the answer with the same transaction id.
    func exchange(_ bytes: [UInt8], id: UInt64, seconds: Double = 5) throws -> ICMessage? {
        try send(bytes, id: id)
        let answer = answers.wait(timeoutNanoseconds: UInt64(seconds * 1e9)) { a in a.first { $0.0 == id }?.1 }
        return try answer.map { try ICMessage(packet: $0) }
    }

    /// A request of `type` with `body` at the given versions.
    static func request(_ type: ICMessageType, _ body: [UInt8], service: ICVersion, framework: ICVersion = .utilFWVersion) -> [UInt8] {
        ICMessage(header: ICMessageHeader(icverframe: framework, icmsgtype: type, icvermsg: service, icmsgsize: 0),
                  body: body).wireBytes
    }
}

enum RawPeerError: Error { case noChannel }
