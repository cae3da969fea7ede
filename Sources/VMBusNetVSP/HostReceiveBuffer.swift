import VMBusMemory
import VMBusSync

/// The guest's receive buffer as the host carves it: one section of equal slots (Linux accepts exactly one,
/// at offset 0). A slot carries one RNDIS message to the guest; it is the host's again when the guest
/// completes the transfer-page packet that named it. The transaction id of that packet is slot + 1, so a
/// completion names its slot and nothing else has to be remembered; a packet naming several slots (the
/// fragments of a coalesced frame) is named by its first, which links the others.
final class HostReceiveBuffer: @unchecked Sendable {
    let id: UInt16
    let gpadl: UInt32
    let pages: GuestPageBuffer
    let slotSize: Int
    let slotCount: Int

    private struct Slots {
        var free: [Int32]
        var outstanding: [Bool]
        /// The next slot of the same packet, -1 for the last (or a packet of one).
        var next: [Int32]
        /// The slot is the first of its packet: only its transaction id completes the packet (a guest naming
        /// a later fragment's id names nothing).
        var first: [Bool]
    }
    private let slots: Lock<Slots>

    init(id: UInt16, gpadl: UInt32, pages: GuestPageBuffer, slotSize: Int) {
        self.id = id
        self.gpadl = gpadl
        self.pages = pages
        self.slotSize = slotSize
        slotCount = pages.size / slotSize
        slots = Lock(Slots(free: (0..<Int32(slotCount)).reversed(), outstanding: [Bool](repeating: false, count: slotCount),
                           next: [Int32](repeating: -1, count: slotCount), first: [Bool](repeating: false, count: slotCount)))
    }

    /// A free slot, now outstanding; nil when the guest holds them all.
    func take() -> Int? {
        slots.withLock { s -> Int? in
            guard let i = s.free.popLast() else { return nil }
            s.outstanding[Int(i)] = true
            s.next[Int(i)] = -1
            s.first[Int(i)] = true
            return Int(i)
        }
    }

    /// `count` free slots for one packet, now outstanding and linked, written to `into` (at least `count`
    /// long) in order; false (none taken) if fewer are free.
    func take(_ count: Int, into chain: inout [Int32]) -> Bool {
        guard count >= 1, chain.count >= count else { return false }
        return slots.withLock { s -> Bool in
            guard s.free.count >= count else { return false }
            for k in 0..<count {
                let i = s.free.removeLast()
                chain[k] = i
                s.outstanding[Int(i)] = true
                s.next[Int(i)] = -1
                s.first[Int(i)] = k == 0
                if k > 0 { s.next[Int(chain[k - 1])] = i }
            }
            return true
        }
    }

    /// Makes `slot` (taken alone) the next of `previous` in one packet, whose completion then frees both.
    /// False if either is no longer outstanding or `previous` already has a next (a guest that completed an id
    /// it was not sent yet): the caller sends what it holds and starts a new packet.
    func link(_ slot: Int, after previous: Int) -> Bool {
        guard slot >= 0, slot < slotCount, previous >= 0, previous < slotCount, slot != previous else { return false }
        return slots.withLock { s -> Bool in
            guard s.outstanding[slot], s.outstanding[previous], s.next[previous] == -1, s.first[slot] else { return false }
            s.next[previous] = Int32(slot)
            s.first[slot] = false
            return true
        }
    }

    /// Gives a slot back: the guest's completion (by transaction id) or a send that failed. False for an id
    /// that names no outstanding slot (a repeated or invented completion).
    func release(transactionID: UInt64) -> Bool {
        guard transactionID >= 1, transactionID <= UInt64(slotCount) else { return false }
        let i = Int(transactionID - 1)
        return slots.withLock { s -> Bool in
            guard s.outstanding[i], s.first[i] else { return false }
            var slot = Int32(i)
            while slot >= 0, s.outstanding[Int(slot)] {
                s.outstanding[Int(slot)] = false
                s.free.append(slot)
                slot = s.next[Int(slot)]
            }
            return true
        }
    }

    var freeSlots: Int { slots.withLock { $0.free.count } }

    static func transactionID(slot: Int) -> UInt64 { UInt64(slot) + 1 }
}
