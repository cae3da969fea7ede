import Testing
import VMBusProtocol
@testable import VMBusRing

/// Random traffic through one ring, checked packet by packet against what was sent.
@Suite struct RingRoundTripPropertyTests {
    struct Sent: Equatable {
        var type: VMBusPacketType
        var flags: UInt16
        var transactionID: UInt64
        var headerCount: Int
        var headerStart: Int
        var payloadCount: Int
        var payloadStart: Int
    }

    struct Outcome: Equatable {
        var delivered = 0
        var wraps = 0
        var reverted = 0
        var checksum: UInt64 = 0
        var finalData: [UInt8] = []
        var finalIndices: [UInt32] = []
    }

    static let pattern = Pattern(seed: 0x5EED, words: 2048)

    func randomPacket(_ rng: inout SplitMix64, maxPayload: Int) -> Sent {
        let headerCount = rng.next() % 5 == 0 ? 8 * Int(1 + rng.next() % 3) : 0
        // Half the payloads are multiples of 8, half are not.
        var payloadCount = Int(rng.next() % UInt64(maxPayload + 1))
        if rng.next() & 1 == 0 { payloadCount &= ~7 }
        let types: [VMBusPacketType] = [.dataInband, .completion, .dataUsingXferPages]
        return Sent(
            type: headerCount > 0 ? .dataUsingGPADirect : types[Int(rng.next() % 3)],
            flags: UInt16(rng.next() & 1), transactionID: rng.next(),
            headerCount: headerCount, headerStart: Int(rng.next() % 8192),
            payloadCount: payloadCount, payloadStart: Int(rng.next() % 8192))
    }

    /// Appends `p`; returns false if the ring is full (other errors are thrown).
    func appendUnlessFull(_ ring: OutgoingRing, _ batch: inout OutgoingBatch, _ p: Sent) throws(RingError) -> Bool {
        do {
            try ring.append(&batch, type: p.type, flags: p.flags, transactionID: p.transactionID,
                            header: Self.pattern.slice(p.headerStart, p.headerCount),
                            payload: Self.pattern.slice(p.payloadStart, p.payloadCount))
            return true
        } catch {
            if case .full = error { return false }
            throw error
        }
    }

    /// Drives `ring` with `packets` random packets in random batches, some reverted, and checks every delivery.
    func run(_ ring: TestRing, packets: Int, maxPayload: Int, seed: UInt64) throws -> Outcome {
        var rng = SplitMix64(seed: seed)
        var queue: [Sent] = []   // committed, not yet read
        var head = 0
        var outcome = Outcome()
        var pendingPacket: Sent? = nil   // generated but not yet written (the ring was full)
        var sentCount = 0
        let buffer = PacketBuffer(capacity: 16 + 24 + maxPayload + 8)
        let pattern = Self.pattern
        var lastWrite = 0

        var rounds = 0
        while outcome.delivered < packets {
            rounds += 1
            guard rounds < packets * 20 else {
                Issue.record("no progress: \(outcome.delivered) of \(packets) delivered")
                break
            }
            // Writer: a batch of up to 8 packets, committed or (1 in 6) reverted.
            if sentCount < packets {
                var batch = try ring.writer.beginWrite()
                var inBatch: [Sent] = []
                for _ in 0..<Int(1 + rng.next() % 8) where sentCount + inBatch.count < packets {
                    let p = pendingPacket ?? randomPacket(&rng, maxPayload: maxPayload)
                    let fits = try appendUnlessFull(ring.writer, &batch, p)
                    pendingPacket = fits ? nil : p
                    guard fits else { break }
                    inBatch.append(p)
                }
                if !inBatch.isEmpty && rng.next() % 6 == 0 {
                    outcome.reverted += inBatch.count
                    pendingPacket = inBatch[0]   // write the same packets again later
                    // Regenerating the rest is fine: they were never visible.
                } else {
                    _ = ring.writer.commit(batch)
                    queue += inBatch
                    sentCount += inBatch.count
                    if batch.nextOffset < lastWrite || (batch.nextOffset == lastWrite && !inBatch.isEmpty) {
                        outcome.wraps += 1
                    }
                    if !inBatch.isEmpty { lastWrite = batch.nextOffset }
                }
            }
            // Reader: up to 10 packets, committed or (1 in 8) dropped and read again later.
            var batch = try ring.reader.beginRead()
            var got: [ReceivedPacket] = []
            for _ in 0..<Int(1 + rng.next() % 10) {
                guard let p = try ring.reader.next(&batch, into: buffer) else { break }
                let want = queue[head + got.count]
                #expect(p.descriptor.type == want.type)
                #expect(p.descriptor.flags == want.flags)
                #expect(p.descriptor.transactionID == want.transactionID)
                #expect(p.payloadOffset == 16 + want.headerCount)
                #expect(p.length == (16 + want.headerCount + want.payloadCount + 7) & ~7)
                let ok = buffer.withUnsafeBytes(of: p) { raw in
                    pattern.matches(raw.baseAddress! + 16, start: want.headerStart, count: want.headerCount)
                        && pattern.matches(raw.baseAddress! + p.payloadOffset, start: want.payloadStart,
                                           count: want.payloadCount)
                        && raw[(p.payloadOffset + want.payloadCount)..<p.length].allSatisfy { $0 == 0 }
                }
                #expect(ok, "packet \(head + got.count) differs")
                let d = p.descriptor
                for v in [UInt64(d.type.rawValue), UInt64(d.len8), UInt64(d.offset8), d.transactionID] {
                    outcome.checksum = (outcome.checksum ^ v) &* 0x100_0000_01B3
                }
                got.append(p)
            }
            if !got.isEmpty && rng.next() % 8 == 0 {
                continue  // dropped: the same packets come again
            }
            _ = ring.reader.commit(batch)
            head += got.count
            outcome.delivered += got.count
        }
        #expect(try ring.reader.isEmpty())
        outcome.finalData = ring.dataBytes()
        outcome.finalIndices = [ring.controlWord(0), ring.controlWord(4)]
        return outcome
    }

    @Test(arguments: [1, 2, 3])
    func randomPacketsSurviveManyWrapsIntact(dataPages: Int) throws {
        let ring = try TestRing(dataPages: dataPages)
        let outcome = try run(ring, packets: 20_000, maxPayload: 1500, seed: UInt64(dataPages))
        #expect(outcome.delivered == 20_000)
        #expect(outcome.wraps > 500)
        #expect(outcome.reverted > 100)
    }

    @Test func tinyPacketsFillEveryOffsetOfASmallRing() throws {
        let ring = try TestRing(dataPages: 1)
        let outcome = try run(ring, packets: 20_000, maxPayload: 24, seed: 99)
        #expect(outcome.wraps > 100)
    }

    /// The same traffic over contiguous, paged-but-adjacent and deliberately scattered pages.
    @Test func discontiguousPagesGiveIdenticalResults() throws {
        let flat = try run(try TestRing(dataPages: 5), packets: 10_000, maxPayload: 5000, seed: 7)
        let adjacent = try TestRing(dataPages: 5, scattered: false)
        #expect(adjacent.memory.isContiguous)
        let scattered = try TestRing(dataPages: 5, scattered: true)
        #expect(!scattered.memory.isContiguous)
        #expect(try run(adjacent, packets: 10_000, maxPayload: 5000, seed: 7) == flat)
        #expect(try run(scattered, packets: 10_000, maxPayload: 5000, seed: 7) == flat)
        #expect(flat.wraps > 100)
    }
}
