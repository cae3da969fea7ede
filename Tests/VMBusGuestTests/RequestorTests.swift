import Testing
import VMBusGuest
import VMBusTransport

/// Transaction ids for requests (PROTOCOL.md §6.2, §13): slot + 1 in the low 32 bits, the slot's generation
/// above, never 0, every completion checked against the outstanding ids (slot and generation).
struct RequestorTests {
    @Test func idsRunFromOneToCapacityThenAllocationFails() {
        let requestor = Requestor(capacity: 8)
        let ids = (0..<8).map { requestor.allocate(context: 100 + UInt64($0)) }
        #expect(ids == (1...8).map { UInt64($0) })
        #expect(requestor.allocate(context: 0) == nil)
        #expect(requestor.outstanding == 8)
        #expect(requestor.capacity == 8)
    }

    @Test func completingReturnsTheContextAndFreesTheSlotForReuse() {
        let requestor = Requestor(capacity: 2)
        let a = requestor.allocate(context: 0xAAAA)
        let b = requestor.allocate(context: 0xBBBB)
        #expect(requestor.allocate(context: 0) == nil)
        #expect(requestor.complete(2) == 0xBBBB)
        #expect(requestor.outstanding == 1)
        // The freed slot is handed out again, in its next generation, with the new context.
        let c = requestor.allocate(context: 0xCCCC)
        let slot2Generation1: UInt64 = 1 << 32 | 2  // outside #expect: see aCapacityOfOneWorks
        #expect(c == slot2Generation1)
        #expect(requestor.complete(2) == nil)
        #expect(requestor.complete(slot2Generation1) == 0xCCCC)
        #expect(requestor.complete(1) == 0xAAAA)
        #expect(a == 1)
        #expect(b == 2)
        #expect(requestor.outstanding == 0)
        #expect(requestor.rejectedCompletions == 1)
    }

    @Test func contextsMayBeAnyValueIncludingZeroAndTheMaximum() {
        let requestor = Requestor(capacity: 3)
        for context: UInt64 in [0, .max, 1 << 63] {
            let id = requestor.allocate(context: context)!
            #expect(requestor.complete(id) == context)
        }
    }

    @Test(arguments: [UInt64(0), 5, 6, 1000, UInt64(Int.max), .max])
    func unknownIDsAreRejectedAndCounted(id: UInt64) {
        let requestor = Requestor(capacity: 5)
        for n in 0..<4 { _ = requestor.allocate(context: UInt64(n)) }
        // Ids 1...4 are outstanding; 5 is in range but free.
        #expect(requestor.complete(id) == nil)
        #expect(requestor.rejectedCompletions == 1)
        #expect(requestor.outstanding == 4)
    }

    @Test func aRepeatedCompletionIsRejectedAndCounted() {
        let requestor = Requestor(capacity: 4)
        let id = requestor.allocate(context: 9)!
        #expect(requestor.complete(id) == 9)
        #expect(requestor.complete(id) == nil)
        #expect(requestor.complete(id) == nil)
        #expect(requestor.rejectedCompletions == 2)
        #expect(requestor.outstanding == 0)
    }

