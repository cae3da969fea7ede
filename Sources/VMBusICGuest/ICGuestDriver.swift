import Logging
import VMBusGuest
import VMBusICProtocol
import VMBusTransport
import VMBusWire

/// The guest's util driver (Linux's hv_utils): binds to the IC devices it has responders for and opens
/// each one's channel.
public final class ICGuestDriver: VMBusDriver, @unchecked Sendable {
    public let name = "hv_utils"
    public let responders: [any ICResponder]
    let logger: Logger
    private let bound = Condition<[GUID: (GuestChannel, ICGuestChannel)]>([:])

    /// Ring sizes of an IC channel: room for a whole KVP message (7.5 KiB) each way.
    public static let ringSize = 6 * 4096

    public init(responders: [any ICResponder], logger: Logger = Logger(label: "vmbus.ic.guest")) {
        self.responders = responders
        self.logger = logger
    }

    public var classIDs: [GUID] { responders.map(\.service.classID) }

    public func probe(_ device: GuestDevice) throws {
        guard let responder = responders.first(where: { $0.service.classID == device.classID }) else {
            throw GuestError.invalidArgument("no IC responder for \(device.classID)")
        }
        let handler = ICGuestChannel(responder: responder, logger: logger)
        // Attach before the open: the host's NEGOTIATE can arrive before OPENCHANNEL_RESULT.
        try handler.attachWorker()
        let channel: GuestChannel
        do {
            channel = try device.open(outgoingRingSize: Self.ringSize, incomingRingSize: Self.ringSize,
                                      maxPacketSize: 16 << 10, requestSlots: 8, handler: handler)
        } catch {
            handler.detach()
            throw error
        }
        bound.withLock { $0[device.instanceID] = (channel, handler) }
    }

    public func remove(_ device: GuestDevice) {
        guard let (channel, handler) = bound.withLock({ $0.removeValue(forKey: device.instanceID) }) else { return }
        handler.detach()
        channel.close()
    }

    /// The open channel of `service`, if bound.
    public func channel(for service: ICService) -> ICGuestChannel? {
        bound.withLock { b in b.values.first { $0.1.responder.service == service }?.1 }
    }
}
