#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusFUSE
import VMBusICGuest
import VMBusICHost
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusUtilTransport

/// The whole path: the host's KVP, VSS and file-copy requests through the rings to our guest, which hands
/// them to Debian's real hv_kvp_daemon, hv_vss_daemon and hv_fcopy_daemon on its /dev/vmbus files.
@Suite(.serialized, .enabled(if: DaemonNamespace.availableInProcess)) struct RealDaemonStackTests {
    final class Stack {
        let scratch: TemporaryDirectory
        let mountpoint: String
        let kvp = KVPDaemonLink(device: Stack.device("hv_kvp"), timeoutNanoseconds: 10_000_000_000)
        let vss = VSSDaemonLink(device: Stack.device("hv_vss"), timeoutNanoseconds: 10_000_000_000)
        let fcopy = FCopyDaemonLink(device: Stack.device("hv_fcopy"), timeoutNanoseconds: 10_000_000_000)
        let mount: FUSEMount
        let rig: ICRig

        static func device(_ name: String) -> UtilTransportDevice { DevVMBusDirectory.makeDevice(name) }

        init() throws {
            scratch = try TemporaryDirectory("vmbus-stack")
            mountpoint = scratch.path + "/vmbus"
            mkdir(mountpoint, 0o755)
            mount = try DevVMBusDirectory(devices: [kvp.device, vss.device, fcopy.device]).mount(at: mountpoint)
            // Our own answers would hide a daemon that is not reached: a store the daemon's keys are never in.
            rig = try ICRig(configuration: .init(services: [.kvp, .vss, .fcopy]), responders: [
                KVPResponder(daemon: kvp), VSSResponder(daemon: vss), FileCopyResponder(daemon: fcopy),
            ])
        }

        deinit {
            rig.stop()
            mount.stop()
            scratch.remove()
        }
    }

    @Test func theHostsKVPRequestsAreAnsweredByHvKVPDaemon() throws {
        let s = try Stack()
        let daemon = try DaemonNamespace("hv_kvp_daemon", devices: s.mountpoint, scratch: s.scratch.path)
        try eventually("hv_kvp_daemon registers", seconds: 10) { s.kvp.isAttached || !daemon.process.isRunning }
        #expect(s.kvp.isAttached, "stderr: \(daemon.process.stderr)")
        #expect(s.rig.waitReady())
        let kvp = try #require(s.rig.host.kvp)
        #expect(try kvp.set(pool: .external, key: "HostName", value: "hyperv-host-ü").status == .ok)
        #expect(try kvp.set(pool: .external, key: "VirtualMachineName", value: "vm1").status == .ok)
        #expect(try kvp.get(pool: .external, key: "HostName").value == "hyperv-host-ü")
        let list = try kvp.list(pool: .external)
        #expect(list.pairs.map(\.key) == ["HostName", "VirtualMachineName"])
        #expect(try kvp.delete(pool: .external, key: "HostName").status == .ok)
        #expect(try kvp.get(pool: .external, key: "HostName").status != .ok)
        // The auto pool is the daemon's own facts, in its order; its version is the one our link registered.
        let auto = try kvp.list(pool: .auto)
        #expect(auto.pairs.map(\.key) == KVPAutoFacts.keys)
        #expect(auto.pairs.first { $0.key == "IntegrationServicesVersion" }?.value == KVPDaemonLink.HV_DRV_VERSION)
        // The daemon wrote what the host set into its pool file (in the namespace's private /var/lib).
        #expect(daemon.process.isRunning)
    }

    @Test func aCopyFromTheHostIsWrittenByHvFCopyDaemon() throws {
        let s = try Stack()
        let daemon = try DaemonNamespace("hv_fcopy_daemon", devices: s.mountpoint, scratch: s.scratch.path)
        try eventually("hv_fcopy_daemon registers", seconds: 10) { s.fcopy.isAttached || !daemon.process.isRunning }
        #expect(s.fcopy.isAttached, "stderr: \(daemon.process.stderr)")
        #expect(s.rig.waitReady())
        let copy = try #require(s.rig.host.fileCopy)
        var rng = SplitMix64(seed: 11)
        let contents = (0..<(5 * FCopyData.dataFragment + 77)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let source = s.scratch.path + "/source.bin"
        #expect(writeFileBytes(source, contents))
        let target = s.scratch.path + "/guest/new/dir/file.bin"
        #expect(try copy.copy(source: source, destination: target, flags: []).status != .ok, "no CREATE_PATH")
        let made = try copy.copy(source: source, destination: target, flags: [.createPath])
        #expect(made.status == .ok && made.bytesWritten == UInt64(contents.count))
        #expect(byteDifference(fileBytes(target), contents) == "")
        #expect(try copy.copy(source: source, destination: target, flags: []).status == .errorAlreadyExists)
        #expect(writeFileBytes(source, [9, 8, 7]))
        #expect(try copy.copy(source: source, destination: target, flags: [.overWrite]).status == .ok)
        #expect(fileBytes(target) == [9, 8, 7])
        #expect(daemon.process.isRunning)
    }

    @Test func aFreezeAndThawReachHvVSSDaemon() throws {
        let s = try Stack()
        let fs = try FreezableFilesystem(at: s.scratch.path + "/frozen", scratch: s.scratch.path)
        let daemon = try DaemonNamespace("hv_vss_daemon", devices: s.mountpoint, scratch: s.scratch.path,
                                         freezable: fs.path)
        try eventually("hv_vss_daemon registers", seconds: 10) { s.vss.isAttached || !daemon.process.isRunning }
        #expect(s.vss.isAttached, "stderr: \(daemon.process.stderr)")
        #expect(s.rig.waitReady())
        let vss = try #require(s.rig.host.vss)
        let hot = try vss.perform(.hotBackup)
        #expect(hot.status == .ok && hot.flags == VSSCheckFeature.hbuNoAutoRecovery)
        #expect(try vss.freeze().status == .ok)
        if fs.zram != nil { #expect(fs.isFrozen, "hv_vss_daemon froze the filesystem") }
        #expect(try vss.thaw().status == .ok)
        #expect(!fs.isFrozen)
        #expect(daemon.process.isRunning)
    }
}
