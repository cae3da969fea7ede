import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport

/// One open channel as a device provider sees it: send packets to the guest, read the guest memory that
/// GPA-direct packets name.
public final class HostChannel: Sendable {
    public let relID: UInt32
    public let subchannelIndex: UInt16
    public let offer: HostDeviceOffer
    /// `userdata` the guest passed in OPENCHANNEL.
    public let userData: [UInt8]
    /// Guest memory; every access is bounds-checked.
    public let memory: GuestMemory
    public let endpoint: ChannelEndpoint

    init(relID: UInt32, subchannelIndex: UInt16, offer: HostDeviceOffer, userData: [UInt8], memory: GuestMemory,
         endpoint: ChannelEndpoint) {
        self.relID = relID
        self.subchannelIndex = subchannelIndex
        self.offer = offer
        self.userData = userData
        self.memory = memory
        self.endpoint = endpoint
    }

    /// Sends an in-band packet.
    public func sendInband(_ payload: UnsafeRawBufferPointer, transactionID: UInt64 = 0,
                           completionRequested: Bool = false) throws(ChannelError) {
        try endpoint.send(type: .dataInband,
                          flags: completionRequested ? PacketDescriptor.flagCompletionRequested : 0,
                          transactionID: transactionID, payload: payload)
    }

    /// Completes the guest request `transactionID` (echoed exactly, as Hyper-V does).
    public func sendCompletion(transactionID: UInt64, _ payload: UnsafeRawBufferPointer) throws(ChannelError) {
        try endpoint.send(type: .completion, flags: 0, transactionID: transactionID, payload: payload)
    }

    /// Control-path conveniences (allocate).
    public func sendInband(bytes: [UInt8], transactionID: UInt64 = 0, completionRequested: Bool = false) throws(ChannelError) {
        try endpoint.send(type: .dataInband, flags: completionRequested ? PacketDescriptor.flagCompletionRequested : 0,
                          transactionID: transactionID, bytes: bytes)
    }

    public func sendCompletion(transactionID: UInt64, bytes: [UInt8]) throws(ChannelError) {
        try endpoint.send(type: .completion, flags: 0, transactionID: transactionID, bytes: bytes)
    }
}

extension HostChannel {
    /// Completes `packet` with its own payload (an echo), without copying it through the heap.
    public func sendCompletion(echoing packet: ReceivedPacket, in buffer: PacketBuffer) throws(ChannelError) {
        try endpoint.send(type: .completion, flags: 0, transactionID: packet.descriptor.transactionID,
                          payloadOf: packet, in: buffer)
    }

    /// Sends `packet`'s payload back as a new in-band packet.
    public func sendInband(echoing packet: ReceivedPacket, in buffer: PacketBuffer) throws(ChannelError) {
        try endpoint.send(type: .dataInband, flags: 0, transactionID: 0, payloadOf: packet, in: buffer)
    }
}
