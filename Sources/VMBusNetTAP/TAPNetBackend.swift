import Atomics
import VMBusNetVSP
import VMBusSync
import VMBusTransport

/// A host NIC's backend on a TAP interface: what the guest sends leaves through the TAP (the kernel's side
/// of the wire), what the kernel sends into the TAP reaches the guest.
///
/// Transmit runs on the NIC's channel worker and only writes (non-blocking): a full TAP queue drops the frame
/// and counts it, so the worker never waits on the kernel. Frames from the kernel come on the reader's own
/// thread, which waits (bounded, then retries) for receive space when the guest has none, so nothing read is
/// lost to a guest that is merely slow; without an attached NIC they are dropped and counted.
///
/// Offloads: what the guest left to the host (a partial checksum, an LSO segment) is written with a virtio-net
/// header that leaves it to the kernel (GSO), which finishes it once per segment, or not at all for a local
/// socket. The other way, the TAP asks the kernel for partial checksums and TCP segments of up to the LSO size
/// (TSO4/6), which the NIC passes to a guest that turned RSC on as one packet, or finishes and cuts itself.
/// `passesOffloads: false` turns both off: every frame crosses complete and at most one MTU.
///
/// One NIC at a time: a NIC that attaches takes over from the one before (a host serving partitions one after
/// another hands each the same TAP), and when it detaches the newest one still attached takes over again.
public final class TAPNetBackend: NetBackend, @unchecked Sendable {
    public let device: TAPDevice
    /// Reads the kernel's frames; see ``TAPFrameReader``.
    public let reader: TAPFrameReader
    private let port = Condition<PortState>(PortState())
    /// NetVSP filled in the checksums the guest left to it; the header says "complete frame, no GSO".
    private static let header = VirtioNetHeader()

    private struct PortState {
        /// The NICs that attached and are still attached, oldest first: the newest gets the kernel's frames.
        var attached: [any NetPort] = []
        var port: (any NetPort)? { attached.last }
        var spaceSignals = 0
    }

    public let framesWritten = ManagedAtomic<Int>(0)
    /// Frames the guest sent that the TAP's full queue (or a TAP that is down) refused.
    public let writesDropped = ManagedAtomic<Int>(0)
    public let framesDelivered = ManagedAtomic<Int>(0)
    /// Frames from the kernel no guest took: none attached, or the NIC refused them (filter, size, link).
    public let deliveriesDropped = ManagedAtomic<Int>(0)

    public let acceptsOffloads: Bool

    /// Serves `device`; frames are read from the moment it is created.
    public init(device: TAPDevice, maxFrameSize: Int = 65_535 + 18, passesOffloads: Bool = true) throws(TAPError) {
        self.device = device
        acceptsOffloads = passesOffloads
        var policy = TAPFrameReader.OffloadPolicy()
        if passesOffloads {
            try device.setOffloads([.checksum, .tcpSegmentationIPv4, .tcpSegmentationIPv6, .tcpSegmentationECN])
            // As large as a guest's LSO sends may be; best effort, since NetVSP cuts larger ones anyway.
            try? device.setGSOMaxSize(Int(LargeSendOffload.maxOffloadSize))
            policy.checksumIPv4 = true
            policy.checksumIPv6 = true
            policy.segmentationIPv4 = true
            policy.segmentationIPv6 = true
            policy.maxSegmentationFrame = maxFrameSize
        }
        let port = self.port
        let dropped = deliveriesDropped
        let delivered = framesDelivered
        let batch = Batch()
        let reader = try TAPFrameReader(device: device, maxFrameSize: maxFrameSize, policy: policy, handler: { frame, offload, reader in
            Self.deliver(UnsafeRawBufferPointer(frame), offload, port: port, batch: batch, delivered: delivered, dropped: dropped,
                         stopping: { reader.isStopping })
        }, batchEnd: { batch.end() })
        self.reader = reader
        reader.start()
    }

    /// Stops the reader and closes the TAP.
    public func stop() {
        reader.stop()
        device.close()
    }

    public func attached(_ port: any NetPort) {
        self.port.update { s in
            s.attached.removeAll { $0 === port }
            s.attached.append(port)
        }
    }

    public func detached(_ port: any NetPort) {
        // The one before it (another partition's NIC still running) gets the frames again.
        self.port.update { s in s.attached.removeAll { $0 === port } }
    }

    public func receiveSpaceAvailable(_ port: any NetPort) {
        self.port.update { $0.spaceSignals &+= 1 }
    }

    public func transmit(_ frame: UnsafeRawBufferPointer, from port: any NetPort) {
        switch device.write(header: Self.header, frame: frame) {
        case .written: framesWritten.wrappingIncrement(ordering: .relaxed)
        case .wouldBlock, .failed: writesDropped.wrappingIncrement(ordering: .relaxed)
        }
    }

    public func transmit(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, from port: any NetPort) {
        switch device.write(header: VirtioNetHeader(offload), frame: frame) {
        case .written: framesWritten.wrappingIncrement(ordering: .relaxed)
        case .wouldBlock, .failed: writesDropped.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// The NIC the reader's current batch went to (only the reader's thread uses it): the batch ends there, and
    /// a batch whose NIC was replaced midway ends at the old one first.
    private final class Batch: @unchecked Sendable {
        var target: (any NetPort)?
        func switchTo(_ port: any NetPort) {
            if let target, target !== port { target.flushDeliveries() }
            target = port
        }
        func end() {
            target?.flushDeliveries()
            target = nil
        }
    }

    /// On the reader's thread: hands `frame` to the attached NIC as part of the reader's batch, waiting while
    /// it is busy.
    private static func deliver(_ frame: UnsafeRawBufferPointer, _ offload: FrameOffload?, port: Condition<PortState>, batch: Batch,
                                delivered: ManagedAtomic<Int>, dropped: ManagedAtomic<Int>, stopping: () -> Bool) {
        while !stopping() {
            let (target, generation) = port.withLock { ($0.port, $0.spaceSignals) }
            guard let target else { break }
            batch.switchTo(target)
            switch offload.map({ target.deliver(frame, offload: $0, more: true) }) ?? target.deliver(frame, more: true) {
            case .accepted:
                delivered.wrappingIncrement(ordering: .relaxed)
                return
            case .dropped:
                break
            case .busy:
                // A space signal may have come between the delivery and this wait: the generation catches it.
                // The timeout covers a guest that never returns space, and lets a stop be seen.
                _ = port.wait(timeoutNanoseconds: 50_000_000) { $0.spaceSignals != generation ? true : nil }
                continue
            }
            break
        }
        dropped.wrappingIncrement(ordering: .relaxed)
    }
}
