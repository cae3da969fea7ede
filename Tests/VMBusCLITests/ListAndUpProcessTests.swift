import Foundation
import Testing
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - 6: `vmbus list`

    /// lsvmbus without -v: `VMBUS ID nn: <description>`.
    static var shortDeviceLine: Regex<AnyRegexOutput> { try! Regex(#"^VMBUS ID +\d+: [^{}]+$"#) }
    static var deviceLine: Regex<AnyRegexOutput> { try! Regex(#"^VMBUS ID +\d+: Class_ID = \{[0-9a-f-]{36}\} - .+$"#) }
    static var deviceIDLine: Regex<AnyRegexOutput> { try! Regex(#"^\tDevice_ID = \{[0-9a-f-]{36}\}$"#) }
    static var sysfsLine: Regex<AnyRegexOutput> { try! Regex(#"^\tSysfs path: /sys/bus/vmbus/devices/[0-9a-f-]{36}$"#) }
    static var channelLine: Regex<AnyRegexOutput> { try! Regex(#"^\tRel_ID=\d+, target_cpu=\d+$"#) }

    /// Checks every line of an lsvmbus listing at `verbosity`; returns the number of devices.
    static func checkListing(_ out: String, verbosity: Int) -> Int {
        var devices = 0
        for line in out.lines {
            guard verbosity > 0 else {
                #expect(line.wholeMatch(of: shortDeviceLine) != nil, "not an lsvmbus line: '\(line)'")
                devices += 1
                continue
            }
            if line.wholeMatch(of: deviceLine) != nil {
                devices += 1
                continue
            }
            let ok = line.isEmpty || line.wholeMatch(of: channelLine) != nil
                || (verbosity > 1 && (line.wholeMatch(of: deviceIDLine) != nil || line.wholeMatch(of: sysfsLine) != nil))
            #expect(ok, "not an lsvmbus -\(String(repeating: "v", count: verbosity)) line: '\(line)'")
        }
        return devices
    }

    @Test func listPrintsLsvmbusFormatAndValidJSON() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host("host", ["--echo", "3"])
        defer { host.kill9() }

        for (verbosity, flags) in [(0, [String]()), (1, ["-v"]), (2, ["-vv"])] {
            let list = try f.vmbus("list-v\(verbosity)", ["list", "--socket", f.socket] + flags)
            defer { list.kill9() }
            #expect(list.wait(seconds: 20) == .exited(0), "\(list.stderr)")
            let out = list.stdout
            #expect(Self.checkListing(out, verbosity: verbosity) == 3, "\(out)")
            #expect(out.lines.first == (verbosity == 0 ? "VMBUS ID  1: swift-vmbus echo test device"
                : "VMBUS ID  1: Class_ID = {2b65ce73-397c-4287-8892-2b457190873a} - swift-vmbus echo test device"))
            #expect(out.occurrences(of: "\tRel_ID=") == (verbosity > 0 ? 3 : 0))
            #expect(out.occurrences(of: "\tDevice_ID = {") == (verbosity > 1 ? 3 : 0))
            #expect(out.occurrences(of: "\tSysfs path: ") == (verbosity > 1 ? 3 : 0))
            #expect(list.stderr.isEmpty, "\(list.stderr)")
        }

        let json = try f.vmbus("list-json", ["list", "--socket", f.socket, "--json"])
        defer { json.kill9() }
        #expect(json.wait(seconds: 20) == .exited(0), "\(json.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8))
        let devices = try #require(parsed as? [[String: Any]], "\(json.stdout)")
        #expect(devices.count == 3)
        #expect(devices.compactMap { $0["vmbus_id"] as? Int } == [1, 2, 3])
        for d in devices {
            let classID = try #require(d["class_id"] as? String)
            #expect(classID == "{2b65ce73-397c-4287-8892-2b457190873a}")
            #expect((d["device_id"] as? String)?.count == 38)
            #expect(d["description"] is String)
            let channels = try #require(d["channels"] as? [[String: Any]])
            #expect(channels.count == 1)
            #expect(channels.first?["sub_channel_index"] as? Int == 0)
            #expect(channels.first?["rel_id"] as? Int == d["vmbus_id"] as? Int)
        }

        // Without --socket it lists the embedded system, in the same format.
        let embedded = try f.vmbus("list-embedded", ["list", "-v"])
        defer { embedded.kill9() }
        #expect(embedded.wait(seconds: 20) == .exited(0), "\(embedded.stderr)")
        #expect(Self.checkListing(embedded.stdout, verbosity: 1) == 1)
    }

    @Test func listFailsWithOneClearLineWhenNoHostListens() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let list = try f.vmbus("list", ["list", "--socket", f.socket])
        defer { list.kill9() }
        let status = list.wait(seconds: 20)
        #expect(status != nil && status != .exited(0))
        #expect(list.stderr.lines.count == 1, "\(list.stderr)")
        #expect(list.stderr.hasPrefix("vmbus: cannot attach to the host at \(f.socket): "))
    }

    // MARK: - 7: `vmbus up`

    @Test func upPrintsTheTreeAndStopsCleanlyOnSIGTERM() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let up = try f.vmbus("up", ["up", "--data-dir", f.directory.path + "/data", "--memory", "64"])
        defer { up.kill9() }
        let out = try up.waitForOutput("disk IOPS", seconds: 30)
        #expect(out.contains("VMBus 6.0 connected; device tree:"))
        let tree = out.lines.drop { !$0.hasPrefix("VMBUS ID") }.prefix { !$0.hasPrefix("disks:") }
        #expect(Self.checkListing(tree.joined(separator: "\n"), verbosity: 1) == 9,
                "the SCSI controller, the echo device, the NIC on the internal switch and the six integration services")
        #expect(out.contains("nics:\n  (no TAP): MAC 00:15:5d:"), "\(out)")
        #expect(out.contains("  NIC packets/s: "), "\(out)")
        let nics = try f.vmbus("nic-list", ["nic", "list", "--data-dir", f.directory.path + "/data"])
        #expect(nics.wait(seconds: 30) == .exited(0), "\(nics.stderr)")
        #expect(nics.stdout.hasPrefix("nic 0\tswitch:default\tMTU 1500\tlink up\n\tpartition 0\tMAC 00:15:5d:"), "\(nics.stdout)")
        // A hot-added NIC is bound by up's guest and announced above the status line.
        let attach = try f.vmbus("nic-attach", ["nic", "attach", "switch:lab", "--data-dir", f.directory.path + "/data"])
        #expect(attach.wait(seconds: 30) == .exited(0), "\(attach.stderr)")
        try up.waitForOutput("\rnic added: (no TAP): MAC 00:15:5d:")
        let disk = f.directory.path + "/data/disk0.vhdx"
        #expect(out.contains("  scsi LUN 0: 8.0 GiB, vhdx dynamic \(disk)"), "\(out)")
        var st = stat()
        #expect(stat(disk, &st) == 0 && st.st_size < 16 << 20, "a dynamic VHDX: headers, log, metadata and BAT")

        up.signal(SIGTERM)
        let status = up.wait(seconds: 20)
        #expect(status == .exited(0), "\(status.map { "\($0)" } ?? "hung")\n\(up.stdout)\n\(up.stderr)")
        let final = up.stdout
        #expect(final.contains("signal 15: stopping: closing channels, tearing down GPADLs, unloading"))
        #expect(final.hasSuffix("stopped cleanly\n"))
        #expect(final.contains("nic counters:\n  MAC 00:15:5d:"), "\(final)")
        #expect(up.stderr.isEmpty, "\(up.stderr)")
    }

    @Test func upStillUsesTheRawDiskOfAnOlderDataDirectory() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let data = f.directory.path + "/data"
        #expect(mkdir(data, 0o755) == 0)
        let legacy = data + "/disk0.raw"
        let fd = open(legacy, O_CREAT | O_WRONLY, 0o644)
        #expect(fd >= 0 && ftruncate(fd, 4 << 20) == 0)
        close(fd)
        let up = try f.vmbus("up-legacy", ["up", "--data-dir", data, "--memory", "64"])
        defer { up.kill9() }
        let out = try up.waitForOutput("disk IOPS", seconds: 30)
        #expect(out.contains("  scsi LUN 0: 4.0 MiB, raw \(legacy)"), "\(out)")
        #expect(access(data + "/disk0.vhdx", F_OK) != 0, "no new VHDX next to it")
        up.signal(SIGTERM)
        #expect(up.wait(seconds: 20) == .exited(0))
    }

    @Test func listVerboseShowsEachDiskWithItsBackend() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let a = f.directory.path + "/a.raw", b = f.directory.path + "/b.raw", c = f.directory.path + "/c.vhd"
        let list = try f.vmbus("list-disks", ["list", "-v", "--echo", "0", "--disk", a + ",size=1M", "--disk", b + ",size=3M,ide",
                                              "--disk", c + ",size=2M"])
        defer { list.kill9() }
        #expect(list.wait(seconds: 30) == .exited(0), "\(list.stderr)")
        #expect(list.stdout.contains("Synthetic SCSI Controller"), "\(list.stdout)")
        #expect(list.stdout.contains("  scsi LUN 0: 1.0 MiB, raw \(a)"), "\(list.stdout)")
        #expect(list.stdout.contains("  ide LUN 0: 3.0 MiB, raw \(b)"), "\(list.stdout)")
        #expect(list.stdout.contains("  scsi LUN 1: 2.0 MiB, vhd dynamic \(c)"), "\(list.stdout)")
        let missing = try f.vmbus("list-missing", ["list", "--disk", f.directory.path + "/none.raw"])
        defer { missing.kill9() }
        #expect(missing.wait(seconds: 20) == .exited(1))
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")
    }

    @Test func upStopsByItselfAfterItsDuration() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let up = try f.vmbus("up", ["up", "--data-dir", f.directory.path + "/data", "--memory", "64", "--duration", "1"])
        defer { up.kill9() }
        #expect(up.wait(seconds: 30) == .exited(0), "\(up.stdout)\n\(up.stderr)")
        #expect(up.stdout.hasSuffix("stopped cleanly\n"))
    }
}
