#if canImport(Glibc)
import Glibc
#endif
import VMBusICProtocol
import VMBusWire

/// The file-copy service: copies a host file into the guest (START_FILE_COPY, WRITE_TO_FILE fragments,
/// COMPLETE_FCOPY; CANCEL_FCOPY when anything fails after the start).
public struct HostFileCopy: Sendable {
    public let channel: ICHostChannel
    public static let defaultTimeoutNanoseconds: UInt64 = 35_000_000_000

    public init(channel: ICHostChannel) { self.channel = channel }

    /// What a copy did: the status of the step that failed (or of COMPLETE), and the bytes the guest took.
    public struct Outcome: Equatable, Sendable {
        public var status: ICStatus
        public var failedStep: FCopyOperation?
        public var bytesWritten: UInt64

        public init(status: ICStatus, failedStep: FCopyOperation?, bytesWritten: UInt64) {
            self.status = status
            self.failedStep = failedStep
            self.bytesWritten = bytesWritten
        }
    }

    /// Copies the host file at `source` to `destination` in the guest (an absolute guest path: the file
    /// name is its last component, the directory the rest).
    public func copy(source: String, destination: String, flags: FCopyFlags,
                     timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds) throws(ICHostError) -> Outcome {
        guard let slash = destination.lastIndex(of: "/"), destination.hasPrefix("/") else {
            throw .invalidRequest("the destination must be an absolute guest path: \(destination)")
        }
        let name = String(destination[destination.index(after: slash)...])
        // The directory ends in '/': hv_fcopy_daemon's CREATE_PATH creates only components a '/' follows.
        let directory = String(destination[...slash])
        guard !name.isEmpty else { throw .invalidRequest("the destination names no file: \(destination)") }
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .invalidRequest("cannot open \(source): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw .invalidRequest("\(source) is not a regular file")
        }
        let size = UInt64(max(0, st.st_size))
        let start: FCopyStart
        do throws(WireError) {
            start = try FCopyStart(fileName: name, pathName: directory, encoding: .utf16LE, copyFlags: flags, fileSize: size)
        } catch {
            throw .invalidRequest("\(error)")
        }
        let status = try step(start.wireBytes, timeoutNanoseconds)
        guard status == .ok else { return Outcome(status: status, failedStep: .startFileCopy, bytesWritten: 0) }
        var offset: UInt64 = 0
        var chunk = [UInt8](repeating: 0, count: FCopyData.dataFragment)
        do throws(ICHostError) {
            while true {
                let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                guard n >= 0 else {
                    _ = try? step(FCopyHeader(operation: .cancelFCopy).wireBytes, timeoutNanoseconds)
                    throw .invalidRequest("reading \(source): \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                let fragment: FCopyData
                do throws(WireError) { fragment = try FCopyData(offset: offset, data: Array(chunk[0..<n])) } catch {
                    throw .invalidRequest("\(error)")
                }
                let s = try step(fragment.wireBytes, timeoutNanoseconds)
                guard s == .ok else {
                    _ = try? step(FCopyHeader(operation: .cancelFCopy).wireBytes, timeoutNanoseconds)
                    return Outcome(status: s, failedStep: .writeToFile, bytesWritten: offset)
                }
                offset += UInt64(n)
            }
        } catch {
            if case .invalidRequest = error {} else {
                _ = try? step(FCopyHeader(operation: .cancelFCopy).wireBytes, timeoutNanoseconds)
            }
            throw error
        }
        let done = try step(FCopyHeader(operation: .completeFCopy).wireBytes, timeoutNanoseconds)
        return Outcome(status: done, failedStep: done == .ok ? nil : .completeFCopy, bytesWritten: offset)
    }

    private func step(_ body: [UInt8], _ timeout: UInt64) throws(ICHostError) -> ICStatus {
        try channel.transact(.fcopy, body: body, timeoutNanoseconds: timeout).header.status
    }
}
