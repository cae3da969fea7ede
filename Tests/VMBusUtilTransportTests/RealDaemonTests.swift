#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusFUSE
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusUtilTransport

/// Debian 12's hyperv-daemons (Linux 6.1's tools/hv) against our /dev/vmbus devices, unmodified.
@Suite(.serialized, .enabled(if: DaemonNamespace.availableInProcess)) struct RealDaemonTests {
    /// The three devices mounted at a fresh directory, with the links on them.
    final class Fixture {
        let scratch: TemporaryDirectory
        let mountpoint: String
        let kvp: KVPDaemonLink
        let vss: VSSDaemonLink
        let fcopy: FCopyDaemonLink
        let mount: FUSEMount

        init(timeoutNanoseconds: UInt64 = 10_000_000_000) throws {
            scratch = try TemporaryDirectory("vmbus-daemons")
            mountpoint = scratch.path + "/vmbus"
            mkdir(mountpoint, 0o755)
            let device = DevVMBusDirectory.makeDevice
            kvp = KVPDaemonLink(device: device("hv_kvp"), timeoutNanoseconds: timeoutNanoseconds)
            vss = VSSDaemonLink(device: device("hv_vss"), timeoutNanoseconds: timeoutNanoseconds)
            fcopy = FCopyDaemonLink(device: device("hv_fcopy"), timeoutNanoseconds: timeoutNanoseconds)
            mount = try DevVMBusDirectory(devices: [kvp.device, vss.device, fcopy.device]).mount(at: mountpoint)
        }

        deinit {
            mount.stop()
            scratch.remove()
        }
    }

    @Test func hvKVPDaemonRegistersAndAnswersSetGetDeleteAndEnumerate() throws {
        let f = try Fixture()
        let daemon = try DaemonNamespace("hv_kvp_daemon", devices: f.mountpoint, scratch: f.scratch.path)
        try eventually("hv_kvp_daemon registers", seconds: 10) { f.kvp.isAttached || !daemon.process.isRunning }
        #expect(f.kvp.isAttached, "stderr: \(daemon.process.stderr)")
        #expect(f.kvp.perform(.set(pool: .external, key: "Answer", value: "42")) == KVPDaemonAnswer(status: .ok))
        #expect(f.kvp.perform(.get(pool: .external, key: "Answer")) == KVPDaemonAnswer(status: .ok, value: "42"))
        #expect(f.kvp.perform(.get(pool: .external, key: "Missing"))?.status == .cont)
        #expect(f.kvp.perform(.enumerate(pool: .external, index: 0)) == KVPDaemonAnswer(status: .ok, key: "Answer", value: "42"))
        #expect(f.kvp.perform(.enumerate(pool: .external, index: 1))?.status == .cont)
        #expect(f.kvp.perform(.delete(pool: .external, key: "Answer")) == KVPDaemonAnswer(status: .ok))
        #expect(f.kvp.perform(.get(pool: .external, key: "Answer"))?.status == .cont)
        // The auto pool: the daemon's own facts about the guest.
        var auto: [String: String] = [:]
        for i in 0..<16 {
            guard let a = f.kvp.perform(.enumerate(pool: .auto, index: UInt32(i))), a.status == .ok else { break }
            auto[a.key] = a.value
        }
        #expect(auto["IntegrationServicesVersion"] == KVPDaemonLink.HV_DRV_VERSION, "\(auto)")
        #expect(auto["OSName"]?.isEmpty == false, "\(auto)")
        #expect(daemon.process.isRunning)
    }
}

