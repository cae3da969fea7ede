import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// What a namespace test or benchmark of the `vmbus` processes needs: a directory for their output,
/// namespaces of its own and unique interface names. Everything it made goes in ``remove()``: processes first (their TAPs go
/// with them), then the namespaces.
public final class NamespaceLab {
    public let directory: TemporaryDirectory
    public private(set) var namespaces: [NetworkNamespace] = []
    public private(set) var processes: [ChildProcess] = []
    private static let names = Condition(0)

    public var socket: String { directory.path + "/h.sock" }

    /// Why these tests cannot run here (not root, no /dev/net/tun, a tool missing), or nil.
    public static var unavailable: String? {
        if let why = NetworkNamespace.unavailable { return why }
        for tool in ["ping", "iperf3"] where !toolInstalled(tool) { return "no \(tool) (Scripts/install-test-packages)" }
        return nil
    }

    public init() throws { directory = try TemporaryDirectory("vmbus-net") }

    public func remove() {
        for p in processes { p.signal(SIGTERM) }
        for p in processes where p.wait(seconds: 10) == nil { p.kill9() }
        processes = []
        for ns in namespaces { ns.remove() }
        namespaces = []
        directory.remove()
    }

    public func namespace(_ label: String) throws -> NetworkNamespace {
        let ns = try NetworkNamespace(label)
        namespaces.append(ns)
        return ns
    }

    /// A TAP name no other test uses (at most 15 bytes).
    public func interfaceName(_ label: String) -> String {
        let n = Self.names.update { c -> Int in c += 1; return c }
        return "vm\(label.prefix(2))\(getpid() % 100_000)x\(n)"
    }

    public func vmbus(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        let p = try ChildProcess(vmbusExecutable, arguments, directory: directory.path, name: name)
        processes.append(p)
        return p
    }

    /// A process in `ns` (it dies with the test like the others).
    public func spawn(in ns: NetworkNamespace, _ name: String, _ command: [String]) throws -> ChildProcess {
        let p = try ChildProcess("/usr/sbin/ip", ["netns", "exec", ns.name] + command, directory: directory.path, name: name)
        processes.append(p)
        return p
    }

    /// Waits until the interface shows up in this (the test's) namespace, then moves it into `ns`.
    public func move(_ interface: String, to ns: NetworkNamespace) throws {
        try eventually("\(interface) appears") { toolOutput(["ip", "link", "show", interface]) != nil }
        try ns.adopt(interface)
    }

    /// A veth pair with one end in each namespace (deleted with either namespace).
    public func veth(_ a: NetworkNamespace, _ nameA: String, _ b: NetworkNamespace, _ nameB: String) throws {
        guard runTool(["ip", "link", "add", nameA, "type", "veth", "peer", "name", nameB]) == 0 else {
            throw ProcessTestError("ip link add \(nameA) type veth failed")
        }
        try a.adopt(nameA)
        try b.adopt(nameB)
    }

    /// iperf3 (TCP) for `seconds` from `client` to a one-off server in `server` at `address`; the receiver's
    /// Mbit/s, or nil if iperf3 reported none. `reverse` makes the server send (`-R`).
    public func iperf(server: NetworkNamespace, client: NetworkNamespace, address: String, seconds: Int = 3,
                      reverse: Bool = false) throws -> Double? {
        let s = try spawn(in: server, "iperf3-server\(reverse ? "-r" : "")", ["iperf3", "-s", "-1", "--forceflush", "-B", address])
        try s.waitForOutput("Server listening")
        let out = client.output(["iperf3", "-c", address, "-t", "\(seconds)", "-f", "m"] + (reverse ? ["-R"] : []))
        _ = s.wait(seconds: Double(seconds) + 7)
        return out.flatMap(Self.receiverMbits)
    }

    /// "  NAME: MAC xx:…, MTU …" in a guest's listing → the MAC.
    public static func mac(of interface: String, in output: String) -> String? {
        for line in output.lines where line.hasPrefix("  \(interface): MAC ") {
            return String(line.dropFirst("  \(interface): MAC ".count).prefix(17))
        }
        return nil
    }

    /// The throughput iperf3 printed on its receiver line ("… 1.23 Gbits/sec … receiver"), in Mbit/s.
    public static func receiverMbits(_ output: String) -> Double? {
        for line in output.lines.reversed() where line.hasSuffix("receiver") {
            let words = line.split(separator: " ")
            guard let u = words.firstIndex(where: { $0.hasSuffix("bits/sec") }), u > 0, let v = Double(words[u - 1]) else { continue }
            switch words[u].first {
            case "G": return v * 1000
            case "M": return v
            case "K": return v / 1000
            default: return v / 1e6
            }
        }
        return nil
    }
}
