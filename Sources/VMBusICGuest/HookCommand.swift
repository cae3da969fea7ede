#if canImport(Glibc)
import Glibc
#endif
import VMBusTransport

/// A command the guest runs for an integration service (a VSS freeze or thaw hook, a shutdown action):
/// argv, no shell. It succeeds when it exits 0 within its timeout; past it, it is killed.
public struct HookCommand: Sendable, Equatable {
    public var arguments: [String]
    public var timeoutNanoseconds: UInt64

    public init(_ arguments: [String], timeoutNanoseconds: UInt64 = 60_000_000_000) {
        self.arguments = arguments
        self.timeoutNanoseconds = timeoutNanoseconds
    }

    /// `sh -c TEXT`: for a hook given on the command line as one string.
    public static func shell(_ text: String, timeoutNanoseconds: UInt64 = 60_000_000_000) -> HookCommand {
        HookCommand(["/bin/sh", "-c", text], timeoutNanoseconds: timeoutNanoseconds)
    }

    /// Runs it and waits. Returns nil on success, else why not.
    public func run() -> String? {
        guard let first = arguments.first else { return "empty command" }
        var pid = pid_t()
        var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let rc = posix_spawnp(&pid, first, &actions, nil, &cArgs, environ)
        guard rc == 0 else { return "cannot run \(first): \(String(cString: strerror(rc)))" }
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return "waitpid: \(String(cString: strerror(errno)))" }
            if monotonicNanoseconds() >= deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return "\(first) did not finish in \(timeoutNanoseconds / 1_000_000_000) s"
            }
            sleepNanoseconds(10_000_000)
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let signal = status & 0x7F
        if signal != 0 { return "\(first) was killed by signal \(signal)" }
        let code = (status >> 8) & 0xFF
        return code == 0 ? nil : "\(first) exited with status \(code)"
    }
}