extension RealDaemonTests {
    @Test func hvVSSDaemonFreezesAndThaws() throws {
        let f = try Fixture()
        let fs = try FreezableFilesystem(at: f.scratch.path + "/frozen", scratch: f.scratch.path)
        let daemon = try DaemonNamespace("hv_vss_daemon", devices: f.mountpoint, scratch: f.scratch.path,
                                         freezable: fs.path)
        try eventually("hv_vss_daemon registers", seconds: 10) { f.vss.isAttached || !daemon.process.isRunning }
        #expect(f.vss.isAttached, "stderr: \(daemon.process.stderr)")
        #expect(!fs.isFrozen)
        let hot = f.vss.perform(.hotBackup)
        #expect(hot?.status == .ok)
        #expect(hot?.flags == VSSCheckFeature.hbuNoAutoRecovery)
        #expect(f.vss.perform(.freeze)?.status == .ok)
        if fs.zram != nil { #expect(fs.isFrozen, "the daemon froze the filesystem") }
        #expect(f.vss.perform(.thaw)?.status == .ok)
        #expect(!fs.isFrozen)
        #expect(daemon.process.isRunning)
    }

    @Test func hvFCopyDaemonWritesTheFileWithTheFlagsSemantics() throws {
        let f = try Fixture()
        let daemon = try DaemonNamespace("hv_fcopy_daemon", devices: f.mountpoint, scratch: f.scratch.path)
        try eventually("hv_fcopy_daemon registers", seconds: 10) { f.fcopy.isAttached || !daemon.process.isRunning }
        #expect(f.fcopy.isAttached, "stderr: \(daemon.process.stderr)")
        var contents = [UInt8](repeating: 0, count: 3 * FCopyData.dataFragment + 123)
        var rng = SplitMix64(seed: 7)
        for i in contents.indices { contents[i] = UInt8(truncatingIfNeeded: rng.next()) }
        func copy(_ name: String, to dir: String, flags: FCopyFlags) throws -> ICStatus? {
            let start = try FCopyStart(fileName: name, pathName: dir, encoding: .utf16LE, copyFlags: flags,
                                       fileSize: UInt64(contents.count))
            guard let s = f.fcopy.start(start) else { return nil }
            guard s == .ok else { return s }
            var offset = 0
            while offset < contents.count {
                let n = min(FCopyData.dataFragment, contents.count - offset)
                let status = f.fcopy.write(try FCopyData(offset: UInt64(offset), data: Array(contents[offset..<(offset + n)])))
                guard status == .ok else { _ = f.fcopy.finish(.cancelFCopy); return status }
                offset += n
            }
            return f.fcopy.finish(.completeFCopy)
        }
        let dir = f.scratch.path + "/copied"
        mkdir(dir, 0o755)
        #expect(try copy("a.bin", to: dir, flags: []) == .ok)
        #expect(byteDifference(fileBytes(dir + "/a.bin"), contents) == "")
        #expect(try copy("a.bin", to: dir, flags: []) != .ok, "exists, no OVER_WRITE")
        #expect(try copy("a.bin", to: dir, flags: .overWrite) == .ok)
        #expect(try copy("b.bin", to: dir + "/new/sub", flags: []) != .ok, "no CREATE_PATH")
        // hv_fcopy_daemon creates the components of path_name that a '/' follows: the host ends it with one.
        #expect(try copy("b.bin", to: dir + "/new/sub/", flags: .createPath) == .ok)
        #expect(byteDifference(fileBytes(dir + "/new/sub/b.bin"), contents) == "")
        #expect(daemon.process.isRunning)
    }
}

extension RealDaemonTests {
    /// A hostile daemon through the FUSE files themselves: raw opens, reads, writes and polls.
    @Test func aRawPeerOnTheFilesGetsLinuxsErrorsAndNoCrash() throws {
        let f = try Fixture(timeoutNanoseconds: 300_000_000)
        let path = f.mountpoint + "/hv_kvp"
        let fd = open(path, O_RDWR)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(open(path, O_RDWR) == -1 && errno == EBUSY, "one daemon at a time")
        func write(_ bytes: [UInt8]) -> (Int, Int32) {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            return (n, errno)
        }
        #expect(write([1, 2, 3]) == (-1, EINVAL), "not a registration")
        #expect(write([UInt8](repeating: 0xFF, count: UtilTransportDevice.maximumMessageSize + 1)) == (-1, EINVAL))
        #expect(write(KVPMessage(header: KVPHeader(operation: .register1, pool: .external)).wireBytes).0 == KVPMessage.wireSize)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(Glibc.poll(&p, 1, 2000) == 1 && p.revents & Int16(POLLIN) != 0, "the registration answer waits")
        var small = [UInt8](repeating: 0, count: 16)
        #expect(small.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } == -1 && errno == EINVAL,
                "a buffer shorter than the message")
        var whole = [UInt8](repeating: 0, count: KVPMessage.wireSize)
        #expect(whole.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } == KVPMessage.wireSize)
        #expect(write(whole) == (-1, EINVAL), "an answer nobody asked for")
        // A request the raw peer never answers: the guest gives up with HV_E_FAIL and the file stays usable.
        #expect(f.kvp.perform(.get(pool: .external, key: "k")) == KVPDaemonAnswer(status: .fail))
        p.revents = 0
        #expect(Glibc.poll(&p, 1, 0) == 0, "the unanswered request was taken back")
        #expect(f.kvp.isAttached)
    }
}
