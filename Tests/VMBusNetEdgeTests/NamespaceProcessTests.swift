import Testing
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// `vmbus host` and `vmbus guest` with real network stacks at both ends: the guest's NIC as a TAP in
/// namespace A, the host NIC's TAP backend (or the internal switch and another guest) in namespace B; ARP,
/// IPv6 neighbour discovery, ping both ways, iperf3 and jumbo frames between them. Every address lives in the
/// test's own namespaces, so no traffic reaches this machine's network.
@Suite(.serialized)
struct NamespaceProcessTests {
    /// Brings `interface` up in `ns` with 10.78.`net`.`host`/24 and fd00:78:`net`::`host`/64.
    static func configure(_ ns: NetworkNamespace, _ interface: String, net: Int, host: Int, mtu: Int) throws {
        try ns.ip("link set lo up")
        try ns.ip("link set \(interface) mtu \(mtu) up")
        try ns.ip("addr add 10.78.\(net).\(host)/24 dev \(interface)")
        try ns.ip("-6 addr add fd00:78:\(net)::\(host)/64 dev \(interface) nodad")
    }

    static func ping(_ ns: NetworkNamespace, _ arguments: String) -> Bool {
        ns.run(["ping", "-q"] + arguments.split(separator: " ").map(String.init)) == 0
    }

    /// iperf3 for ~3 s from `client` to a server in `server` at `address`; the receiver's Mbit/s.
    static func iperf(_ lab: NamespaceLab, server: NetworkNamespace, client: NetworkNamespace, address: String,
                      reverse: Bool = false) throws -> Double? {
        try lab.iperf(server: server, client: client, address: address, reverse: reverse)
    }