    @Test func cancelAllReturnsEveryOutstandingContextAndFreesTheSlots() {
        let requestor = Requestor(capacity: 6)
        let ids = (0..<5).map { requestor.allocate(context: 50 + UInt64($0))! }
        _ = requestor.complete(ids[1])
        #expect(Set(requestor.cancelAll()) == [50, 52, 53, 54])
        #expect(requestor.outstanding == 0)
        #expect(requestor.cancelAll().isEmpty)
        // Late completions of cancelled requests are rejected.
        for id in ids { #expect(requestor.complete(id) == nil) }
        #expect(requestor.rejectedCompletions == 5)
        // Every slot can be used again, and the old ids still do not complete the new requests.
        let next = (0..<6).compactMap { _ in requestor.allocate(context: 1) }
        #expect(next.count == 6)
        #expect(Set(next).isDisjoint(with: ids))
        for id in ids { #expect(requestor.complete(id) == nil) }
        #expect(requestor.outstanding == 6)
    }

    @Test func cancellingGivesTheIDBackWithoutCountingAndALateCompletionIsRejected() {
        let requestor = Requestor(capacity: 2)
        let id = requestor.allocate(context: 77)!
        #expect(requestor.cancel(id) == 77)
        #expect(requestor.outstanding == 0)
        #expect(requestor.cancel(id) == nil)
        #expect(requestor.cancel(0) == nil)
        #expect(requestor.cancel(3) == nil)
        #expect(requestor.rejectedCompletions == 0)
        #expect(requestor.complete(id) == nil)
        #expect(requestor.rejectedCompletions == 1)
    }

    @Test func aCapacityOfOneWorks() {
        let requestor = Requestor(capacity: 1)
        #expect(requestor.allocate(context: 3) == 1)
        #expect(requestor.allocate(context: 4) == nil)
        #expect(requestor.complete(1) == 3)
        // Computed outside #expect: Swift 6.3's expansion of `optional == <operator expression>` reads 9 bytes
        // from an 8-byte temporary (an AddressSanitizer stack-buffer-overflow in `_convertToAnyHashable`,
        // inside the toolchain and Swift Testing, not in this code).
        let secondGeneration: UInt64 = 1 << 32 | 1
        #expect(requestor.allocate(context: 4) == secondGeneration)
    }

    @Test func aLateCompletionAfterCancelIsRejectedEvenOnceTheSlotServesANewRequest() {
        let requestor = Requestor(capacity: 1)
        let old = requestor.allocate(context: 10)!
        #expect(requestor.cancel(old) == 10)
        let new = requestor.allocate(context: 20)!
        #expect(new & 0xFFFF_FFFF == old & 0xFFFF_FFFF)
        #expect(new != old && new != 0)
        // The host answers the cancelled request late: not taken for the new one's answer.
        #expect(requestor.complete(old) == nil)
        #expect(requestor.cancel(old) == nil)
        #expect(requestor.rejectedCompletions == 1)
        #expect(requestor.outstanding == 1)
        #expect(requestor.complete(new) == 20)
        // Right slot, any other generation (older, newer, or the high bits alone): rejected.
        let third = requestor.allocate(context: 30)!
        for id in [third &+ (1 << 32), third & 0xFFFF_FFFF, third | 0xFFFF_FFFF_0000_0000, UInt64(1) << 32] where id != third {
            #expect(requestor.complete(id) == nil)
        }
        #expect(requestor.complete(third) == 30)
    }

    @Test func generationsWrapWithoutEverProducingIDZero() {
        let requestor = Requestor(capacity: 1)
        for n in 0..<3000 {
            let id = requestor.allocate(context: UInt64(n))!
            #expect(id != 0)
            #expect(id & 0xFFFF_FFFF == 1)
            #expect(requestor.complete(id) == UInt64(n))
        }
    }

    @Test func anOutOfRangeCapacityIsClampedNotATrap() {
        #expect(Requestor(capacity: 0).capacity == 1)
        #expect(Requestor(capacity: -5).capacity == 1)
        #expect(Requestor(capacity: Int.max).capacity == Requestor.maximumCapacity)
    }

    @Test func concurrentUsersNeverShareAnID() throws {
        let requestor = Requestor(capacity: 64)
        let inUse = Condition<Set<UInt64>>([])
        let duplicates = Condition(0)
        let done = Condition(0)
        let threads = 4
        for t in 0..<threads {
            startThread(name: "requestor-\(t)") {
                for i in 0..<5_000 {
                    let context = UInt64(t) << 32 | UInt64(i)
                    guard let id = requestor.allocate(context: context) else { continue }
                    if !inUse.withLock({ $0.insert(id).inserted }) { duplicates.withLock { $0 += 1 } }
                    inUse.withLock { _ = $0.remove(id) }
                    if requestor.complete(id) != context { duplicates.withLock { $0 += 1 } }
                }
                done.update { $0 += 1 }
            }
        }
        #expect(done.wait(timeoutNanoseconds: 60_000_000_000) { $0 == threads ? true : nil } == true)
        #expect(duplicates.withLock { $0 } == 0)
        #expect(requestor.outstanding == 0)
        #expect(requestor.rejectedCompletions == 0)
    }
}
