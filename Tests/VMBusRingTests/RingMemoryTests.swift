import Testing
import VMBusMemory
@testable import VMBusRing

@Suite struct RingMemoryTests {
    @Test func contiguousMemoryRejectsSizesThatAreNotAControlPagePlusWholeDataPages() throws {
        let guest = try GuestMemory(pages: 4)
        for size in [0, 4096, 4096 + 8, 3 * 4096 + 100] {
            #expect(throws: RingError.self) { try RingMemory(contiguous: guest.base, totalSize: size) }
        }
        #expect(throws: RingError.self) { try RingMemory(contiguous: guest.base + 4, totalSize: 8192) }
        let ok = try RingMemory(contiguous: guest.base, totalSize: 4 * 4096)
        #expect(ok.dataSize == 3 * 4096)
        #expect(ok.isContiguous)
    }

    @Test func pagedMemoryNeedsAlignedControlAndDataPages() throws {
        let guest = try GuestMemory(pages: 4)
        #expect(throws: RingError.self) { try RingMemory(pages: [guest.base]) }
        #expect(throws: RingError.self) { try RingMemory(pages: [guest.base, guest.base + 4100]) }
    }

    @Test func pagedMemoryTakesTheFastPathOnlyWhenDataPagesAreAdjacentAndInOrder() throws {
        let guest = try GuestMemory(pages: 8)
        let page = { (i: Int) in guest.base + i * 4096 }
        #expect(try RingMemory(pages: [page(7), page(2), page(3), page(4)]).isContiguous)
        #expect(try !RingMemory(pages: [page(0), page(3), page(2), page(4)]).isContiguous)
        #expect(try !RingMemory(pages: [page(0), page(1), page(3)]).isContiguous)
    }

    @Test func guestMemoryRingMemoryMapsPfnsAndRejectsPagesOutsideGuestMemory() throws {
        let guest = try GuestMemory(pages: 16)
        let scattered = try PageAllocator(memory: guest).allocate(pages: 4, scattered: true)
        let ring = try guest.ringMemory(pfns: scattered[...])
        #expect(ring.dataSize == 3 * 4096)
        #expect(!ring.isContiguous)
        #expect(ring.controlPage == guest.base + Int(scattered[0]) * 4096)
        #expect(try guest.ringMemory(pfns: [1, 2, 3][...]).isContiguous)
        #expect(throws: RingError.self) { try guest.ringMemory(pfns: [1, 99][...]) }
        #expect(throws: RingError.self) { try guest.ringMemory(pfns: [1][...]) }
    }

    /// Every copy, at every 8-aligned offset and several lengths, wraps and crosses pages correctly.
    @Test(arguments: [false, true])
    func copiesWrapAtTheEndAndCrossPageBoundaries(scattered: Bool) throws {
        let ring = try TestRing(dataPages: 3, scattered: scattered)
        let m = ring.memory
        var rng = SplitMix64(seed: 7)
        for offset in stride(from: 0, to: m.dataSize, by: 8 * 61) {
            for count in [0, 1, 7, 8, 4095, 4096, 4097, 8000, m.dataSize] {
                let data = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                data.withUnsafeBytes { m.copyIn(to: offset, from: $0.baseAddress!, count: count) }
                var back = [UInt8](repeating: 0, count: count)
                back.withUnsafeMutableBytes { m.copyOut(from: offset, into: $0.baseAddress!, count: count) }
                #expect(back == data, "offset \(offset) count \(count)")
                // The logical layout is the same as in a flat array.
                let flat = ring.dataBytes()
                for i in 0..<min(count, 16) { #expect(flat[(offset + i) % m.dataSize] == data[i]) }
            }
        }
    }
}
