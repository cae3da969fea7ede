import CFuse3
import VMBusStorVSC
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// Errors of mounting the disk directory.
public enum FUSEMountError: Error, Equatable, Sendable, CustomStringConvertible {
    case setupFailed(String)
    public var description: String {
        switch self { case .setupFailed(let s): return "FUSE: \(s)" }
    }
}

/// A libfuse 3 mount: a file system of ours served to the Linux kernel at a directory. libfuse's multithreaded
/// loop serves the kernel's requests, so parallel requests reach us in parallel; each runs on its libfuse thread.
/// What is mounted: the guest's disks (``FUSEDiskDirectory``, files that `losetup` turns into block devices) or
/// the util devices for Linux's daemons (``DevVMBusDirectory``).
public final class FUSEMount: @unchecked Sendable {
    public let mountpoint: String
    private let fuse: OpaquePointer
    private let loopDone = Latch()
    private let stopped = Condition(false)
    private var argv: [UnsafeMutablePointer<CChar>?]
    /// libfuse worker threads at most: the kernel's parallel requests reach StorVSC in parallel up to this many
    /// (libfuse's own default is 10).
    public static let maxWorkers = 64

    /// Mounts `directory` at `mountpoint` (an existing, empty directory) and starts serving.
    public convenience init(directory: FUSEDiskDirectory, at mountpoint: String) throws(FUSEMountError) {
        try self.init(serving: directory, operations: FUSEDiskOperations.table, fsname: "vmbus", at: mountpoint)
    }

    /// Mounts a file system whose callbacks (`operations`) find `object` as libfuse's private data.
    /// `extraOptions` are more `-o` options (e.g. "intr", so that a blocked read learns of a signal).
    init(serving object: AnyObject & Sendable, operations: fuse_operations, fsname: String, extraOptions: String? = nil,
         at mountpoint: String) throws(FUSEMountError) {
        self.mountpoint = mountpoint
        let options = "fsname=\(fsname),subtype=\(fsname),default_permissions" + (extraOptions.map { "," + $0 } ?? "")
        let words: [String] = ["vmbus", "-o", options]
        argv = words.map { w in w.withCString { strdup($0) } }
        var ops = operations
        let opaque = Unmanaged.passUnretained(object).toOpaque()
        let created: OpaquePointer? = argv.withUnsafeMutableBufferPointer { v in
            var args = fuse_args(argc: Int32(v.count), argv: v.baseAddress, allocated: 0)
            return vmbus_fuse_new(&args, &ops, opaque)
        }
        guard let created else {
            for a in argv { free(a) }
            throw .setupFailed("fuse_new failed")
        }
        fuse = created
        guard fuse_mount(fuse, mountpoint) == 0 else {
            fuse_destroy(fuse)
            for a in argv { free(a) }
            throw .setupFailed("cannot mount at \(mountpoint) (is /dev/fuse there, and the directory empty?)")
        }
        let f = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(fuse)))
        let done = loopDone
        // Keep the object alive while libfuse holds its pointer.
        let retained = Unmanaged.passRetained(object)
        guard startThread(name: "fuse-loop", {
            _ = vmbus_fuse_loop_mt(OpaquePointer(bitPattern: f), UInt32(FUSEMount.maxWorkers))
            retained.release()
            done.open()
        }) else {
            retained.release()
            fuse_unmount(fuse)
            fuse_destroy(fuse)
            for a in argv { free(a) }
            throw .setupFailed("cannot start the FUSE loop thread")
        }
    }

    /// Unmounts and waits for the loop to end. A loop device still attached to one of the files keeps the
    /// kernel's connection open: detach it first.
    public func stop(timeoutNanoseconds: UInt64 = 10_000_000_000) {
        guard stopped.update({ s -> Bool in defer { s = true }; return !s }) else { return }
        fuse_exit(fuse)
        fuse_unmount(fuse)
        if loopDone.wait(timeoutNanoseconds: timeoutNanoseconds) {
            fuse_destroy(fuse)
            for a in argv { free(a) }
        }
        // Else the loop thread still holds `fuse`: leak it rather than free what a thread uses.
    }
}
