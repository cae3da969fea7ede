import Atomics
import VMBusNetVSP
import VMBusTransport

/// One attached NIC's side of the switch: a bounded queue of frames for it (fixed slots, allocated when the
/// NIC attaches) and the thread that delivers them, so no transmitting worker ever calls
/// ``NetPort/deliver(_:)``. A busy NIC is waited for (its ``NetBackend/receiveSpaceAvailable(_:)``, or a
/// short timeout); frames that find the queue full are dropped and counted.
///
/// A frame with work left (a guest's LSO segment of up to 64 KiB, a partial checksum) keeps its
/// ``FrameOffload`` and is delivered with it, so the receiving NIC finishes it (RSC to its guest, or cut there).
/// Segments larger than a slot borrow one of ``largeBuffers`` buffers while queued (made at the first one):
/// what a guest's large sends can pin per port is that many, not a 64 KiB slot each.
final class PortQueue: @unchecked Sendable {
    let id: Int
    let port: any NetPort
    private let slotSize: Int
    private final class Slot {
        var bytes: [UInt8]
        var length = 0
        var offload: FrameOffload?
        /// The slot's own buffer while it holds a borrowed large one.
        var own: [UInt8]?
        init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }
    }
    private let slots: [Slot]
    /// Large frames queued at once, at most; and how large one may be (an IPv4 or IPv6 packet of 64 KiB, a tag).
    static let largeBuffers = 32
    static let largeFrameSize = 65_535 + 18 + 40
    private struct State {
        var head = 0
        var count = 0
        var spaceSignals = 0
        var stopped = false
        var large: [[UInt8]] = []
        var largeMade = false
    }
    private let state = Condition(State())
    let done = Latch()

    let delivered = ManagedAtomic<Int>(0)
    /// Frames the queue had no room for, that the NIC refused, or that were still queued when it detached.
    let dropped = ManagedAtomic<Int>(0)

    init(id: Int, port: any NetPort, frames: Int, slotSize: Int) {
        self.id = id
        self.port = port
        self.slotSize = slotSize
        slots = (0..<max(1, frames)).map { _ in Slot(size: slotSize) }
    }

    /// Copies `frame` in (on the transmitting worker's thread); false if it was dropped.
    @discardableResult
    func enqueue(_ frame: UnsafeRawBufferPointer, offload: FrameOffload? = nil) -> Bool {
        guard frame.count <= slotSize || (offload != nil && frame.count <= Self.largeFrameSize) else {
            dropped.wrappingIncrement(ordering: .relaxed)
            return false
        }
        // Producers (the workers of several NICs) race each other for the tail, so they copy under the lock
        // (a frame is at most a few KiB); the delivery thread reads only the head slot, never written while
        // it is queued.
        let ok = state.update { s -> Bool in
            guard !s.stopped, s.count < slots.count else { return false }
            let slot = slots[(s.head + s.count) % slots.count]
            if frame.count > slotSize {
                if !s.largeMade {
                    s.large = (0..<Self.largeBuffers).map { _ in [UInt8](repeating: 0, count: Self.largeFrameSize) }
                    s.largeMade = true
                }
                guard let buffer = s.large.popLast() else { return false }
                slot.own = slot.bytes
                slot.bytes = buffer
            }
            slot.bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[0..<frame.count]).copyMemory(from: frame) }
            slot.length = frame.count
            slot.offload = offload
            s.count += 1
            return true
        }
        if !ok { dropped.wrappingIncrement(ordering: .relaxed) }
        return ok
    }

    func spaceAvailable() { state.update { $0.spaceSignals &+= 1 } }

    /// Stops the thread; what is still queued is dropped.
    func stop() { state.update { $0.stopped = true } }

    /// The delivery thread's loop.
    func run() {
        while true {
            // `more`: another frame is queued behind this one, so the NIC may send them in one packet.
            guard let (slot, generation, more) = state.wait(timeoutNanoseconds: 1_000_000_000, until: { s -> (Slot, Int, Bool)? in
                s.stopped || s.count > 0 ? (slots[s.head], s.spaceSignals, s.count > 1) : nil
            }) else { continue }
            if state.withLock({ $0.stopped }) { break }
            // The head slot stays ours until it is popped: producers only write past head + count.
            let result = slot.bytes.withUnsafeBytes { raw -> NetDelivery in
                let frame = UnsafeRawBufferPointer(rebasing: raw[0..<slot.length])
                return slot.offload.map { port.deliver(frame, offload: $0, more: more) } ?? port.deliver(frame, more: more)
            }
            switch result {
            case .busy:
                _ = state.wait(timeoutNanoseconds: 20_000_000) { s in s.spaceSignals != generation || s.stopped ? true : nil }
                continue
            case .accepted: delivered.wrappingIncrement(ordering: .relaxed)
            case .dropped: dropped.wrappingIncrement(ordering: .relaxed)
            }
            state.update { s in
                if let own = slot.own {
                    s.large.append(slot.bytes)
                    slot.bytes = own
                    slot.own = nil
                }
                s.head = (s.head + 1) % slots.count
                s.count -= 1
            }
        }
        let left = state.update { s -> Int in defer { s.count = 0 }; return s.count }
        dropped.wrappingIncrement(by: left, ordering: .relaxed)
        done.open()
    }
}
