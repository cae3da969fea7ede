#if canImport(Glibc)
import Glibc
#endif

/// Runs one of Debian's hyperv-daemons unmodified against our util devices: in a private mount namespace
/// where `devices` (a FUSE mount of ``DevVMBusDirectory``) is bound at /dev/vmbus over a private /dev, and
/// /var/lib (the KVP pools) is a private tmpfs, so nothing of the machine's is read or written.
public final class DaemonNamespace {
    public let process: ChildProcess

    /// Whether this machine can run the daemons here: root, FUSE, unshare and the daemons installed.
    public static var available: Bool {
        getuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0 && toolInstalled("unshare")
            && toolInstalled("hv_kvp_daemon") && toolInstalled("hv_vss_daemon") && toolInstalled("hv_fcopy_daemon")
    }

    /// Whether a test may also mount the daemons' FUSE files in its own process: not under ThreadSanitizer,
    /// whose runtime dies ("thread finished with ignores enabled") when libfuse cancels its worker threads with
    /// pthread_cancel as the mount stops. The same tests run in every other configuration.
    public static var availableInProcess: Bool { available && Sanitizer.active != .thread }

    /// Starts `daemon` (e.g. "hv_kvp_daemon") with `-n`; `setup` is more shell run in the namespace first.
    /// `freezable` (for hv_vss_daemon, which freezes every writable block-device filesystem it sees, "/"
    /// included) leaves only filesystems mounted under that directory writable and backed by /dev: the root is
    /// remounted read-only in the namespace and every other /dev-backed mount is detached from it.
    public init(_ daemon: String, devices: String, scratch: String, freezable: String? = nil, setup: String = "") throws {
        // The awk programs list /dev-backed mounts (field 1 the source, 2 the mount point, 4 the options).
        let confine = freezable.map { keep in #"""
            mount -o remount,bind,ro /
            awk '$1 ~ /^\/dev\// && $2 != "/" && index($2, "\#(keep)") != 1 { print $2 }' /proc/mounts | sort -r | while read m; do umount -l "$m"; done
            """# } ?? ""
        let check = freezable.map { keep in #"""
            if awk '$1 ~ /^\/dev\// && $4 ~ /(^|,)rw(,|$)/ && index($2, "\#(keep)") != 1' /proc/mounts | grep -q .; then
                echo "a writable block-device filesystem is still mounted: not starting the daemon" >&2; exit 3
            fi
            """# } ?? ""
        let script = """
            set -e
            mkdir -p \(scratch)/dev
            \(confine)
            mount --bind /dev \(scratch)/dev
            mount -t tmpfs -o mode=755 tmpfs /dev
            mkdir /dev/vmbus
            touch /dev/null /dev/zero /dev/urandom
            mount --bind \(scratch)/dev/null /dev/null
            mount --bind \(scratch)/dev/zero /dev/zero
            mount --bind \(scratch)/dev/urandom /dev/urandom
            mount --bind \(devices) /dev/vmbus
            mount -t tmpfs tmpfs /var/lib
            mkdir -p /var/lib/hyperv
            \(setup)
            \(check)
            exec /usr/sbin/\(daemon) -n
            """
        process = try ChildProcess("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script],
                                   directory: scratch, name: daemon)
    }

    deinit { process.kill9() }
}

/// A small ext4 on a block device that is not a loop device (a hot-added zram disk), mounted at `path`:
/// Linux 6.1's hv_vss_daemon skips loop-backed filesystems (and device-mapper over loop), so only such a
/// device shows that its freeze really happens. Without zram the filesystem is on a loop device, and the
/// test can check the protocol only.
public final class FreezableFilesystem {
    public let path: String
    public let zram: Int?

    public init(at path: String, scratch: String) throws {
        self.path = path
        mkdir(path, 0o755)
        var index: Int?
        if let added = toolOutput(["cat", "/sys/class/zram-control/hot_add"]).flatMap({ Int($0.filter(\.isNumber)) }) {
            index = added
            if runTool(["sh", "-c", "echo 64M > /sys/block/zram\(added)/disksize && mkfs.ext4 -q /dev/zram\(added) && mount /dev/zram\(added) \(path)"]) != 0 {
                _ = runTool(["sh", "-c", "echo \(added) > /sys/class/zram-control/hot_remove"])
                index = nil
            }
        }
        zram = index
        if index == nil {
            guard runTool(["sh", "-c", "truncate -s 64M \(scratch)/fs.img && mkfs.ext4 -q \(scratch)/fs.img && mount -o loop \(scratch)/fs.img \(path)"]) == 0 else {
                throw ProcessTestError("cannot make an ext4 to freeze")
            }
        }
    }

    /// Whether the filesystem is frozen now: a second freeze fails with EBUSY then (and is undone otherwise).
    public var isFrozen: Bool {
        if runTool(["fsfreeze", "--freeze", path]) == 0 {
            _ = runTool(["fsfreeze", "--unfreeze", path])
            return false
        }
        return true
    }

    deinit {
        _ = runTool(["fsfreeze", "--unfreeze", path])
        _ = runTool(["umount", "-l", path])
        if let zram { _ = runTool(["sh", "-c", "echo \(zram) > /sys/class/zram-control/hot_remove"]) }
    }
}
