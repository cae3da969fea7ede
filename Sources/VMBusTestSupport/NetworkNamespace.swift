import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace of the test's own (`ip netns add`), with a unique name, deleted by ``remove()``
/// (call it in a `defer`): the interfaces moved into it go with it, so traffic never reaches the machine's own
/// namespace.
public final class NetworkNamespace {
    public let name: String
    private var removed = false
    /// Suites run in parallel: the count is taken under a lock so no two namespaces get one name.
    private static let created = Condition(0)

    public init(_ label: String) throws {
        let n = Self.created.update { c -> Int in c += 1; return c }
        if n == 1 { Self.removeOrphans() }
        name = "vmbt-\(label)-\(getpid())-\(n)"
        guard runTool(["ip", "netns", "add", name]) == 0 else { throw ProcessTestError("ip netns add \(name) failed") }
    }

    deinit { remove() }

    /// Deletes namespaces that test processes no longer running left behind (a test process that crashed
    /// runs no `defer`).
    private static func removeOrphans() {
        for line in (toolOutput(["ip", "netns", "list"]) ?? "").lines {
            let name = line.split(separator: " ").first.map(String.init) ?? ""
            let parts = name.split(separator: "-")
            guard parts.count == 4, parts[0] == "vmbt", let pid = Int32(parts[2]), pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = runTool(["ip", "netns", "delete", name])
        }
    }

    public func remove() {
        guard !removed else { return }
        removed = true
        _ = runTool(["ip", "netns", "delete", name])
    }

    /// Runs `command` in the namespace; its exit status.
    @discardableResult
    public func run(_ command: [String]) -> Int32 { runTool(["ip", "netns", "exec", name] + command) }

    /// Runs `command` in the namespace; its output, or nil if it failed.
    public func output(_ command: [String]) -> String? { toolOutput(["ip", "netns", "exec", name] + command) }

    /// `ip …` in the namespace, throwing when it fails.
    public func ip(_ arguments: String) throws {
        let words = arguments.split(separator: " ").map(String.init)
        guard run(["ip"] + words) == 0 else { throw ProcessTestError("ip \(arguments) in \(name) failed") }
    }

    /// Moves the interface `interface` of the test's namespace into this one.
    public func adopt(_ interface: String) throws {
        guard runTool(["ip", "link", "set", interface, "netns", name]) == 0 else {
            throw ProcessTestError("ip link set \(interface) netns \(name) failed")
        }
    }

    /// Why namespace tests cannot run here, or nil: they need root, /dev/net/tun and `ip`.
    public static var unavailable: String? {
        if getuid() != 0 { return "not root" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "no /dev/net/tun" }
        if !toolInstalled("ip") { return "no ip (iproute2)" }
        return nil
    }
}
