#if canImport(Glibc)
import Glibc
#endif
import Logging
import VMBusICProtocol
import VMBusTransport
import VMBusUtilTransport
import VMBusWire

/// File copy: hv_fcopy_daemon's semantics, or the daemon itself when one is attached (chosen per file at
/// START_FILE_COPY and kept until it completes or is cancelled).
///
/// The target is `path_name/file_name`. CREATE_PATH creates missing directories (0755); an existing file
/// without OVER_WRITE is HV_ERROR_ALREADY_EXISTS; the file is created 0744 and truncated. WRITE_TO_FILE
/// writes its fragment where it says, refused past the size START_FILE_COPY announced (Linux's daemon does
/// not check that); a full disk is HV_ERROR_DISK_FULL. CANCEL_FCOPY removes the partial file.
///
/// Paths are the host's: like the daemon we write where it says, under ``root`` ("/" by default). With
/// another root, a path that climbs out of it ("..") is refused.
public final class FileCopyResponder: ICResponder {
    public let service = ICService.fcopy
    public let mayBlock = true
    public let daemon: FCopyDaemonLink?
    public let root: String
    let logger: Logger

    private enum Transfer {
        case none
        case daemon
        case local(fd: Int32, path: String, size: UInt64)
    }
    private let transfer = Condition(Transfer.none)

    public init(daemon: FCopyDaemonLink? = nil, root: String = "/", logger: Logger = Logger(label: "vmbus.ic.fcopy")) {
        self.daemon = daemon
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.logger = logger
    }

    deinit { if case .local(let fd, _, _) = transfer.withLock({ $0 }) { close(fd) } }

    public func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply {
        guard request.header.icmsgtype == .fcopy, let message = try? FCopyMessage(body: request.body) else {
            return .failure(request)
        }
        return ICReply(request.linuxResponse(status: perform(message)))
    }

    func perform(_ message: FCopyMessage) -> ICStatus {
        switch message {
        case .startFileCopy(let start):
            abandon()
            if let daemon, let status = daemon.start(start) {
                if status == .ok { transfer.withLock { $0 = .daemon } }
                return status
            }
            return startLocal(start)
        case .writeToFile(let data):
            switch transfer.withLock({ $0 }) {
            case .none: return .fail
            case .daemon: return daemon?.write(data) ?? .fail
            case .local(let fd, _, let size):
                guard (try? data.checkWithin(fileSize: size)) != nil else { return .fail }
                let n = data.data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(data.offset)) }
                if n == data.data.count { return .ok }
                return n < 0 && (errno == ENOSPC || errno == EDQUOT) ? .errorDiskFull : .fail
            }
        case .completeFCopy, .cancelFCopy:
            let op = message.header.operation
            let current = transfer.withLock { t -> Transfer in defer { t = .none }; return t }
            switch current {
            case .none: return .fail
            case .daemon: return daemon?.finish(op) ?? .fail
            case .local(let fd, let path, _):
                let closed = close(fd) == 0
                if op == .cancelFCopy { unlink(path); return .ok }
                return closed ? .ok : .fail
            }
        }
    }

    /// A new START while a file is open: the old one was never completed; remove it, as a cancel would.
    private func abandon() {
        let current = transfer.withLock { t -> Transfer in defer { t = .none }; return t }
        switch current {
        case .none: break
        case .daemon: _ = daemon?.finish(.cancelFCopy)
        case .local(let fd, let path, _):
            close(fd)
            unlink(path)
        }
    }

    private func startLocal(_ start: FCopyStart) -> ICStatus {
        guard let name = try? start.fileNameString(encoding: .utf16LE),
              let directory = try? start.pathNameString(encoding: .utf16LE),
              !name.isEmpty, !name.contains("/"), let dir = mapped(directory) else {
            return .fail
        }
        if start.copyFlags.contains(.createPath) && !makeDirectories(dir) { return .fail }
        let path = dir == "/" ? "/" + name : dir + "/" + name
        var st = stat()
        if stat(path, &st) == 0 && !start.copyFlags.contains(.overWrite) { return .errorAlreadyExists }
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o744)
        guard fd >= 0 else {
            logger.info("file copy to \(path): \(String(cString: strerror(errno)))")
            return errno == ENOSPC ? .errorDiskFull : .fail
        }
        transfer.withLock { $0 = .local(fd: fd, path: path, size: start.fileSize) }
        return .ok
    }

    /// The host's directory under our root, or nil when it is not absolute or climbs out of the root.
    func mapped(_ directory: String) -> String? {
        guard directory.hasPrefix("/") else { return nil }
        let parts = directory.split(separator: "/")
        let path = "/" + parts.joined(separator: "/")
        if root == "/" { return path }
        guard !parts.contains("..") else { return nil }
        return parts.isEmpty ? root : root + path
    }

    private func makeDirectories(_ dir: String) -> Bool {
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { return false }
        }
        return true
    }
}