    @Test func aGuestTAPAndTheHostsTAPBackendCarryARPNDPingIperfAndJumboFrames() throws {
        if let why = NamespaceLab.unavailable { print("skipped: \(why)"); return }
        let lab = try NamespaceLab()
        defer { lab.remove() }
        let a = try lab.namespace("guest"), b = try lab.namespace("host")
        let guestTAP = lab.interfaceName("g"), hostTAP = lab.interfaceName("h")

        let host = try lab.vmbus("host", ["host", "--socket", lab.socket, "--echo", "0", "--nic", "tap:\(hostTAP),mtu=9000"])
        try host.waitForOutput("listening on")
        try lab.move(hostTAP, to: b)
        let guest = try lab.vmbus("guest", ["guest", "--socket", lab.socket, "--tap", guestTAP])
        let listing = try guest.waitForOutput("channels:")
        try lab.move(guestTAP, to: a)

        // The guest's TAP carries the NIC's MAC address and MTU.
        let mac = NamespaceLab.mac(of: guestTAP, in: listing)
        #expect(mac != nil, "guest listing: \(listing)")
        let link = a.output(["ip", "-o", "link", "show", guestTAP]) ?? ""
        if let mac { #expect(link.contains("link/ether \(mac)"), "\(link)") }
        #expect(link.contains("mtu 9000"), "\(link)")

        try Self.configure(a, guestTAP, net: 0, host: 2, mtu: 1500)
        try Self.configure(b, hostTAP, net: 0, host: 1, mtu: 1500)
        #expect(Self.ping(a, "-c 3 -i 0.2 -W 2 10.78.0.1"), "ping guest → host")
        #expect(Self.ping(b, "-c 3 -i 0.2 -W 2 10.78.0.2"), "ping host → guest")
        let neighbour = a.output(["ip", "neigh", "show", "10.78.0.1"]) ?? ""
        #expect(neighbour.contains("lladdr"), "ARP resolved: \(neighbour)")
        #expect(Self.ping(a, "-6 -c 3 -i 0.2 -W 2 fd00:78:0::1"), "ping6 guest → host (neighbour discovery)")
        #expect(Self.ping(b, "-6 -c 3 -i 0.2 -W 2 fd00:78:0::2"), "ping6 host → guest")
        // The host TAP's link-local address, once duplicate address detection (over the NIC too) is done.
        var linkLocal: String?
        try eventually("a link-local address on \(hostTAP)") {
            let out = b.output(["ip", "-6", "-o", "addr", "show", "dev", hostTAP, "scope", "link"]) ?? ""
            guard !out.contains("tentative"), let r = out.ranges(of: "inet6 ").first else { return false }
            linkLocal = String(out[r.upperBound...].prefix { $0 != "/" })
            return true
        }
        if let linkLocal { #expect(Self.ping(a, "-6 -c 3 -i 0.2 -W 2 \(linkLocal)%\(guestTAP)"), "ping6 to \(linkLocal)") }

        let up = try Self.iperf(lab, server: b, client: a, address: "10.78.0.1")
        let down = try Self.iperf(lab, server: b, client: a, address: "10.78.0.1", reverse: true)
        print("iperf3 MTU 1500: guest → host \(up.map { "\($0)" } ?? "?") Mbit/s, host → guest \(down.map { "\($0)" } ?? "?") Mbit/s")
        #expect((up ?? 0) > 0 && (down ?? 0) > 0, "iperf3 reported throughput both ways")
        // TSO over IPv6 as well: the guest's kernel hands its TAP 64 KiB segments, the host's kernel takes them.
        let up6 = try Self.iperf(lab, server: b, client: a, address: "fd00:78:0::1")
        print("iperf3 MTU 1500 IPv6: guest → host \(up6.map { "\($0)" } ?? "?") Mbit/s")
        #expect((up6 ?? 0) > 0)
        // The guest's TSO reached the host's TAP as GSO frames, not cut by NetVSP.
        let nics = try lab.vmbus("nic-list", ["nic", "list", "--socket", lab.socket])
        #expect(nics.wait(seconds: 30) == .exited(0), "\(nics.stderr)")
        let passed = nics.stdout.ranges(of: "large_sends_passed=").first.map { Int(nics.stdout[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 0
        #expect(passed > 1000, "\(nics.stdout)")
        // And the host kernel's GSO frames reached the guest as RSC packets.
        let coalesced = nics.stdout.ranges(of: "rx_coalesced=").first.map { Int(nics.stdout[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 0
        #expect(coalesced > 1000, "\(nics.stdout)")

        try a.ip("link set \(guestTAP) mtu 9000")
        try b.ip("link set \(hostTAP) mtu 9000")
        #expect(Self.ping(a, "-M do -s 8972 -c 3 -i 0.2 -W 2 10.78.0.1"), "jumbo ping, don't fragment, guest → host")
        #expect(Self.ping(b, "-M do -s 8972 -c 3 -i 0.2 -W 2 10.78.0.2"), "jumbo ping host → guest")
        let jumbo = try Self.iperf(lab, server: b, client: a, address: "10.78.0.1")
        print("iperf3 MTU 9000: guest → host \(jumbo.map { "\($0)" } ?? "?") Mbit/s")
        #expect((jumbo ?? 0) > 0)

        #expect(guest.poll() == nil && host.poll() == nil, "both still running")
        guest.signal(SIGTERM)
        #expect(guest.wait(seconds: 15) == .exited(0), "guest: \(guest.stderr)")
        #expect(guest.stdout.contains("unloaded cleanly"))
    }

    @Test func twoGuestsOnTheHostsInternalSwitchReachEachOther() throws {
        if let why = NamespaceLab.unavailable { print("skipped: \(why)"); return }
        let lab = try NamespaceLab()
        defer { lab.remove() }
        let a = try lab.namespace("one"), c = try lab.namespace("two")
        let tapA = lab.interfaceName("a"), tapC = lab.interfaceName("c")
        let host = try lab.vmbus("host", ["host", "--socket", lab.socket, "--echo", "0", "--nic", "switch:lab"])
        try host.waitForOutput("listening on")
        let one = try lab.vmbus("guest1", ["guest", "--socket", lab.socket, "--tap", tapA])
        let listingA = try one.waitForOutput("channels:")
        let two = try lab.vmbus("guest2", ["guest", "--socket", lab.socket, "--tap", tapC])
        let listingC = try two.waitForOutput("channels:")
        let macA = NamespaceLab.mac(of: tapA, in: listingA), macC = NamespaceLab.mac(of: tapC, in: listingC)
        #expect(macA != nil && macC != nil && macA != macC, "distinct MACs: \(macA ?? "?"), \(macC ?? "?")")
        try lab.move(tapA, to: a)
        try lab.move(tapC, to: c)
        try Self.configure(a, tapA, net: 1, host: 1, mtu: 1500)
        try Self.configure(c, tapC, net: 1, host: 2, mtu: 1500)
        #expect(Self.ping(a, "-c 3 -i 0.2 -W 2 10.78.1.2"), "guest 1 → guest 2")
        #expect(Self.ping(c, "-c 3 -i 0.2 -W 2 10.78.1.1"), "guest 2 → guest 1")
        #expect(Self.ping(a, "-6 -c 3 -i 0.2 -W 2 fd00:78:1::2"), "ping6 across the switch")
        let rate = try Self.iperf(lab, server: c, client: a, address: "10.78.1.2")
        print("iperf3 guest → guest over the internal switch: \(rate.map { "\($0)" } ?? "?") Mbit/s")
        #expect((rate ?? 0) > 0)
    }

    @Test func vmbusUpPresentsATAPNICAndTwoSwitchNICsAsTAPs() throws {
        if let why = NamespaceLab.unavailable { print("skipped: \(why)"); return }
        let lab = try NamespaceLab()
        defer { lab.remove() }
        let a = try lab.namespace("upg"), b = try lab.namespace("uph"), c = try lab.namespace("ups1"), d = try lab.namespace("ups2")
        let guestTAP = lab.interfaceName("g"), hostTAP = lab.interfaceName("h")
        let one = lab.interfaceName("s"), two = lab.interfaceName("t")
        let up = try lab.vmbus("up", ["up", "--data-dir", lab.directory.path + "/data", "--memory", "128", "--echo", "0",
                                      "--nic", "tap:\(hostTAP)", "--nic", "switch", "--nic", "switch",
                                      "--tap", guestTAP, "--tap", one, "--tap", two])
        let out = try up.waitForOutput("channels:", seconds: 30)
        for t in [guestTAP, one, two] { #expect(NamespaceLab.mac(of: t, in: out) != nil, "\(t) in \(out)") }
        try lab.move(hostTAP, to: b)
        try lab.move(guestTAP, to: a)
        try lab.move(one, to: c)
        try lab.move(two, to: d)
        try Self.configure(a, guestTAP, net: 2, host: 2, mtu: 1500)
        try Self.configure(b, hostTAP, net: 2, host: 1, mtu: 1500)
        try Self.configure(c, one, net: 3, host: 1, mtu: 1500)
        try Self.configure(d, two, net: 3, host: 2, mtu: 1500)
        #expect(Self.ping(a, "-c 3 -i 0.2 -W 2 10.78.2.1"), "guest NIC → host TAP")
        #expect(Self.ping(b, "-c 3 -i 0.2 -W 2 10.78.2.2"), "host TAP → guest NIC")
        #expect(Self.ping(c, "-c 3 -i 0.2 -W 2 10.78.3.2"), "switch NIC 1 → switch NIC 2")
        #expect(Self.ping(d, "-6 -c 3 -i 0.2 -W 2 fd00:78:3::1"), "ping6 switch NIC 2 → switch NIC 1")
        up.signal(SIGTERM)
        #expect(up.wait(seconds: 20) == .exited(0), "\(up.stdout)\n\(up.stderr)")
        #expect(up.stdout.hasSuffix("stopped cleanly\n"))
    }
}
