import Atomics
import VMBusHost
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// A VSP that echoes: the host half of the end-to-end tests and of `vmbus up`'s self-test traffic.
/// See ``EchoProtocol``.
public final class EchoDevice: VMBusDeviceProvider {
    public let offer: HostDeviceOffer
    private let handle = Condition<HostDeviceHandle?>(nil)
    public let packetsEchoed = ManagedAtomic<UInt64>(0)
    public let protocolErrors = ManagedAtomic<UInt64>(0)
    public let channelsOpened = ManagedAtomic<Int>(0)
    public let channelsClosed = ManagedAtomic<Int>(0)

    public init(instanceID: GUID, maxSubchannels: Int = 8) {
        offer = HostDeviceOffer(classID: EchoProtocol.classID, instanceID: instanceID, maxSubchannels: maxSubchannels)
    }

    public func attached(_ device: HostDeviceHandle) { handle.withLock { $0 = device } }

    /// Removes the device from the bus (the guest sees a rescind).
    public func rescind() { handle.withLock { $0 }?.rescind() }

    public func channelOpened(_ channel: HostChannel) throws { channelsOpened.wrappingIncrement(ordering: .relaxed) }
    public func channelClosed(_ channel: HostChannel) { channelsClosed.wrappingIncrement(ordering: .relaxed) }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        if packet.descriptor.type == .dataUsingGPADirect {
            echoGPA(packet, buffer: buffer, on: channel)
            return
        }
        guard packet.descriptor.type == .dataInband else {
            protocolErrors.wrappingIncrement(ordering: .relaxed)
            return
        }
        var reader = buffer.wireReader(for: packet)
        guard let op = try? reader.readUInt32() else {
            protocolErrors.wrappingIncrement(ordering: .relaxed)
            return
        }
        do {
            switch EchoProtocol.Operation(rawValue: op) {
            case .echo:
                if packet.descriptor.completionRequested {
                    try channel.sendCompletion(echoing: packet, in: buffer)
                } else {
                    try channel.sendInband(echoing: packet, in: buffer)
                }
                packetsEchoed.wrappingIncrement(ordering: .relaxed)
            case .createSubchannels:
                _ = try? reader.readUInt32()
                let count = (try? reader.readUInt32()) ?? 0
                let offered = handle.withLock { $0 }?.offerSubchannels(Int(min(count, 64))) ?? 0
                var w = WireWriter(capacity: 8)
                w.writeUInt32(0)
                w.writeUInt32(UInt32(offered))
                try channel.sendCompletion(transactionID: packet.descriptor.transactionID, bytes: w.bytes)
            default:
                protocolErrors.wrappingIncrement(ordering: .relaxed)
                if packet.descriptor.completionRequested {
                    // Unknown operation: complete with a failure status so the guest is not left waiting.
                    var w = WireWriter(capacity: 8)
                    w.writeUInt32(0xC000_0010)  // STATUS_INVALID_DEVICE_REQUEST
                    w.writeUInt32(0)
                    try channel.sendCompletion(transactionID: packet.descriptor.transactionID, bytes: w.bytes)
                }
            }
        } catch {
            protocolErrors.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// Reads the guest memory a GPA-direct request names, through the bounds-checked guest memory.
    private func echoGPA(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        var reader = buffer.wireReader(wholePacket: packet)
        var w = WireWriter(capacity: 8 + EchoProtocol.maxGPAEcho)
        do {
            let header = try GPADirectPacketHeader(from: &reader)
            guard (try? reader.readUInt32()) == EchoProtocol.Operation.echoGPA.rawValue else {
                protocolErrors.wrappingIncrement(ordering: .relaxed)
                return
            }
            do {
                let bytes = try channel.memory.read(ranges: header.ranges, limit: EchoProtocol.maxGPAEcho)
                w.writeUInt32(0)
                w.writeUInt32(UInt32(bytes.count))
                w.writeBytes(bytes)
            } catch {
                w.writeUInt32(EchoProtocol.statusAccessViolation)
                w.writeUInt32(0)
            }
            try channel.sendCompletion(transactionID: packet.descriptor.transactionID, bytes: w.bytes)
            packetsEchoed.wrappingIncrement(ordering: .relaxed)
        } catch {
            protocolErrors.wrappingIncrement(ordering: .relaxed)
        }
    }
}
