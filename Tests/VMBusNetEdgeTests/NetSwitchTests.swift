import Testing
import VMBusNetSwitch
import VMBusNetVSP
import VMBusTestSupport
import VMBusTransport

/// The internal switch: learning, flooding, filtering, aging, back-pressure and detaching, with fake NICs;
/// then two guest NICs over VMBus on one switch.
@Suite(.serialized)
struct NetSwitchTests {
    /// A switch with `count` attached ports (fake NICs).
    static func make(_ count: Int, configure: (inout NetSwitch.Configuration) -> Void = { _ in })
        -> (NetSwitch, [NetSwitchPort], [FakeNetPort]) {
        var c = NetSwitch.Configuration()
        configure(&c)
        let sw = NetSwitch(name: "test", configuration: c)
        let nics = (0..<count).map { FakeNetPort(UInt8($0 + 1)) }
        let ports = nics.map { nic -> NetSwitchPort in
            let p = sw.makePort()
            p.attached(nic)
            return p
        }
        return (sw, ports, nics)
    }

    static func send(_ ports: [NetSwitchPort], _ nics: [FakeNetPort], from i: Int, to destination: [UInt8], tag: UInt8) {
        nics[i].frame(to: destination, tag: tag).withUnsafeBytes { ports[i].transmit($0, from: nics[i]) }
    }

    static let broadcast: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

    @Test func unknownUnicastFloodsThenLearnedAddressesGoToOnePort() {
        let (sw, ports, nics) = Self.make(3)
        defer { sw.stop() }
        Self.send(ports, nics, from: 0, to: nics[1].macAddress, tag: 1)
        #expect(nics[1].take(1).count == 1)
        #expect(nics[2].take(1).count == 1, "unknown unicast is flooded")
        // Port 1 answers: port 0's address was learned from the first frame, so only port 0 gets it.
        Self.send(ports, nics, from: 1, to: nics[0].macAddress, tag: 2)
        #expect(nics[0].take(1).map { $0[14] } == [2])
        // And now port 1's address is known too.
        Self.send(ports, nics, from: 0, to: nics[1].macAddress, tag: 3)
        #expect(nics[1].take(1).map { $0[14] } == [3])
        #expect(nics[2].take(1, seconds: 0.2).isEmpty)
        #expect(nics[0].take(1, seconds: 0.1).isEmpty, "nothing comes back to the sender")
        #expect(sw.framesForwarded.load(ordering: .relaxed) == 2)
        #expect(sw.learnedAddresses == 2)
    }

