import Atomics
import Logging
import VMBusGuest
import VMBusNetVSC
import VMBusSync
import VMBusTransport

/// The guest NIC's upper edge: a NetVSC presented to the Linux stack as a TAP interface, as `hv_netvsc`'s
/// net_device is (Linux `netvsc_drv.c`): frames the NIC receives are written to the TAP, frames the stack
/// sends through the TAP are sent with ``NetVSC/send(_:offload:)``. The TAP gets the NIC's MAC address and MTU,
/// and its carrier follows the NIC's link (the host's MEDIA_CONNECT and MEDIA_DISCONNECT indications).
///
/// Threads: received frames are written on the bus's interrupt thread, which must not block, so a TAP whose
/// queue is full (or that is down) drops the frame and counts it, as a NIC with no receive buffers would.
/// Frames from the TAP are sent on the reader's thread; while the NIC is busy (no section, ring full) it
/// retries after short sleeps, for up to a second, then drops.
///
/// The stack's changes to the interface (another MAC, a larger MTU) are not passed on: frames larger than the
/// NIC's ``NetVSC/maxFrameSize`` are dropped by it.
public final class GuestTAPInterface: @unchecked Sendable {
    public let device: TAPDevice
    public let nic: NetVSC
    private let reader: TAPFrameReader
    private static let header = VirtioNetHeader().bytes

    public let framesToStack = ManagedAtomic<Int>(0)
    /// Frames the NIC received that the TAP refused (queue full, interface down).
    public let stackDrops = ManagedAtomic<Int>(0)
    public let framesFromStack = ManagedAtomic<Int>(0)
    /// Frames from the stack the NIC never took (busy for a second, too large, stopped).
    public let sendDrops = ManagedAtomic<Int>(0)

    /// Opens the TAP `tapName`, starts a NetVSC on `device` that feeds it, and gives the TAP the NIC's MAC
    /// address and MTU. The interface is left down, as a new NIC is. `onLinkChange` hears the NIC's link changes
    /// after the TAP's carrier followed them (on the bus's interrupt thread: it must not block).
    public init(device guestDevice: GuestDevice, tapName: String, configuration: NetVSC.Configuration = NetVSC.Configuration(),
                logger: Logger? = nil, onLinkChange: (@Sendable (Bool) -> Void)? = nil) throws {
        device = try TAPDevice(name: tapName)
        let tap = device
        let toStack = framesToStack, drops = stackDrops
        let nic = try NetVSC(device: guestDevice, configuration: configuration, logger: logger, onReceive: { frame in
            switch tap.write(header: Self.header, frame: frame) {
            case .written: toStack.wrappingIncrement(ordering: .relaxed)
            case .wouldBlock, .failed: drops.wrappingIncrement(ordering: .relaxed)
            }
        }, onLinkChange: { up in
            // As netvsc_link_change does with netif_carrier_on/off; an ioctl, it does not block.
            tap.setCarrier(up)
            onLinkChange?(up)
        })
        self.nic = nic
        let fromStack = framesFromStack, sendDrops = self.sendDrops
        do {
            reader = try TAPFrameReader(device: device, maxFrameSize: 65_535) { frame, reader in
                Self.send(frame, nic, reader, sent: fromStack, dropped: sendDrops)
            }
            try nic.start()
            device.setCarrier(nic.linkUp)
            try device.setMACAddress(nic.macAddress)
            try device.setMTU(nic.mtu)
        } catch {
            nic.stop()
            device.close()
            throw error
        }
        reader.start()
    }

    /// Stops the reader, the NIC (Linux's teardown towards the host) and closes the TAP. Once only.
    public func stop() {
        guard !reader.isStopping else { return }
        reader.stop()
        nic.stop()
        device.close()
    }

    private static func send(_ frame: UnsafeRawBufferPointer, _ nic: NetVSC, _ reader: TAPFrameReader,
                             sent: ManagedAtomic<Int>, dropped: ManagedAtomic<Int>) {
        var deadline: UInt64 = 0
        while !reader.isStopping {
            switch nic.send(frame) {
            case .sent:
                sent.wrappingIncrement(ordering: .relaxed)
                return
            case .dropped:
                break
            case .busy:
                // The host frees sections as it completes sends; NetVSC has no "space" callback, so poll.
                let now = monotonicNanoseconds()
                if deadline == 0 { deadline = now + 1_000_000_000 }
                guard now < deadline else { break }
                sleepNanoseconds(20_000)
                continue
            }
            break
        }
        dropped.wrappingIncrement(ordering: .relaxed)
    }
}
