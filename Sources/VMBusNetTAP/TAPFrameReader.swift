import Atomics
import CVMBusShims
import VMBusNetVSP
import VMBusSync
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// A thread that reads a TAP's frames and hands each to a handler, with what the kernel left undone (a TAP that
/// asked for ``TAPDevice/Offloads``) either passed on as a ``FrameOffload`` or done here, as the reader's
/// ``OffloadPolicy`` says: a partial checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) is finished in software, a GSO
/// super-frame cut into complete segments. A header asking for what cannot be done (UDP fragmentation, fields
/// outside the frame) drops the frame, counted. The handler may change in place the bytes of a frame passed
/// with an offload (to rewrite its headers for a NIC).
///
/// The thread sleeps in `poll` on the TAP and a wake pipe, so ``stop()`` ends it at once; the handler may wait
/// (for a guest's receive space, say) but must return when the reader's ``isStopping`` turns true.
///
/// Frames come in batches: everything the TAP has queued (up to 64 frames), then `batchEnd` once the queue is
/// empty, so a handler can pass frames on with `more` (Linux's `xmit_more`) and end the batch there.
public final class TAPFrameReader: @unchecked Sendable {
    public let device: TAPDevice
    /// The largest frame taken (larger ones are cut by the kernel's read and dropped here).
    public let maxFrameSize: Int
    public let policy: OffloadPolicy
    private let handler: @Sendable (UnsafeMutableRawBufferPointer, FrameOffload?, TAPFrameReader) -> Void
    private let batchEnd: @Sendable () -> Void
    /// An eventfd: ``stop()`` adds to it, the thread's poll sees it readable.
    private let wake: Int32
    private let stopping = ManagedAtomic<Bool>(false)
    private let done = Latch()
    private var started = false

    public let framesRead = ManagedAtomic<Int>(0)
    public let checksumsFinished = ManagedAtomic<Int>(0)
    /// GSO frames cut here, and those passed on whole.
    public let framesSegmented = ManagedAtomic<Int>(0)
    public let framesPassedWhole = ManagedAtomic<Int>(0)
    /// GSO frames, truncated frames and frames whose partial checksum lay outside them.
    public let framesRefused = ManagedAtomic<Int>(0)

    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// What the handler takes unfinished; everything else is done before it sees the frame.
    public struct OffloadPolicy: Sendable, Equatable {
        public var checksumIPv4 = false
        public var checksumIPv6 = false
        public var segmentationIPv4 = false
        public var segmentationIPv6 = false
        /// The largest GSO frame passed on; larger ones are cut here.
        public var maxSegmentationFrame = 0
        public init() {}
    }

    public init(device: TAPDevice, maxFrameSize: Int = 65_535, policy: OffloadPolicy = OffloadPolicy(),
                handler: @escaping @Sendable (UnsafeMutableRawBufferPointer, FrameOffload?, TAPFrameReader) -> Void,
                batchEnd: @escaping @Sendable () -> Void = {}) throws(TAPError) {
        self.device = device
        self.maxFrameSize = maxFrameSize
        self.policy = policy
        self.handler = handler
        self.batchEnd = batchEnd
        wake = vmbus_shim_eventfd(0, vmbus_shim_efd_cloexec() | vmbus_shim_efd_nonblock())
        guard wake >= 0 else { throw TAPError("eventfd", errno: errno) }
    }

    deinit {
        stop()
        Glibc.close(wake)
    }

    public func start() {
        guard !started else { return }
        started = startThread(name: "tap-rx") { [self] in
            run()
            done.open()
        }
    }

