#if canImport(Glibc)
import Glibc
#endif
import VMBusTestSupport
import VMBusTransport

/// Why a process test could not go on.
public struct ProcessTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A child process started with posix_spawn: stdout and stderr go to files (read at any time), stdin is
/// /dev/null, every wait is bounded, and a process still running when the object goes away is killed.
///
/// A child also dies with the test process: it starts under `setpriv --pdeathsig KILL`, which sets
/// PR_SET_PDEATHSIG and then execs the program (same pid). A test that crashes therefore leaves no
/// `vmbus host` behind holding the test runner's pipes, which would hang `swift test` for good.
public final class ChildProcess {
    public let pid: pid_t
    public let name: String
    public let stdoutPath: String
    public let stderrPath: String
    public private(set) var status: Termination?

    public enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)
        public var description: String {
            switch self {
            case .exited(let c): return "exit \(c)"
            case .signalled(let s): return "signal \(s)"
            }
        }
    }

    /// Starts `executable` with `arguments`; output files are `<directory>/<name>.out` and `.err`.
    public init(_ executable: String, _ arguments: [String], directory: String, name: String,
         environment extra: [String] = []) throws {
        self.name = name
        stdoutPath = "\(directory)/\(name).out"
        stderrPath = "\(directory)/\(name).err"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        // Default dispositions and an empty mask, whatever the test runner set up for itself.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var env: [String] = []
        var e: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = environ
        while let p = e.pointee {
            let s = String(cString: p)
            if !s.hasPrefix("SWIFT_BACKTRACE=") { env.append(s) }
            e = e.successor()
        }
        // A crashing child must die at once, not sit in the backtracer while a test waits for it.
        env.append("SWIFT_BACKTRACE=enable=no")
        env += extra

        let command = access(Self.setpriv, X_OK) == 0
            ? [Self.setpriv, "--pdeathsig", "KILL", "--", executable] + arguments
            : [executable] + arguments
        let argv = command.map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, command[0], &actions, &attr, argv, envp)
        guard r == 0 else { throw ProcessTestError("posix_spawn \(command[0]): error \(r)") }
        self.pid = pid
    }

    /// util-linux's setpriv (Debian: always installed), which sets the parent-death signal before exec.
    public static let setpriv = "/usr/bin/setpriv"

    deinit { kill9() }

    public var stdout: String { readTextFile(stdoutPath) }
    public var stderr: String { readTextFile(stderrPath) }

    /// Whether the process has not been reaped yet (it may be a zombie about to be).
    public var isRunning: Bool {
        _ = poll()
        return status == nil
    }

    /// Reaps the process if it has ended.
    @discardableResult
    public func poll() -> Termination? {
        guard status == nil else { return status }
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        guard r == pid else { return nil }
        status = (raw & 0x7F) == 0 ? .exited((raw >> 8) & 0xFF) : .signalled(raw & 0x7F)
        return status
    }

    /// Waits up to `seconds` for the process to end (stretched under a sanitizer, which slows the child too).
    @discardableResult
    public func wait(seconds: Double) -> Termination? {
        let deadline = monotonicNanoseconds() + UInt64(Sanitizer.seconds(seconds) * 1e9)
        while poll() == nil {
            if monotonicNanoseconds() >= deadline { return nil }
            sleepNanoseconds(2_000_000)
        }
        return status
    }

    public func signal(_ s: Int32) {
        guard status == nil else { return }
        Glibc.kill(pid, s)
    }

    /// SIGKILL and reap.
    public func kill9() {
        guard status == nil else { return }
        Glibc.kill(pid, SIGKILL)
        wait(seconds: 10)
    }

    /// Waits until `stream` contains `text` (returns the stream's contents), failing early if the process
    /// exits first.
    @discardableResult
    public func waitForOutput(_ text: String, stderr useStderr: Bool = false, count: Int = 1,
                       seconds: Double = 30) throws -> String {
        let deadline = monotonicNanoseconds() + UInt64(Sanitizer.seconds(seconds) * 1e9)
        while true {
            let out = useStderr ? stderr : stdout
            if out.occurrences(of: text) >= count { return out }
            if let s = poll() {
                let again = useStderr ? self.stderr : self.stdout
                if again.occurrences(of: text) >= count { return again }
                throw ProcessTestError("\(name) ended (\(s)) before printing '\(text)'\n--- stdout:\n\(stdout)\n--- stderr:\n\(self.stderr)")
            }
            if monotonicNanoseconds() >= deadline {
                throw ProcessTestError("\(name) did not print '\(text)' within \(seconds) s\n--- stdout:\n\(stdout)\n--- stderr:\n\(self.stderr)")
            }
            sleepNanoseconds(5_000_000)
        }
    }

    /// Open descriptors of the process (`/proc/<pid>/fd`).
    public var descriptorCount: Int { listDirectory("/proc/\(pid)/fd").count }

    /// Its memory mappings (`/proc/<pid>/maps`).
    public var mappings: String { readTextFile("/proc/\(pid)/maps") }
}

extension String {
    public func occurrences(of needle: String) -> Int {
        needle.isEmpty ? 0 : ranges(of: needle).count
    }

    /// Lines without their terminators (a trailing empty line is dropped).
    public var lines: [String] {
        var l = split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if l.last == "" { l.removeLast() }
        return l
    }
}

public func readTextFile(_ path: String) -> String {
    String(decoding: fileBytes(path), as: UTF8.self)
}

public func listDirectory(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// A fresh directory under /tmp, removed with its files by ``remove()``.
public final class TemporaryDirectory {
    public let path: String
    public init(_ prefix: String = "vmbus-cli") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ProcessTestError("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: p)
    }

    public func remove() { removeTree(path) }

    private func removeTree(_ p: String) {
        var st = stat()
        guard lstat(p, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            for name in listDirectory(p) { removeTree("\(p)/\(name)") }
            rmdir(p)
        } else {
            unlink(p)
        }
    }
}

/// The `vmbus` executable built next to this test bundle.
public let vmbusExecutable: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    var directory = exe
    while let last = directory.last, last != "/" { directory.removeLast() }
    return directory + "vmbus"
}()

/// Waits up to `seconds` for `condition`.
public func eventually(_ what: String, seconds: Double = 10, _ condition: () -> Bool) throws {
    let deadline = monotonicNanoseconds() + UInt64(Sanitizer.seconds(seconds) * 1e9)
    while !condition() {
        guard monotonicNanoseconds() < deadline else { throw ProcessTestError("timed out after \(seconds) s: \(what)") }
        sleepNanoseconds(5_000_000)
    }
}
