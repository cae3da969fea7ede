import Testing
import VMBusDiskBackend
import VMBusSCSITarget
import VMBusStorVSC
import VMBusTestSupport
import VMBusTransport

@Suite(.serialized)
struct StorVSCHotPlugTests {
    @Test func hotAddAndRemoveAreSeenThroughEnumerateBus() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let c = try #require(rig.controller)
        let changes = Condition<[String]>([])
        c.observe { added, removed in
            changes.update { $0 += added.map { "+\($0.lun)" } + removed.map { "-\($0.lun)" } }
        }
        #expect(rig.vsp.attach(SCSIDisk(backend: MemoryBackend(capacity: 2 << 20), serialNumber: "hot", identifier: 9), at: 5))
        #expect(eventually { c.disk(lun: 5) != nil })
        let hot = try rig.disk(5)
        #expect(hot.capacityBytes == 2 << 20)
        try hot.write(at: 0, [1, 2, 3])
        #expect(rig.vsp.detach(lun: 5) != nil)
        #expect(eventually { c.disk(lun: 5) == nil })
        #expect(hot.isRemoved)
        #expect(throws: StorVSCError.lunRemoved(lun: 5)) { _ = try hot.read(at: 0, count: 3) }
        #expect(changes.withLock { $0 } == ["+5", "-5"])
        #expect(try rig.disk(0).read(at: 0, count: 1) == [0], "the other LUN carries on")
    }

    @Test func aLUNRemovedDuringIOFailsItsRequestsCleanly() throws {
        let rig = try StorageRig(luns: [0: 1 << 20, 1: 32 << 20])
        defer { rig.stop() }
        let d = try rig.disk(1)
        let outcomes = Condition<[String]>([])
        let finished = Condition(0)
        let threads = 8
        for t in 0..<threads {
            _ = startThread(name: "io") {
                var p = SplitMix64(seed: UInt64(t + 11))
                while true {
                    do throws(StorVSCError) {
                        try d.write(at: p.below(30 << 20), p.bytes(65536))
                    } catch .lunRemoved(lun: 1) {
                        outcomes.update { $0.append("removed") }
                        break
                    } catch {
                        outcomes.update { $0.append("\(error)") }
                        break
                    }
                }
                finished.update { $0 += 1 }
            }
        }
        sleepNanoseconds(100_000_000)
        #expect(rig.vsp.detach(lun: 1) != nil)
        #expect(finished.wait(timeoutNanoseconds: 30_000_000_000) { $0 == threads ? true : nil } == true)
        #expect(outcomes.withLock { $0 } == [String](repeating: "removed", count: threads))
        #expect(eventually { rig.controller?.disk(lun: 1) == nil })
        #expect(try rig.disk(0).read(at: 0, count: 4) == [0, 0, 0, 0])
    }
}