    @Test func broadcastAndMulticastReachEveryOtherPortButNeverTheSender() {
        let (sw, ports, nics) = Self.make(4)
        defer { sw.stop() }
        Self.send(ports, nics, from: 2, to: Self.broadcast, tag: 1)
        Self.send(ports, nics, from: 2, to: [0x33, 0x33, 0, 0, 0, 1], tag: 2)
        for i in [0, 1, 3] { #expect(nics[i].take(2).map { $0[14] } == [1, 2], "port \(i)") }
        #expect(nics[2].take(1, seconds: 0.2).isEmpty)
        #expect(sw.framesFlooded.load(ordering: .relaxed) == 2)
    }

    @Test func aFrameToAnAddressLearnedOnItsOwnPortIsFiltered() {
        let (sw, ports, nics) = Self.make(2)
        defer { sw.stop() }
        Self.send(ports, nics, from: 0, to: Self.broadcast, tag: 1)
        _ = nics[1].take(1)
        // Port 0 sends to its own (learned) address: a bridge drops it rather than reflect it.
        Self.send(ports, nics, from: 0, to: nics[0].macAddress, tag: 2)
        #expect(nics[0].take(1, seconds: 0.2).isEmpty)
        #expect(nics[1].take(1, seconds: 0.1).isEmpty)
        #expect(sw.framesFiltered.load(ordering: .relaxed) == 1)
    }

    @Test func learnedAddressesAgeOutAndAreFloodedAgain() {
        // Long enough that a loaded machine does not age the entry between learning and the first lookup.
        let (sw, ports, nics) = Self.make(3) { $0.agingNanoseconds = 400_000_000 }
        defer { sw.stop() }
        Self.send(ports, nics, from: 1, to: Self.broadcast, tag: 1)
        _ = nics[0].take(1)
        _ = nics[2].take(1)
        Self.send(ports, nics, from: 0, to: nics[1].macAddress, tag: 2)
        #expect(nics[1].take(1).count == 1)
        #expect(nics[2].take(1, seconds: 0.1).isEmpty, "still learned")
        sleepNanoseconds(600_000_000)
        Self.send(ports, nics, from: 0, to: nics[1].macAddress, tag: 3)
        #expect(nics[1].take(1).count == 1)
        #expect(nics[2].take(1).map { $0[14] } == [3], "aged out: flooded")
    }

    @Test func aBusyNICIsWaitedForAndAFullQueueDropsAndCounts() {
        let (sw, ports, nics) = Self.make(2) { $0.queueFrames = 8 }
        defer { sw.stop() }
        nics[1].answerBusy(1_000_000)
        for tag in 0..<20 { Self.send(ports, nics, from: 0, to: Self.broadcast, tag: UInt8(tag)) }
        #expect(nics[1].take(1, seconds: 0.1).isEmpty)
        // Up to 8 queued (one of them being retried), the rest dropped.
        #expect(sw.droppedFrames >= 12)
        nics[1].answerBusy(0)
        ports[1].receiveSpaceAvailable(nics[1])
        let got = nics[1].take(8)
        #expect(got.count == 8)
        #expect(got.map { $0[14] } == Array(0..<8), "in order, none lost once queued")
    }

    @Test func aDetachedPortGetsNothingAndTheSwitchForgetsIt() {
        let (sw, ports, nics) = Self.make(3)
        defer { sw.stop() }
        Self.send(ports, nics, from: 1, to: Self.broadcast, tag: 1)
        _ = nics[0].take(1)
        _ = nics[2].take(1)
        ports[1].detached(nics[1])
        #expect(sw.attachedPorts == 2)
        Self.send(ports, nics, from: 0, to: nics[1].macAddress, tag: 2)
        #expect(nics[2].take(1).count == 1, "forgotten: flooded to who is left")
        #expect(nics[1].take(1, seconds: 0.2).isEmpty)
        // Frames a detached NIC still sends go nowhere.
        Self.send(ports, nics, from: 1, to: Self.broadcast, tag: 3)
        #expect(nics[0].take(1, seconds: 0.2).isEmpty)
    }

    @Test func aGuestInventingSourceAddressesCannotGrowTheTablePastItsCapacity() {
        let (sw, ports, nics) = Self.make(2) { $0.tableCapacity = 16 }
        defer { sw.stop() }
        for i in 0..<100 {
            var f = nics[0].frame(to: Self.broadcast, tag: 0)
            f[10] = UInt8(i >> 8)
            f[11] = UInt8(i & 0xFF)
            f.withUnsafeBytes { ports[0].transmit($0, from: nics[0]) }
        }
        #expect(sw.learnedAddresses == 16)
    }

    /// A guest's LSO segment crosses the switch whole, with its offload, for the receiving NIC to finish; large
    /// ones borrow one of a port's few large buffers while queued, and more than those are dropped and counted.
    @Test func offloadedFramesCrossWholeAndLargeOnesAreCappedPerPort() throws {
        let (sw, ports, nics) = Self.make(2)
        defer { sw.stop() }
        let gso = FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv4, segmentSize: 1448, headerLength: 54)
        // Port 1's address first, so what follows goes to it alone.
        Self.send(ports, nics, from: 1, to: nics[0].macAddress, tag: 0)
        _ = nics[0].take(1)
        var big = nics[0].frame(to: nics[1].macAddress, tag: 7) + [UInt8](repeating: 0x5A, count: 40_000)
        big[13] = 0x00
        big.withUnsafeBytes { ports[0].transmit($0, offload: gso, from: nics[0]) }
        #expect(eventually { nics[1].offloaded.withLock { $0.count } == 1 })
        let (got, offload) = try #require(nics[1].offloaded.withLock { $0.first })
        #expect(offload == gso)
        #expect(got.count == big.count && got.elementsEqual(big), "the frame as sent")
        nics[1].offloaded.update { $0.removeAll() }
        // While port 1's NIC is busy, only 32 large frames can wait; the 33rd is dropped.
        let before = sw.droppedFrames
        nics[1].answerBusy(1_000_000)
        for _ in 0..<34 { big.withUnsafeBytes { ports[0].transmit($0, offload: gso, from: nics[0]) } }
        #expect(eventually { sw.droppedFrames == before + 2 }, "\(sw.droppedFrames)")
        nics[1].answerBusy(0)
        ports[1].receiveSpaceAvailable(nics[1])
        #expect(eventually(10) { nics[1].offloaded.withLock { $0.count } == 32 })
    }

    @Test func twoGuestNICsOnOneSwitchReachEachOtherOverVMBus() throws {
        let sw = NetSwitch(name: "vmbus")
        defer { sw.stop() }
        let rig = try EdgeRig(backends: [sw.makePort(), sw.makePort()])
        defer { rig.stop() }
        let a = EdgeRig.mac(0), b = EdgeRig.mac(1)
        #expect(eventually { sw.attachedPorts == 2 })
        let hello = EdgeFrames.ethernet(to: EdgeFrames.broadcast, from: a, type: 0x88B5) + [UInt8](repeating: 7, count: 50)
        #expect(rig.send(0, hello) == .sent)
        #expect(rig.first(1) { $0 == hello ? true : nil } == true)
        let answer = EdgeFrames.ethernet(to: a, from: b, type: 0x88B5) + [UInt8](repeating: 9, count: 1400)
        #expect(rig.send(1, answer) == .sent)
        #expect(rig.first(0) { $0 == answer ? true : nil } == true)
        #expect(rig.take(0).isEmpty && rig.take(1).isEmpty, "nothing reflected")
        #expect(sw.framesForwarded.load(ordering: .relaxed) == 1)
    }
}
