import CVMBusShims

#if canImport(Glibc)
import Glibc
#endif

/// Why the Linux ring harness could not be built.
struct ForeignRingUnavailable: Error, CustomStringConvertible {
    let description: String
}

/// Builds and runs Scripts/foreign-ring (our harness.c linked with Linux 6.12's tools/hv/vmbus_bufring.c,
/// extracted at test time from Debian's linux-source-6.12; nothing from Linux is committed).
enum ForeignRingHarness {
    /// The repository root, from this file's path (Tests/VMBusRingTests/<file>).
    static let repositoryRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// Built once per test process.
    static let executable: Result<String, ForeignRingUnavailable> = build()

    private static func build() -> Result<String, ForeignRingUnavailable> {
        let work = "/tmp/swift-vmbus-foreign-ring-\(getuid())"
        let log = "\(work).build.log"
        guard let child = Subprocess.spawn(
            "/bin/sh", ["\(repositoryRoot)/Scripts/foreign-ring/build.sh", work], output: log)
        else { return .failure(.init(description: "cannot start /bin/sh: errno \(errno)")) }
        let status = child.wait(timeoutNanoseconds: 300_000_000_000)
        let output = Subprocess.read(log)
        switch status {
        case 0:
            let lines = output.split(separator: "\n")
            guard let path = lines.last, path.hasPrefix("/") else {
                return .failure(.init(description: "build.sh printed no harness path:\n\(output)"))
            }
            return .success(String(path))
        case 3:
            return .failure(.init(description: """
                The foreign-ring interop test needs Linux 6.12's tools/hv/vmbus_bufring.c from Debian's \
                linux-source-6.12 package, which is not installed. Run `apt-get install -y linux-source-6.12` \
                (CI installs it). build.sh said:
                \(output)
                """))
        default:
            return .failure(.init(description: "Scripts/foreign-ring/build.sh failed (status \(status.map(String.init) ?? "timeout")):\n\(output)"))
        }
    }
}

/// A child process started with posix_spawn; stdout and stderr go to a file.
struct Subprocess {
    let pid: pid_t

    static func spawn(_ path: String, _ arguments: [String], output: String) -> Subprocess? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { posix_spawn(&pid, path, &actions, nil, $0.baseAddress!, environ) }
        guard rc == 0 else { errno = rc; return nil }
        return Subprocess(pid: pid)
    }

    /// The exit status if the child has exited (reaping it), nil if it still runs. -1 for a signal.
    func poll() -> Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1
    }

    /// Waits for the exit status; on timeout kills this child (only it) and returns nil.
    func wait(timeoutNanoseconds: UInt64) -> Int32? {
        let deadline = vmbus_shim_monotonic_ns() + timeoutNanoseconds
        while vmbus_shim_monotonic_ns() < deadline {
            if let s = poll() { return s }
            usleep(2_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return nil
    }

    static func read(_ path: String) -> String {
        guard let f = fopen(path, "r") else { return "" }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
