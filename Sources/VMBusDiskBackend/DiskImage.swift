import CVMBusShims
import Glibc

/// The image formats a backend can be opened on, and recognising them by content.
public enum DiskImageFormat: String, Sendable, CaseIterable {
    case raw, vhd, vhdx

    /// What the file at `path` holds: a VHDX when it starts with "vhdxfile"; a VHD when its last sector or (a
    /// dynamic VHD's copy) its first is a VHD footer; either when its name ends in `.vhdx` or `.vhd` (so that a
    /// damaged signature is reported, not taken for raw data); otherwise raw, which has no signature. nil when it
    /// cannot be read.
    public static func detect(path: String) -> DiskImageFormat? {
        let fd = vmbus_shim_open(path, O_RDONLY, 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let size = UInt64(max(0, st.st_size))
        if path.lowercased().hasSuffix(".vhdx") { return .vhdx }
        if path.lowercased().hasSuffix(".vhd") { return .vhd }
        guard size >= UInt64(VHDFooter.size) else { return .raw }
        let tail = try? [UInt8].read(fd: fd, at: size / 512 * 512 - 512, count: 8, what: "footer")
        let head = try? [UInt8].read(fd: fd, at: 0, count: 8, what: "footer copy")
        if head == VHDXFileIdentifier.signature { return .vhdx }
        return tail == VHDFooter.cookie || head == VHDFooter.cookie ? .vhd : .raw
    }

    /// Opens `path` as this format.
    public func open(path: String, readOnly: Bool) throws(BackendError) -> any BlockBackend {
        switch self {
        case .raw: return try RawFileBackend(path: path, readOnly: readOnly)
        case .vhd: return try VHDBackend(path: path, readOnly: readOnly)
        case .vhdx: return try VHDXBackend(path: path, readOnly: readOnly)
        }
    }

    /// Bytes the file takes on disk (its allocated blocks).
    public static func allocatedBytes(path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(max(0, st.st_blocks)) * 512
    }
}
