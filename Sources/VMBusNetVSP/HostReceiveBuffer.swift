import VMBusMemory
import VMBusSync

/// The guest's receive buffer as the host carves it: one section of equal slots (Linux accepts exactly one,
/// at offset 0). A slot carries one RNDIS message to the guest; it is the host's again when the guest
/// completes the transfer-page packet that named it. The transaction id of that packet is slot + 1, so a
/// completion names its slot and nothing else has to be remembered.
final class HostReceiveBuffer: @unchecked Sendable {
    let id: UInt16
    let gpadl: UInt32
    let pages: GuestPageBuffer
    let slotSize: Int
    let slotCount: Int

    private struct Slots {
        var free: [Int32]
        var outstanding: [Bool]
    }
    private let slots: Lock<Slots>

    init(id: UInt16, gpadl: UInt32, pages: GuestPageBuffer, slotSize: Int) {
        self.id = id
        self.gpadl = gpadl
        self.pages = pages
        self.slotSize = slotSize
        slotCount = pages.size / slotSize
        slots = Lock(Slots(free: (0..<Int32(slotCount)).reversed(), outstanding: [Bool](repeating: false, count: slotCount)))
    }

    /// A free slot, now outstanding; nil when the guest holds them all.
    func take() -> Int? {
        slots.withLock { s -> Int? in
            guard let i = s.free.popLast() else { return nil }
            s.outstanding[Int(i)] = true
            return Int(i)
        }
    }

    /// Gives a slot back: the guest's completion (by transaction id) or a send that failed. False for an id
    /// that names no outstanding slot (a repeated or invented completion).
    func release(transactionID: UInt64) -> Bool {
        guard transactionID >= 1, transactionID <= UInt64(slotCount) else { return false }
        let i = Int(transactionID - 1)
        return slots.withLock { s -> Bool in
            guard s.outstanding[i] else { return false }
            s.outstanding[i] = false
            s.free.append(Int32(i))
            return true
        }
    }

    var freeSlots: Int { slots.withLock { $0.free.count } }

    static func transactionID(slot: Int) -> UInt64 { UInt64(slot) + 1 }
}
