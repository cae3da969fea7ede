#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusICGuest
import VMBusICHost
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport

/// Every service, host to guest through the real rings, with the guest answering itself (no daemons).
@Suite(.serialized)
struct ICServicesTests {
    static func allServiceVersions() -> [(ICService, ICVersion)] {
        ICService.all.flatMap { s in s.serviceVersions.map { (s, $0) } }
    }

    static func responder(for service: ICService) -> any ICResponder {
        switch service {
        case .heartbeat: return HeartbeatResponder()
        case .shutdown: return ShutdownResponder { _, _ in }
        case .timeSync: return TimeSyncResponder(adjustClock: false)
        case .kvp: return KVPResponder()
        case .vss: return VSSResponder()
        default: return FileCopyResponder()
        }
    }

    @Test(arguments: allServiceVersions())
    func negotiatesEachServiceVersion(_ service: ICService, _ version: ICVersion) throws {
        let channel = ICHostChannel(service: service, instanceID: InProcessSystem.instanceID(40),
                                    frameworkVersions: [.utilFWVersion], serviceVersions: [version])
        let rig = try ICRig(configuration: .init(services: []), extraHost: [channel], responders: [Self.responder(for: service)])
        defer { rig.stop() }
        #expect(rig.waitReady([channel]))
        #expect(channel.versions == ICNegotiatedVersions(framework: .utilFWVersion, service: version))
        #expect(rig.driver.channel(for: service)?.versions == channel.versions)
    }

