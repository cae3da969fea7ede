import Testing
import VMBusDiskBackend
import VMBusGuest
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

/// StorVSC against a host that misbehaves on purpose: each case ends in a typed error, and the disk keeps
/// working once the host behaves again.
@Suite(.serialized)
struct StorVSCHostileHostTests {
    struct Rig {
        let system: InProcessSystem
        let host: HostileStorageHost
        let controller: StorVSCController
        let disk: StorVSCDisk

        init() throws {
            system = try InProcessSystem(memoryPages: 8192)
            let vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(4))
            vsp.luns.attach(SCSIDisk(backend: MemoryBackend(capacity: 4 << 20), serialNumber: "h", identifier: 1), at: 0)
            host = HostileStorageHost(vsp)
            system.host.addDevice(host)
            try system.start()
            var configuration = StorVSCController.Configuration()
            configuration.requestTimeoutNanoseconds = 300_000_000
            configuration.subchannels = 0
            configuration.queueDepthPerChannel = 4
            let device = try #require(system.guest.devices.first)
            controller = try StorVSCController(device: device, configuration: configuration)
            try controller.start()
            disk = try #require(controller.disk(lun: 0))
        }

        func expectHealthy() throws {
            host.mode.withLock { $0 = .honest }
            try disk.write(at: 512, [1, 2, 3])
            #expect(try disk.read(at: 512, count: 3) == [1, 2, 3])
        }

        func stop() {
            controller.stop()
            system.stop()
        }
    }

    static func isTimeout(_ e: any Error) -> Bool {
        if case .timedOut = e as? StorVSCError { return true }
        return false
    }

    static func isMalformed(_ e: any Error) -> Bool {
        if case .malformedCompletion = e as? StorVSCError { return true }
        return false
    }

    @Test func aSilentHostTimesOutAndTheSlotWaitsForTheLateAnswer() throws {
        let rig = try Rig()
        defer { rig.stop() }
        rig.host.mode.withLock { $0 = .silent }
        #expect { _ = try rig.disk.read(at: 0, count: 512) } throws: { Self.isTimeout($0) }
        #expect(rig.controller.abandonedRequests == 1, "the pages stay the host's until it answers")
        rig.host.answerHeld()
        #expect(eventually { rig.controller.abandonedRequests == 0 })
        try rig.expectHealthy()
    }

    @Test func completionsForUnknownIDsAreDroppedAndCounted() throws {
        let rig = try Rig()
        defer { rig.stop() }
        rig.host.mode.withLock { $0 = .unknownID }
        #expect { _ = try rig.disk.read(at: 0, count: 512) } throws: { Self.isTimeout($0) }
        let primary = try #require(rig.system.guest.devices.first?.openChannels.first)
        #expect(primary.rejectedCompletions >= 1)
        try rig.expectHealthy()
    }

    @Test(arguments: [
        HostileStorageHost.Mode.short(40), .short(12), .senseLength(21), .senseLength(255), .overTransfer, .wrongOperation,
    ])
    func malformedCompletionsAreTypedErrors(_ mode: HostileStorageHost.Mode) throws {
        let rig = try Rig()
        defer { rig.stop() }
        rig.host.mode.withLock { $0 = mode }
        #expect { _ = try rig.disk.read(at: 0, count: 512) } throws: { Self.isMalformed($0) }
        #expect { try rig.disk.write(at: 0, [UInt8](repeating: 1, count: 1024)) } throws: { Self.isMalformed($0) }
        #expect(rig.controller.malformedCompletions.load(ordering: .relaxed) >= 2)
        try rig.expectHealthy()
    }

    @Test func busyIsRetriedAndThenGivenUp() throws {
        let rig = try Rig()
        defer { rig.stop() }
        rig.host.mode.withLock { $0 = .busy(2) }
        try rig.disk.write(at: 0, [5, 6])
        #expect(try rig.disk.read(at: 0, count: 2) == [5, 6])
        rig.host.mode.withLock { $0 = .busy(1000) }
        #expect(throws: StorVSCError.busy) { _ = try rig.disk.read(at: 0, count: 2) }
        try rig.expectHealthy()
    }

    @Test func unitAttentionIsRetriedAndMediumErrorsSurface() throws {
        let rig = try Rig()
        defer { rig.stop() }
        rig.host.mode.withLock { $0 = .unitAttentionOnce }
        try rig.disk.write(at: 0, [7])
        rig.host.mode.withLock { $0 = .mediumError }
        #expect(throws: StorVSCError.mediumError(asc: 0x11, ascq: 0)) { _ = try rig.disk.read(at: 0, count: 1) }
        try rig.expectHealthy()
    }

    @Test func aHostThatNeverAnswersTheInitializationGivesATypedTimeout() throws {
        let system = try InProcessSystem(memoryPages: 4096)
        defer { system.stop() }
        let host = HostileStorageHost(StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(6)))
        host.mode.withLock { $0 = .mute }
        system.host.addDevice(host)
        try system.start()
        var configuration = StorVSCController.Configuration()
        configuration.controlTimeoutNanoseconds = 300_000_000
        let controller = try StorVSCController(device: try #require(system.guest.devices.first), configuration: configuration)
        let start = monotonicNanoseconds()
        #expect { try controller.start() } throws: { Self.isTimeout($0) }
        #expect(monotonicNanoseconds() - start < 10_000_000_000)
        #expect(controller.isGone)
    }

    @Test func aHostThatGoesAwayFailsOutstandingRequests() throws {
        let rig = try Rig()
        rig.host.mode.withLock { $0 = .silent }
        let done = Condition<String?>(nil)
        _ = startThread(name: "waiter") {
            do { _ = try rig.disk.read(at: 0, count: 512) ; done.update { $0 = "succeeded" } }
            catch { done.update { $0 = "\(error)" } }
        }
        sleepNanoseconds(50_000_000)
        rig.controller.stop()
        let outcome = done.wait(timeoutNanoseconds: 10_000_000_000) { $0 }
        #expect(outcome != nil && outcome != "succeeded")
        #expect(throws: StorVSCError.self) { _ = try rig.disk.read(at: 0, count: 1) }
        rig.system.stop()
    }
}
