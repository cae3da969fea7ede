import Atomics
import Logging
import VMBusGuest
import VMBusNetVSC
import VMBusNetVSP
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
/// waits for the host to complete a send and retries, for up to a second, then drops.
///
/// Offloads, as `hv_netvsc` offers them to its stack: once the NIC knows what the host takes, the TAP asks the
/// kernel for partial checksums (TCP and UDP) and for TSO over the IP versions the host segments, with the
/// kernel's GSO frames capped at the host's LSO size; a frame the kernel left partial goes out with
/// `TCPIP_CHKSUM_PKTINFO`, a GSO frame as one LSOv2 send, rewritten as Linux's netvsc rewrites it (IP length 0, the
/// pseudo-header sum without the length). What the host does not take is finished here.
///
/// The stack's changes to the interface (another MAC, a larger MTU) are not passed on: frames larger than the
/// NIC's ``NetVSC/maxFrameSize`` are dropped by it.
public final class GuestTAPInterface: @unchecked Sendable {
    public let device: TAPDevice
    public let nic: NetVSC
    private let reader: TAPFrameReader
    private static let header = VirtioNetHeader()
    /// What the TAP hands over unfinished (what the NIC negotiated).
    public let offloads: TAPFrameReader.OffloadPolicy

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
            // Frames go complete: tun ignores VIRTIO_NET_HDR_F_DATA_VALID on what is written to it, so a host's
            // checksum verdict cannot be passed on (the host finishes RSC frames' checksums for that reason). A
            // coalesced frame larger than the MTU is taken by a local socket as GRO's frames are.
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
            try nic.start()
            offloads = try Self.askForOffloads(device, nic, logger)
            let policy = offloads
            // Frames go with `more` and the reader's batch ends with a flush: the frames the stack queued together
            // share send sections (Linux's netvsc batches on `xmit_more` the same way).
            reader = try TAPFrameReader(device: device, maxFrameSize: NetVSC.largeSendLimit, policy: policy, handler: { frame, offload, reader in
                Self.send(frame, offload, nic, reader, sent: fromStack, dropped: sendDrops)
            }, batchEnd: { nic.flushSends() })
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

    /// Turns on the TAP's offloads the NIC can carry; what it asks for is what the reader passes on.
    private static func askForOffloads(_ device: TAPDevice, _ nic: NetVSC, _ logger: Logger?) throws -> TAPFrameReader.OffloadPolicy {
        var policy = TAPFrameReader.OffloadPolicy()
        // TUN_F_CSUM covers both IP versions: the reader finishes the one the host does not take.
        guard nic.checksumOffload || nic.checksumOffloadIPv6 else { return policy }
        policy.checksumIPv4 = nic.checksumOffload
        policy.checksumIPv6 = nic.checksumOffloadIPv6
        var asked: TAPDevice.Offloads = [.checksum]
        if nic.largeSendMaxSize > 0 {
            // TSO needs the partial checksum of that IP version (the host fills it in per segment).
            policy.segmentationIPv4 = nic.checksumOffload
            policy.segmentationIPv6 = nic.largeSendIPv6 && nic.checksumOffloadIPv6
            policy.maxSegmentationFrame = nic.largeSendMaxSize
            if policy.segmentationIPv4 { asked.insert(.tcpSegmentationIPv4) }
            if policy.segmentationIPv6 { asked.insert(.tcpSegmentationIPv6) }
            if !asked.isDisjoint(with: [.tcpSegmentationIPv4, .tcpSegmentationIPv6]) { asked.insert(.tcpSegmentationECN) }
            do { try device.setGSOMaxSize(nic.largeSendMaxSize) } catch {
                // The reader cuts what is larger than the NIC takes; only slower.
                logger?.notice("\(device.name): \(error); larger GSO frames are cut in software")
            }
        }
        try device.setOffloads(asked)
        return policy
    }

    private static func send(_ frame: UnsafeMutableRawBufferPointer, _ offload: FrameOffload?, _ nic: NetVSC,
                             _ reader: TAPFrameReader, sent: ManagedAtomic<Int>, dropped: ManagedAtomic<Int>) {
        let request = offload.flatMap { NetVSC.TransmitOffload(kernel: $0, rewriting: frame) }
        if offload != nil && request == nil {
            // Headers that do not add up for what the kernel asked: nothing we could send would be right.
            dropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        var deadline: UInt64 = 0
        var generation: Int?
        defer { if generation != nil { nic.endWaitingForSendSpace() } }
        while !reader.isStopping {
            switch nic.send(UnsafeRawBufferPointer(frame), offload: request, more: true) {
            case .sent:
                sent.wrappingIncrement(ordering: .relaxed)
                return
            case .dropped:
                break
            case .busy:
                // The host frees sections and buffers as it completes sends; wait for one (bounded, so a stop
                // is seen), up to a second in all.
                let now = monotonicNanoseconds()
                if deadline == 0 { deadline = now + 1_000_000_000 }
                guard now < deadline else { break }
                guard let seen = generation else {
                    // Counting completions from now on, one more try catches any that came before.
                    generation = nic.beginWaitingForSendSpace()
                    continue
                }
                generation = nic.waitForSendSpace(after: seen, timeoutNanoseconds: 10_000_000) ?? seen
                continue
            }
            break
        }
        dropped.wrappingIncrement(ordering: .relaxed)
    }
}