    @Test(arguments: ICService.all)
    func unknownVersionsAreRefused(_ service: ICService) throws {
        let channel = ICHostChannel(service: service, instanceID: InProcessSystem.instanceID(41),
                                    frameworkVersions: [.utilFWVersion], serviceVersions: [ICVersion(9, 9)])
        let rig = try ICRig(configuration: .init(services: []), extraHost: [channel], responders: [Self.responder(for: service)])
        defer { rig.stop() }
        #expect(eventually(5) { channel.phase == .refused })
        #expect(throws: ICHostError.refused(service.description)) {
            _ = try channel.transact(service.messageType, body: [], timeoutNanoseconds: 1_000_000_000)
        }
    }

    @Test func allSixNegotiateAtLinuxsNewestVersions() throws {
        let rig = try ICRig(responders: ICService.all.map(Self.responder(for:)))
        defer { rig.stop() }
        #expect(rig.waitReady())
        for c in rig.host.channels {
            #expect(c.versions?.service == c.service.serviceVersions.first, "\(c.service)")
        }
    }

    @Test func heartbeatIsAliveThenLostWhenTheGuestGoes() throws {
        let hb = HeartbeatResponder()
        let rig = try ICRig(configuration: .init(services: [.heartbeat], heartbeatIntervalNanoseconds: 20_000_000,
                                                 unresponsiveAfterNanoseconds: 300_000_000), responders: [hb])
        defer { rig.stop() }
        let heartbeat = try #require(rig.host.heartbeat)
        #expect(eventually(5) { heartbeat.status.isAlive && (heartbeat.status.lastSequence ?? 0) >= 5 })
        // Each answer is the host's number plus one: the host counts in twos, so answers are odd.
        #expect((heartbeat.status.lastSequence ?? 0) % 2 == 1)
        #expect(heartbeat.status.wrongAnswers == 0)
        #expect(hb.lastSequence.load(ordering: .relaxed) > 0)
        rig.system.guest.disconnect()
        #expect(eventually(5) { !heartbeat.status.isAlive })
    }

    @Test func shutdownAnswersAsLinuxAndActsAfterTheAnswer() throws {
        let log = ShutdownLog()
        let rig = try ICRig(configuration: .init(services: [.shutdown]), responders: [log.responder])
        defer { rig.stop() }
        #expect(rig.waitReady())
        let shutdown = try #require(rig.host.shutdown)
        #expect(try shutdown.request([], reason: "maintenance") == .ok)
        #expect(try shutdown.request([.restart, .force]) == .ok)
        #expect(try shutdown.request([.hibernate]) == .fail)
        #expect(try shutdown.request(ShutdownFlags(rawValue: 0x8)) == .fail)
        #expect(eventually(2) { log.actions.withLock { $0 } == [.shutdown, .restart] })
    }

    @Test(arguments: [ICVersion.tsVersion, .tsVersion3, .tsVersion1])
    func timeSyncMeasuresTheOffsetWithoutTouchingTheClock(_ version: ICVersion) throws {
        let ts = TimeSyncResponder(adjustClock: false)
        let channel = ICHostChannel(service: .timeSync, instanceID: InProcessSystem.instanceID(42),
                                    serviceVersions: [version])
        let time = HostTimeSync(channel: channel, syncOnConnect: true)
        let rig = try ICRig(configuration: .init(services: []), extraHost: [channel], responders: [ts])
        defer { rig.stop() }
        #expect(rig.waitReady([channel]))
        // The SYNC Hyper-V sends on connect arrives by itself.
        #expect(eventually(5) { ts.sampleCount >= 1 })
        let result = try time.send(sync: false)
        #expect(result.status == .ok)
        #expect(result.layout == TimeSyncLayout(serviceVersion: version))
        #expect(ts.sampleCount >= 2)
        let sample = try #require(ts.lastSample)
        #expect(sample.flags == .sample)
        #expect(!sample.adjusted)
        // One clock on both sides: the offset is the delivery delay, well under a second.
        #expect(abs(sample.offsetNanoseconds) < 1_000_000_000)
        _ = try time.send(sync: true)
        #expect(ts.lastSample?.flags == .sync)
        #expect(ts.lastSample?.adjusted == false)
    }

    @Test func kvpPoolsHaveTheDaemonsSemantics() throws {
        let rig = try ICRig(configuration: .init(services: [.kvp]), responders: [KVPResponder()])
        defer { rig.stop() }
        #expect(rig.waitReady())
        let kvp = try #require(rig.host.kvp)
        #expect(try kvp.get(pool: .external, key: "missing").status == .cont)
        #expect(try kvp.set(pool: .external, key: "VMName", value: "test-vm-ü").status == .ok)
        #expect(try kvp.set(pool: .external, key: "Other", value: "1").status == .ok)
        #expect(try kvp.get(pool: .external, key: "VMName").value == "test-vm-ü")
        #expect(try kvp.set(pool: .external, key: "VMName", value: "renamed").status == .ok)
        let list = try kvp.list(pool: .external)
        #expect(list.status == .ok)
        #expect(list.pairs.map(\.key) == ["VMName", "Other"])
        #expect(list.pairs.map(\.value) == ["renamed", "1"])
        #expect(try kvp.get(pool: .guest, key: "VMName").status == .cont)
        #expect(try kvp.delete(pool: .external, key: "VMName").status == .ok)
        #expect(try kvp.delete(pool: .external, key: "VMName").status == .cont)
        #expect(try kvp.list(pool: .external).pairs.map(\.key) == ["Other"])
        // A value as long as the field allows (1023 UTF-16 units and the NUL) survives.
        let long = String(repeating: "x", count: 1023)
        #expect(try kvp.set(pool: .guest, key: "long", value: long).status == .ok)
        #expect(try kvp.get(pool: .guest, key: "long").value == long)
    }

    @Test func theAutoPoolEnumeratesTenFactsInTheDaemonsOrder() throws {
        let rig = try ICRig(configuration: .init(services: [.kvp]), responders: [KVPResponder()])
        defer { rig.stop() }
        #expect(rig.waitReady())
        let kvp = try #require(rig.host.kvp)
        let list = try kvp.list(pool: .auto)
        #expect(list.pairs.map(\.key) == KVPAutoFacts.keys)
        let facts = Dictionary(uniqueKeysWithValues: list.pairs.map { ($0.key, $0.value) })
        #expect(facts["IntegrationServicesVersion"] == "3.1")
        #expect(!(facts["OSBuildNumber"] ?? "").isEmpty)
        #expect(!(facts["ProcessorArchitecture"] ?? "").isEmpty)
    }

    @Test func vssRunsItsHooksAndFailsWithoutThem() throws {
        let dir = try TemporaryDirectory()
        let marker = dir.path + "/frozen"
        let vss = VSSResponder(freezeHook: .shell("echo frozen > \(marker)"), thawHook: .shell("rm \(marker)"))
        let rig = try ICRig(configuration: .init(services: [.vss]), responders: [vss])
        defer { rig.stop() }
        #expect(rig.waitReady())
        let host = try #require(rig.host.vss)
        #expect(try host.freeze().status == .ok)
        #expect(access(marker, F_OK) == 0)
        #expect(try host.thaw().status == .ok)
        #expect(access(marker, F_OK) != 0)
        // The hook fails now (nothing to remove): so does the thaw.
        #expect(try host.thaw().status == .fail)
        let dm = try host.perform(.getDMInfo)
        #expect(dm.status == .ok && dm.flags == 0)
        let hot = try host.perform(.hotBackup)
        #expect(hot.status == .ok && hot.flags == VSSCheckFeature.hbuNoAutoRecovery)
        #expect(try host.perform(.buComplete).status == .ok)
    }

    @Test func vssWithoutHooksOrDaemonFailsFreezeAsLinuxDoes() throws {
        let rig = try ICRig(configuration: .init(services: [.vss]), responders: [VSSResponder()])
        defer { rig.stop() }
        #expect(rig.waitReady())
        #expect(try rig.host.vss?.freeze().status == .fail)
    }

    @Test func fileCopyWritesTheFileWithTheFlagsSemantics() throws {
        let dir = try TemporaryDirectory()
        let source = dir.path + "/source"
        var rng = SplitMix64(seed: 7)
        let contents = (0..<20_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        #expect(writeFileBytes(source, contents))
        let rig = try ICRig(configuration: .init(services: [.fcopy]), responders: [FileCopyResponder()])
        defer { rig.stop() }
        #expect(rig.waitReady())
        let copy = try #require(rig.host.fileCopy)
        // The directory is missing: without CREATE_PATH the start fails.
        let target = dir.path + "/a/b/target"
        #expect(try copy.copy(source: source, destination: target, flags: []).status == .fail)
        let made = try copy.copy(source: source, destination: target, flags: [.createPath])
        #expect(made == HostFileCopy.Outcome(status: .ok, failedStep: nil, bytesWritten: 20_000))
        #expect(byteDifference(fileBytes(target), contents) == "")
        var st = stat()
        #expect(stat(target, &st) == 0 && st.st_mode & 0o777 == 0o744 & ~currentUmask())
        // It exists now: only OVER_WRITE replaces it.
        let refused = try copy.copy(source: source, destination: target, flags: [])
        #expect(refused.status == .errorAlreadyExists && refused.failedStep == .startFileCopy)
        #expect(writeFileBytes(source, [1, 2, 3]))
        #expect(try copy.copy(source: source, destination: target, flags: [.overWrite]).status == .ok)
        #expect(fileBytes(target) == [1, 2, 3])
    }
}

func currentUmask() -> mode_t {
    let m = umask(0)
    umask(m)
    return m
}
