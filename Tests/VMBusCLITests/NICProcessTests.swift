#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - Network: `vmbus nic` through the control socket, hot add, link and remove seen by a guest

    @Test func nicsAreListedAttachedLinkedAndDetachedThroughTheControlSocket() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host("host", ["--echo", "0", "--nic", "switch"])
        defer { host.kill9() }
        func nic(_ words: [String], expect status: Int32 = 0) throws -> ChildProcess {
            let p = try f.vmbus("nic-" + words[0], ["nic"] + words + ["--socket", f.socket])
            #expect(p.wait(seconds: 30) == .exited(status), "vmbus nic \(words): \(p.stdout) \(p.stderr)")
            return p
        }
        #expect(try nic(["list"]).stdout == "nic 0\tswitch:default\tMTU 1500\tlink up\n")

        let guest = try f.guest("guest", [])
        defer { guest.kill9() }
        let start = try guest.waitForOutput("channels: 0 open")
        #expect(start.contains("nics:\n  (no TAP): MAC 00:15:5d:"), "\(start)")
        let partition = try #require(Self.partition(in: start))
        let first = try nic(["list"]).stdout.lines
        #expect(first.count == 2, "\(first)")
        #expect(first.last?.hasPrefix("\tpartition \(partition)\tMAC 00:15:5d:") == true, "\(first)")
        #expect(first.last?.contains("\tinitialized\tqueues 1\ttx_packets=") == true, "\(first)")

        // Hot add: offered to the live partition, bound by its NetVSC as Linux binds a new offer.
        #expect(try nic(["attach", "switch:lab,mtu=9000"]).stdout == "attached nic 1 (switch:lab), offered to 1 partition\n")
        let added = try guest.waitForOutput("nic added: ")
        let line = try #require(added.lines.first { $0.hasPrefix("nic added: ") })
        #expect(line.hasPrefix("nic added: (no TAP): MAC 00:15:5d:") && line.hasSuffix(", MTU 9000, queues 1, link up"), "\(line)")
        let mac = String(line.dropFirst("nic added: (no TAP): MAC ".count).prefix(17))
        let listed = try nic(["list"]).stdout
        #expect(listed.contains("nic 1\tswitch:lab\tMTU 9000\tlink up\n\tpartition \(partition)\tMAC \(mac)\t"), "\(listed)")
        try eventually("the guest initialized the new NIC") {
            (try? nic(["list"]).stdout.contains("MAC \(mac)\tinitialized")) == true
        }

        // A partition that connects later is offered both NICs.
        let list = try f.vmbus("list", ["list", "--socket", f.socket])
        #expect(list.wait(seconds: 60) == .exited(0), "\(list.stdout) \(list.stderr)")
        #expect(list.stdout.occurrences(of: "Synthetic network adapter") == 2, "\(list.stdout)")
        // Its -v listing shows the host's NICs with every partition's MAC, queues and counters.
        let verbose = try f.vmbus("list-v-socket", ["list", "-v", "--socket", f.socket])
        #expect(verbose.wait(seconds: 60) == .exited(0), "\(verbose.stdout) \(verbose.stderr)")
        #expect(verbose.stdout.contains("nics:\n  nic 0\t"), "\(verbose.stdout)")
        #expect(verbose.stdout.contains("  nic 1\tswitch:lab\tMTU 9000\tlink up\n"), "\(verbose.stdout)")
        #expect(verbose.stdout.contains("\tMAC \(mac)\tinitialized\tqueues 1\ttx_packets="), "\(verbose.stdout)")
        // The embedded system's `list -v` binds its NICs and shows what the guest sees.
        let embedded = try f.vmbus("list-v", ["list", "-v", "--nic", "switch", "--nic", "switch:b,mtu=9000"])
        #expect(embedded.wait(seconds: 60) == .exited(0), "\(embedded.stdout) \(embedded.stderr)")
        #expect(embedded.stdout.occurrences(of: "  (no TAP): MAC 00:15:5d:") == 2, "\(embedded.stdout)")
        #expect(embedded.stdout.contains(", MTU 9000, queues 1, link up"), "\(embedded.stdout)")

        // Link down and up: RNDIS status indications the guest's NetVSC reports.
        #expect(try nic(["link", "1", "down"]).stdout == "nic 1: link down\n")
        try guest.waitForOutput("nic MAC \(mac): link down")
        #expect(try nic(["list"]).stdout.contains("nic 1\tswitch:lab\tMTU 9000\tlink down\n"))
        #expect(try nic(["link", "1", "up"]).stdout == "nic 1: link up\n")
        try guest.waitForOutput("nic MAC \(mac): link up")

        // SIGUSR1: the guest's own counters, one line per NIC.
        guest.signal(SIGUSR1)
        let counters = try guest.waitForOutput("nic counters:")
        try eventually("both NICs' counters printed") { guest.stdout.contains("  MAC \(mac): tx_packets=") }
        #expect(counters.contains("nic counters:\n  MAC 00:15:5d:"), "\(counters)")

        // Hot remove: rescinded, and the guest stops its NetVSC.
        #expect(try nic(["detach", "1"]).stdout == "detached nic 1 (switch:lab)\n")
        try guest.waitForOutput("nic removed: MAC \(mac)")
        #expect(try nic(["list"]).stdout.lines.count == 2)
        #expect(try nic(["detach", "7"], expect: 1).stderr.contains("no nic 7"))
        #expect(try nic(["link", "7", "up"], expect: 1).stderr.contains("no nic 7"))
        #expect(try nic(["attach", "bogus"], expect: 64).stderr.contains("bogus"))

        // With root and /dev/net/tun: a NIC on a TAP of the host machine, hot-added the same way; a TAP serves one NIC.
        if getuid() == 0 && access("/dev/net/tun", F_OK) == 0 {
            let tap = "vmbnic\(getpid() % 100_000)"
            #expect(try nic(["attach", "tap:\(tap)"]).stdout == "attached nic 1 (tap:\(tap)), offered to 1 partition\n")
            try guest.waitForOutput("nic added: ", count: 2)
            #expect(try nic(["attach", "tap:\(tap)"], expect: 1).stderr.contains("already serves a NIC"))
            #expect(try nic(["list"]).stdout.contains("nic 1\ttap:\(tap)\tMTU 1500\tlink up\n\tpartition \(partition)\t"))
            #expect(try nic(["detach", "1"]).stdout == "detached nic 1 (tap:\(tap))\n")
            try guest.waitForOutput("nic removed: ", count: 2)
        }

        guest.signal(SIGTERM)
        #expect(guest.wait(seconds: 30) == .exited(0), "\(guest.stdout) \(guest.stderr)")
        #expect(guest.stdout.contains("unloaded cleanly"))
        #expect(guest.stdout.occurrences(of: "nic counters:") == 2, "printed on SIGUSR1 and at the exit")
        try eventually("the partition is gone from the listing") {
            (try? nic(["list"]).stdout) == "nic 0\tswitch:default\tMTU 1500\tlink up\n"
        }
    }
}
