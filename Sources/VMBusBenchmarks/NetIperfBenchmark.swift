import VMBusTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// TCP through the whole network path between two namespaces, against the kernel's own shortest path between
/// two namespaces (a veth pair) in the same run: iperf3 from namespace G to namespace H, where G's interface is
/// the TAP `vmbus guest --tap` presents (NetVSC) and H's the TAP behind `vmbus host --nic tap:` (NetVSP). So a
/// frame goes TAP → NetVSC → rings → NetVSP → TAP, and the ratio ours/veth says what the stack costs against a
/// kernel-only path on the same CPUs.
///
/// Rounds interleave (ours then veth, then veth then ours, …) so the machine's fast and slow spells fall on both;
/// the ratio is per round, reported as median and spread. Both directions: guest → host (the guest's TAP
/// reader sends) and host → guest (`iperf3 -R`, NetVSP delivers).
enum NetIperfBenchmark {
    static var section: BenchmarkSection {
        BenchmarkSection(name: "net-iperf3", summary: "iperf3 TCP through TAP → NetVSC → NetVSP → TAP in two namespaces, against a veth pair") { context in
            if let why = unavailable {
                print("  skipped: \(why)")
                return
            }
            let rounds = context.scale < 1 ? 1 : 5
            let seconds = context.scale < 1 ? 1 : 3
            try run(&context, rounds: rounds, seconds: seconds)
        }
    }

    /// Why the section cannot run here, or nil: root, /dev/net/tun, ip, iperf3 and a built `vmbus`.
    static var unavailable: String? {
        if let why = NetworkNamespace.unavailable { return why }
        if !toolInstalled("iperf3") { return "no iperf3 (apt-get install -y iperf3)" }
        if access(vmbusExecutable, X_OK) != 0 {
            return "no \(vmbusExecutable) (swift build -c release --product vmbus)"
        }
        return nil
    }

    private struct Path {
        let label: String
        let server: NetworkNamespace
        let client: NetworkNamespace
        let address: String
    }

    private static func run(_ context: inout BenchmarkContext, rounds: Int, seconds: Int) throws {
        // Everything the lab made (processes, then namespaces with their interfaces) goes on every exit path;
        // the children also die with this process (ChildProcess starts them with PDEATHSIG).
        let lab = try NamespaceLab()
        defer { lab.remove() }
        let g = try lab.namespace("bg"), h = try lab.namespace("bh")
        let va = try lab.namespace("va"), vb = try lab.namespace("vb")
        let guestTAP = lab.interfaceName("g"), hostTAP = lab.interfaceName("h")
        let vethA = lab.interfaceName("a"), vethB = lab.interfaceName("b")

        let host = try lab.vmbus("host", ["host", "--socket", lab.socket, "--echo", "0", "--nic", "tap:\(hostTAP)"])
        try host.waitForOutput("listening on")
        try lab.move(hostTAP, to: h)
        let guest = try lab.vmbus("guest", ["guest", "--socket", lab.socket, "--tap", guestTAP])
        try guest.waitForOutput("channels:")
        try lab.move(guestTAP, to: g)
        try lab.veth(va, vethA, vb, vethB)
        try configure(g, guestTAP, "10.79.0.2")
        try configure(h, hostTAP, "10.79.0.1")
        try configure(va, vethA, "10.79.1.2")
        try configure(vb, vethB, "10.79.1.1")
        // Neighbours resolved and both paths carrying traffic before the first measured round.
        for (ns, peer) in [(g, "10.79.0.1"), (va, "10.79.1.1")] {
            try eventually("ping \(peer)", seconds: 10) { ns.output(["ping", "-q", "-c", "1", "-W", "1", peer]) != nil }
        }

        let ours = Path(label: "ours", server: h, client: g, address: "10.79.0.1")
        let veth = Path(label: "veth", server: vb, client: va, address: "10.79.1.1")
        for reverse in [false, true] {
            var mine: [Double] = [], theirs: [Double] = [], ratios: [Double] = []
            for round in 0..<rounds {
                let order = round % 2 == 0 ? [ours, veth] : [veth, ours]
                var got: [String: Double] = [:]
                for path in order {
                    guard let mbits = try lab.iperf(server: path.server, client: path.client, address: path.address,
                                                    seconds: seconds, reverse: reverse), mbits > 0 else {
                        context.require(false, "net-iperf3: iperf3 over \(path.label) reported no throughput")
                        return
                    }
                    got[path.label] = mbits
                }
                let a = got["ours"] ?? 0, b = got["veth"] ?? 1
                mine.append(a)
                theirs.append(b)
                ratios.append(a / b)
            }
            let direction = reverse ? "host→guest" : "guest→host"
            context.row("veth", "\(format(ImageBenchmarks.median(theirs) / 1000, 2)) Gbit/s (\(direction), iperf3 over a veth pair, MTU 1500)")
            context.row("ours", "\(format(ImageBenchmarks.median(mine) / 1000, 2)) Gbit/s (\(direction), TAP → NetVSC → NetVSP → TAP, MTU 1500)")
            context.row("ratio", "ours/veth median \(format(ImageBenchmarks.median(ratios), 3)), spread \(format(ratios.min() ?? 0, 3))…\(format(ratios.max() ?? 0, 3)) over \(rounds) interleaved rounds of \(seconds) s")
        }
        if host.poll() != nil || guest.poll() != nil {
            context.require(false, "net-iperf3: vmbus host or guest exited during the run: \(host.stderr) \(guest.stderr)")
        }
    }

    /// Brings `interface` up in `ns` with `address`/24, MTU 1500.
    private static func configure(_ ns: NetworkNamespace, _ interface: String, _ address: String) throws {
        try ns.ip("link set lo up")
        try ns.ip("link set \(interface) mtu 1500 up")
        try ns.ip("addr add \(address)/24 dev \(interface)")
    }
}