    /// Ends the thread (bounded: the handler sees ``isStopping``) and waits for it.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = Glibc.write(wake, &one, 8)
        if started { _ = done.wait(timeoutNanoseconds: 10_000_000_000) }
    }

    private func run() {
        // One reused buffer: the header, then the frame; one byte more than the largest frame shows truncation.
        var buffer = [UInt8](repeating: 0, count: VirtioNetHeader.size + maxFrameSize + 1)
        // Where GSO frames the handler does not take are cut, one segment at a time.
        var segment = [UInt8]()
        var fds = [pollfd(fd: device.fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        while !isStopping {
            fds[0].revents = 0
            fds[1].revents = 0
            let r = poll(&fds, 2, -1)
            if r < 0 && errno == EINTR { continue }
            guard r > 0, fds[1].revents == 0 else { break }
            if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { break }
            // A batch, then poll again, so a stop request is seen between batches.
            defer { batchEnd() }
            for _ in 0..<64 where !isStopping {
                guard let n = device.read(into: &buffer) else { return }
                guard n > 0 else { break }
                framesRead.wrappingIncrement(ordering: .relaxed)
                guard n > VirtioNetHeader.size + 13, n < buffer.count else {
                    framesRefused.wrappingIncrement(ordering: .relaxed)
                    continue
                }
                switch prepare(&buffer, length: n) {
                case .refuse:
                    framesRefused.wrappingIncrement(ordering: .relaxed)
                case .pass(let offload):
                    buffer.withUnsafeMutableBytes {
                        handler(UnsafeMutableRawBufferPointer(rebasing: $0[VirtioNetHeader.size..<n]), offload, self)
                    }
                case .cut(let offload):
                    if segment.isEmpty { segment = [UInt8](repeating: 0, count: maxFrameSize) }
                    let ok = LargeSendOffload.segment(offload, source: buffer, start: VirtioNetHeader.size,
                                                      length: n - VirtioNetHeader.size, maxFrame: maxFrameSize,
                                                      into: &segment) { piece in
                        handler(UnsafeMutableRawBufferPointer(mutating: piece), nil, self)
                    }
                    if ok { framesSegmented.wrappingIncrement(ordering: .relaxed) } else {
                        framesRefused.wrappingIncrement(ordering: .relaxed)
                    }
                }
            }
        }
    }

    private enum Disposition {
        case refuse
        case pass(FrameOffload?)
        case cut(FrameOffload)
    }

    /// Reads the header before the frame in `buffer[header ..< length]` and does what the policy leaves here.
    private func prepare(_ buffer: inout [UInt8], length: Int) -> Disposition {
        guard let header = VirtioNetHeader(buffer) else { return .refuse }
        let frameLength = length - VirtioNetHeader.size
        let offload: FrameOffload
        switch header.offload(frameLength: frameLength) {
        case nil: return .pass(nil)
        case .failure: return .refuse
        case .success(let o): offload = o
        }
        let ipv6 = Self.isIPv6(buffer, at: VirtioNetHeader.size)
        if offload.segmentation != .none {
            let allowed = offload.segmentation == .tcpIPv6 ? policy.segmentationIPv6 : policy.segmentationIPv4
            guard allowed, frameLength <= policy.maxSegmentationFrame else { return .cut(offload) }
            framesPassedWhole.wrappingIncrement(ordering: .relaxed)
            return .pass(offload)
        }
        if ipv6 ? policy.checksumIPv6 : policy.checksumIPv4 { return .pass(offload) }
        guard PartialChecksum.complete(&buffer, frameStart: VirtioNetHeader.size, frameEnd: length,
                                       start: offload.checksumStart, offset: offload.checksumOffset) else { return .refuse }
        checksumsFinished.wrappingIncrement(ordering: .relaxed)
        return .pass(nil)
    }

    /// Whether the frame at `at` carries IPv6 (its EtherType, after one 802.1Q tag if there is one).
    private static func isIPv6(_ b: [UInt8], at: Int) -> Bool {
        var type = at + 12
        if b.count >= type + 2, b[type] == 0x81, b[type + 1] == 0x00 { type += 4 }
        return b.count >= type + 2 && b[type] == 0x86 && b[type + 1] == 0xDD
    }
}
