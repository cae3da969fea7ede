#if canImport(Glibc)
import Glibc
#endif

// The foreign peers tests check our images and disks against (qemu-img, qemu-io, libvhdi's tools, nbdkit):
// run them, read what they print, and compare bytes without Foundation.

/// Whether `name` is installed in /usr/bin or /usr/sbin.
public func toolInstalled(_ name: String) -> Bool {
    access("/usr/bin/\(name)", X_OK) == 0 || access("/usr/sbin/\(name)", X_OK) == 0
}

/// Runs a command found on PATH and returns its exit status (127 when it cannot be started, 128 + N when killed
/// by signal N). Its output goes where ours goes.
public func runTool(_ arguments: [String]) -> Int32 {
    spawnTool(arguments, captureOutput: false).status
}

/// Runs a command and returns its standard output, or nil when it fails.
public func toolOutput(_ arguments: [String]) -> String? {
    let r = spawnTool(arguments, captureOutput: true)
    return r.status == 0 ? String(decoding: r.output, as: UTF8.self) : nil
}

private func spawnTool(_ arguments: [String], captureOutput: Bool) -> (status: Int32, output: [UInt8]) {
    guard !arguments.isEmpty else { return (127, []) }
    var pipeFDs: [Int32] = [-1, -1]
    if captureOutput { guard pipe(&pipeFDs) == 0 else { return (127, []) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if captureOutput {
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    }
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ) == 0
    var output: [UInt8] = []
    if captureOutput {
        close(pipeFDs[1])
        var chunk = [UInt8](repeating: 0, count: 65536)
        while spawned {
            let n = chunk.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            output += chunk[0..<n]
        }
        close(pipeFDs[0])
    }
    guard spawned else { return (127, []) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return ((status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
}

/// The bytes of the file at `path` (empty when it cannot be read).
public func fileBytes(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return bytes }
        bytes += chunk[0..<n]
    }
}

/// Writes `bytes` to `path` (created 0644 or truncated); returns whether all of it was written.
@discardableResult
public func writeFileBytes(_ path: String, _ bytes: [UInt8]) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        done += n
    }
    return true
}

/// Where two byte arrays first differ ("" when equal). Keeps failure messages short: a failed `#expect(a == b)`
/// on megabytes makes the test library compute a diff for minutes.
public func byteDifference(_ a: [UInt8], _ b: [UInt8]) -> String {
    guard a.count == b.count else { return "\(a.count) bytes against \(b.count)" }
    guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return "" }
    return "first difference at byte \(i): \(a[i]) against \(b[i])"
}

/// The virtual disk of a VHD or VHDX as libvhdi's vhdimount (FUSE) reads it: a second, foreign reader.
/// vhdimount shows a differencing image as its whole chain, vhdi1 (the base) to vhdiN (the image itself).
public func libvhdiContents(_ path: String) -> [UInt8]? {
    var template = Array("/tmp/vhdimount-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ p in p.baseAddress.flatMap { mkdtemp($0) } }) else { return nil }
    let mountPoint = String(cString: made)
    defer { rmdir(mountPoint) }
    guard runTool(["vhdimount", path, mountPoint]) == 0 else { return nil }
    // A busy mount refuses fusermount's unmount: detach it lazily then, rather than leave it behind.
    defer { if runTool(["fusermount3", "-u", mountPoint]) != 0 { _ = runTool(["umount", "-l", mountPoint]) } }
    var last = 0
    if let d = opendir(mountPoint) {
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix("vhdi"), let n = Int(name.dropFirst(4)) { last = max(last, n) }
        }
        closedir(d)
    }
    guard last > 0 else { return nil }
    return fileBytes(mountPoint + "/vhdi\(last)")
}

/// A server a test or benchmark runs (qemu-nbd, nbdkit), killed by ``stop()`` and, through setpriv's
/// `--pdeathsig`, with this process if it dies first.
public final class ToolServer: @unchecked Sendable {
    public let pid: pid_t
    /// Starts `arguments`; with `socket`, waits (up to 5 s) until that path exists.
    public init?(_ arguments: [String], socket: String? = nil) {
        let command = access("/usr/bin/setpriv", X_OK) == 0 ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] + arguments : arguments
        var pid: pid_t = 0
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawnp(&pid, command[0], nil, nil, argv, environ) == 0 else { return nil }
        self.pid = pid
        if let socket { for _ in 0..<200 where access(socket, F_OK) != 0 { usleep(25_000) } }
    }
    public func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
