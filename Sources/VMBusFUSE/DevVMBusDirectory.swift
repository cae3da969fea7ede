import CFuse3
import VMBusTransport
import VMBusUtilTransport

#if canImport(Glibc)
import Glibc
#endif

/// The directory `vmbus guest --dev-vmbus DIR` mounts: `hv_kvp`, `hv_vss` and `hv_fcopy`, each one of Linux's
/// util character devices (``UtilTransportDevice``), so that Debian's hyperv-daemons run unmodified where DIR
/// is bind-mounted at /dev/vmbus. Files are direct I/O (every read and write is one message, never cached) and
/// pollable, as the daemons need.
public final class DevVMBusDirectory: Sendable {
    public let devices: [UtilTransportDevice]

    public init(devices: [UtilTransportDevice]) { self.devices = devices }

    func device(_ path: UnsafePointer<CChar>) -> UtilTransportDevice? {
        let p = String(cString: path)
        guard p.hasPrefix("/") else { return nil }
        return devices.first { $0.name == p.dropFirst() }
    }

    /// Mounts the directory at `mountpoint`.
    public func mount(at mountpoint: String) throws(FUSEMountError) -> FUSEMount {
        try FUSEMount(serving: self, operations: DevVMBusOperations.table, fsname: "vmbus-dev", at: mountpoint)
    }

    /// A device this directory can serve: its poll handles are libfuse's (a device made without them never
    /// wakes a daemon's poll).
    public static func makeDevice(_ name: String) -> UtilTransportDevice {
        UtilTransportDevice(name: name, notifyPoll: notifyPoll, destroyPollHandle: destroyPollHandle)
    }

    /// A poll handle's notification and release, as libfuse wants them.
    public static let notifyPoll: @Sendable (UnsafeMutableRawPointer) -> Void = { vmbus_fuse_notify_poll($0) }
    public static let destroyPollHandle: @Sendable (UnsafeMutableRawPointer) -> Void = { vmbus_fuse_pollhandle_destroy($0) }
}

/// The util devices' `fuse_operations` callbacks.
enum DevVMBusOperations {
    static var table: fuse_operations {
        var ops = fuse_operations()
        ops.`init` = { _, config in
            // Interrupts reach us, so a read blocked for a message learns that its daemon was signalled.
            config?.pointee.intr = 1
            return vmbus_fuse_private_data()
        }
        ops.getattr = { path, st, _ in
            guard let path, let st else { return -EINVAL }
            st.pointee = stat()
            st.pointee.st_uid = getuid()
            st.pointee.st_gid = getgid()
            if String(cString: path) == "/" {
                st.pointee.st_mode = S_IFDIR | 0o755
                st.pointee.st_nlink = 2
                return 0
            }
            guard DevVMBusOperations.directory?.device(path) != nil else { return -ENOENT }
            st.pointee.st_mode = S_IFREG | 0o600
            st.pointee.st_nlink = 1
            return 0
        }
        ops.readdir = { path, buffer, filler, _, _, _ in
            guard let path, let filler, String(cString: path) == "/", let dir = DevVMBusOperations.directory else { return -ENOENT }
            _ = filler(buffer, ".", nil, 0, FUSE_FILL_DIR_PLUS)
            _ = filler(buffer, "..", nil, 0, FUSE_FILL_DIR_PLUS)
            for d in dir.devices { _ = filler(buffer, d.name, nil, 0, fuse_fill_dir_flags(0)) }
            return 0
        }
        ops.open = { path, fi in
            guard let path, let fi, let device = DevVMBusOperations.directory?.device(path) else { return -ENOENT }
            let r = device.open()
            guard r == 0 else { return r }
            // Every read and write reaches us whole, at any offset (hv_fcopy_daemon uses pread and pwrite).
            fi.pointee.direct_io = 1
            fi.pointee.keep_cache = 0
            return 0
        }
        ops.release = { path, _ in
            guard let path, let device = DevVMBusOperations.directory?.device(path) else { return -ENOENT }
            device.release()
            return 0
        }
        ops.read = { path, buffer, size, _, _ in
            guard let path, let buffer, let device = DevVMBusOperations.directory?.device(path) else { return -ENOENT }
            let n = device.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size),
                                interrupted: { fuse_interrupted() != 0 })
            return Int32(clamping: n)
        }
        ops.write = { path, buffer, size, _, _ in
            guard let path, let buffer, let device = DevVMBusOperations.directory?.device(path) else { return -ENOENT }
            return Int32(clamping: device.write(UnsafeRawBufferPointer(start: buffer, count: size)))
        }
        ops.truncate = { path, _, _ in
            guard let path, DevVMBusOperations.directory?.device(path) != nil else { return -ENOENT }
            return 0
        }
        ops.poll = { path, _, handle, revents in
            guard let path, let revents, let device = DevVMBusOperations.directory?.device(path) else { return -ENOENT }
            revents.pointee = UInt32(UInt16(bitPattern: device.poll(handle: handle.map { UnsafeMutableRawPointer($0) })))
            return 0
        }
        return ops
    }

    static var directory: DevVMBusDirectory? {
        guard let p = vmbus_fuse_private_data() else { return nil }
        return Unmanaged<DevVMBusDirectory>.fromOpaque(p).takeUnretainedValue()
    }
}
