import VMBusMemory
import VMBusProtocol

// The boundary between the VMBus stack and whatever carries it. The host server and the guest bus driver
// see only these protocols; the in-process implementation and the socket transport provide them.

/// The guest's view of the hypervisor: SynIC message delivery, HvPostMessage and HvSignalEvent.
public protocol GuestSynIC: AnyObject, Sendable {
    /// Guest physical memory, shared with the host.
    var memory: GuestMemory { get }
    /// Allocator for guest pages (rings, GPADL buffers).
    var pages: PageAllocator { get }
    /// HvPostMessage: posts one VMBus channel message (≤ 240 bytes) on `connectionID`.
    func postMessage(connectionID: UInt32, _ message: [UInt8]) -> HvStatus
    /// HvSignalEvent: rings the host doorbell named by `connectionID`.
    func signalEvent(connectionID: UInt32)
    /// Starts delivering host messages and channel interrupts to `sink`, on a thread of the transport.
    func start(_ sink: any GuestInterruptSink)
    /// Stops delivery; returns once the delivery thread has finished.
    func stop()
}

/// What the guest's SynIC delivers to the bus driver.
public protocol GuestInterruptSink: AnyObject, Sendable {
    /// The host set event flag `relID` (a channel interrupt).
    func channelInterrupt(relID: UInt32)
    /// A VMBus channel message arrived in the SINT2 message slot (already copied out).
    func channelMessage(_ bytes: [UInt8])
    /// The host is gone: fail what is outstanding.
    func hostLost()
}

/// The host's view of one guest partition.
public protocol HostPartitionPort: AnyObject, Sendable {
    var memory: GuestMemory { get }
    /// Queues a VMBus channel message for the guest's SINT2. False if the guest's queue is full.
    func postMessage(_ message: [UInt8]) -> Bool
    /// Sets event flag `relID` and raises the guest's SINT: a channel interrupt.
    func interruptGuest(relID: UInt32)
    /// The doorbell the guest rings with HvSignalEvent(`connectionID`); created (and handed to the guest) on
    /// first use. Throws when it cannot be made or handed over; the port has then disconnected the guest
    /// (socket transport), so no channel is ever offered without its doorbell.
    func openDoorbell(connectionID: UInt32) throws(TransportError) -> Doorbell
    /// Forgets a doorbell (channel closed).
    func removeDoorbell(connectionID: UInt32)
    /// Starts delivering guest messages to `sink` on a control thread.
    func start(_ sink: any HostMessageSink)
    func stop()
}

/// What the host receives from one partition.
public protocol HostMessageSink: AnyObject, Sendable {
    /// A VMBus channel message the guest posted on `connectionID`.
    func guestMessage(connectionID: UInt32, _ bytes: [UInt8])
    /// The guest went away without UNLOAD (killed): free everything of this partition.
    func guestDisconnected()
}

extension HostPartitionPort {
    /// ``openDoorbell(connectionID:)`` for callers that cannot fail: a doorbell that could not be opened is
    /// one nobody rings (its worker polls the ring), and the guest has already been disconnected.
    public func doorbell(connectionID: UInt32) -> Doorbell {
        (try? openDoorbell(connectionID: connectionID)) ?? Doorbell.unavailable()
    }
}
