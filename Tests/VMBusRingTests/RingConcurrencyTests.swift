import CVMBusShims
import Testing
import VMBusProtocol
@testable import VMBusRing
import VMBusTestSupport

/// One producer thread and one consumer thread on one ring, waiting for each other only through the signals
/// the ring asks for: a lost "data available" or "space available" doorbell makes a wait time out.
@Suite struct RingConcurrencyTests {
    static let seed: UInt64 = 0xC0FFEE

    /// Payload of packet i: 0 ... 256 bytes (not always a multiple of 8), a slice of the pattern.
    @inline(__always)
    static func shape(_ i: Int) -> (count: Int, start: Int, type: VMBusPacketType) {
        let r = streamRandom(seed, UInt64(i), 0)
        return (Int(r % 257), Int((r >> 16) % 8192), (r >> 40) & 1 == 0 ? .dataInband : .completion)
    }

    /// 8 data pages let batches run long (a million packets); 1 page keeps the writer blocked most of the time,
    /// which makes every packet a signalling round trip, so fewer packets keep the test short on 2 vCPUs.
    @Test(arguments: [(dataPages: 8, packets: 1_000_000), (dataPages: 1, packets: 200_000)])
    func randomPacketsCrossThreadsIntactWithoutLosingADoorbell(dataPages: Int, packets fullCount: Int) throws {
        let packets = Sanitizer.scaled(fullCount)
        let ring = try TestRing(dataPages: dataPages)
        let pattern = Pattern(seed: Self.seed)
        let dataBell = Doorbell(), spaceBell = Doorbell()
        let issues = ThreadIssues()
        let counters = Counters()
        let writer = ring.writer, reader = ring.reader

        let producer: @Sendable () -> Void = {
            var i = 0
            do {
                while i < packets {
                    var batch = try writer.beginWrite()
                    var needed = 0
                    while i < packets && batch.packetCount < 16 {
                        let s = Self.shape(i)
                        do throws(RingError) {
                            try writer.append(&batch, type: s.type, flags: 0, transactionID: UInt64(i),
                                              payload: pattern.slice(s.start, s.count))
                        } catch {
                            guard case .full(let n, _) = error else { throw error }
                            needed = n
                            break
                        }
                        i += 1
                    }
                    if writer.commit(batch) { dataBell.ring(); counters.dataSignals.add(1, ordering: .relaxed) }
                    if needed > 0 && batch.isEmpty {
                        // Blocked: ask for a space-available signal, re-check, then wait for it.
                        let seen = spaceBell.current
                        if try writer.waitSpaceNeeded(bytes: needed) {
                            counters.writerWaits.add(1, ordering: .relaxed)
                            if !spaceBell.wait(after: seen) {
                                issues.record("lost space-available signal at packet \(i), free \((try? writer.freeBytes()) ?? -1)")
                                return
                            }
                        }
                        writer.clearPendingSendSize()
                    }
                }
            } catch {
                issues.record("producer: \(error) at packet \(i)")
            }
        }

        let consumer: @Sendable () -> Void = {
            let buffer = PacketBuffer(capacity: 512)
            var i = 0
            do {
                while i < packets {
                    reader.maskInterrupts()
                    var batch = try reader.beginRead()
                    while let p = try reader.next(&batch, into: buffer) {
                        let s = Self.shape(i)
                        let d = p.descriptor
                        let ok = d.transactionID == UInt64(i) && d.type == s.type && d.offset8 == 2
                            && p.payloadLength == (s.count + 7) & ~7
                            && buffer.withUnsafeBytes(of: p) { pattern.matches($0.baseAddress! + 16, start: s.start, count: s.count) }
                        if !ok {
                            issues.record("packet \(i) differs: \(d)")
                            return
                        }
                        i += 1
                    }
                    if reader.commit(batch) { spaceBell.ring(); counters.spaceSignals.add(1, ordering: .relaxed) }
                    if batch.isEmpty {
                        // Nothing to do: unmask, re-check, and sleep until the writer rings.
                        let seen = dataBell.current
                        if reader.unmaskInterrupts() { continue }
                        counters.readerWaits.add(1, ordering: .relaxed)
                        if !dataBell.wait(after: seen) {
                            issues.record("lost data-available signal at packet \(i)")
                            return
                        }
                    }
                }
            } catch {
                issues.record("consumer: \(error) at packet \(i)")
            }
        }

        let start = vmbus_shim_monotonic_ns()
        runOnThreads([producer, consumer])
        let seconds = Double(vmbus_shim_monotonic_ns() - start) / 1e9
        #expect(issues.all == [])
        #expect(try ring.reader.isEmpty())
        #expect(try ring.writer.freeBytes() == ring.dataSize)
        print("\(dataPages)-page ring: \(packets) packets across threads in \(seconds) s; writer waits \(counters.writerWaits.load(ordering: .relaxed)), "
              + "space signals \(counters.spaceSignals.load(ordering: .relaxed)), reader waits "
              + "\(counters.readerWaits.load(ordering: .relaxed)), data signals \(counters.dataSignals.load(ordering: .relaxed))")
    }
}

import Synchronization
import VMBusSync

final class Counters: Sendable {
    let writerWaits = Atomic<Int>(0)
    let readerWaits = Atomic<Int>(0)
    let dataSignals = Atomic<Int>(0)
    let spaceSignals = Atomic<Int>(0)
}
