import VMBusHost
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// A test VSP of the echo class that never completes requests, or answers them with chosen (possibly bogus)
/// transaction ids: a misbehaving host for the guest's hardening tests.
public final class SinkDevice: VMBusDeviceProvider {
    public let offer: HostDeviceOffer
    public let received = Condition(0)
    private let handle = Condition<HostDeviceHandle?>(nil)
    private let rogueCompletions: [UInt64]

    /// - Parameter rogueCompletions: transaction ids to complete (with an echo-sized payload) on the first request.
    public init(instanceID: GUID, rogueCompletions: [UInt64] = []) {
        offer = HostDeviceOffer(classID: EchoProtocol.classID, instanceID: instanceID)
        self.rogueCompletions = rogueCompletions
    }

    public func attached(_ device: HostDeviceHandle) { handle.withLock { $0 = device } }
    public func rescind() { handle.withLock { $0 }?.rescind() }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        let first = received.withLock { n -> Bool in n += 1; return n == 1 }
        guard first else { return }
        for id in rogueCompletions {
            var bytes = buffer.payloadArray(of: packet)
            bytes[8..<16] = [0, 0, 0, 0, 0, 0, 0, 0]
            try? channel.sendCompletion(transactionID: id, bytes: bytes)
        }
    }
}
