import Atomics
import CVMBusShims
import VMBusNetVSP
import VMBusSync
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// A thread that reads a TAP's frames and hands each, complete, to a handler: a frame whose checksum the
/// kernel left partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) is finished in software; a GSO super-frame (never asked
/// for, see ``TAPDevice``) is dropped and counted.
///
/// The thread sleeps in `poll` on the TAP and a wake pipe, so ``stop()`` ends it at once; the handler may wait
/// (for a guest's receive space, say) but must return when the reader's ``isStopping`` turns true.
public final class TAPFrameReader: @unchecked Sendable {
    public let device: TAPDevice
    /// The largest frame taken (larger ones are cut by the kernel's read and dropped here).
    public let maxFrameSize: Int
    private let handler: @Sendable (UnsafeRawBufferPointer, TAPFrameReader) -> Void
    /// An eventfd: ``stop()`` adds to it, the thread's poll sees it readable.
    private let wake: Int32
    private let stopping = ManagedAtomic<Bool>(false)
    private let done = Latch()
    private var started = false

    public let framesRead = ManagedAtomic<Int>(0)
    public let checksumsFinished = ManagedAtomic<Int>(0)
    /// GSO frames, truncated frames and frames whose partial checksum lay outside them.
    public let framesRefused = ManagedAtomic<Int>(0)

    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    public init(device: TAPDevice, maxFrameSize: Int = 65_535,
                handler: @escaping @Sendable (UnsafeRawBufferPointer, TAPFrameReader) -> Void) throws(TAPError) {
        self.device = device
        self.maxFrameSize = maxFrameSize
        self.handler = handler
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
            for _ in 0..<64 where !isStopping {
                guard let n = device.read(into: &buffer) else { return }
                guard n > 0 else { break }
                framesRead.wrappingIncrement(ordering: .relaxed)
                guard n > VirtioNetHeader.size + 13, n < buffer.count else {
                    framesRefused.wrappingIncrement(ordering: .relaxed)
                    continue
                }
                guard prepare(&buffer, length: n) else {
                    framesRefused.wrappingIncrement(ordering: .relaxed)
                    continue
                }
                buffer.withUnsafeBytes { handler(UnsafeRawBufferPointer(rebasing: $0[VirtioNetHeader.size..<n]), self) }
            }
        }
    }

    /// Makes the frame in `buffer[header ..< length]` complete; false if it cannot be.
    private func prepare(_ buffer: inout [UInt8], length: Int) -> Bool {
        guard let header = VirtioNetHeader(buffer), header.gsoType == VirtioNetHeader.gsoNone else { return false }
        guard header.flags & VirtioNetHeader.needsChecksum != 0 else { return true }
        guard PartialChecksum.complete(&buffer, frameStart: VirtioNetHeader.size, frameEnd: length,
                                       start: Int(header.checksumStart), offset: Int(header.checksumOffset)) else { return false }
        checksumsFinished.wrappingIncrement(ordering: .relaxed)
        return true
    }
}
