#if canImport(Glibc)
import Glibc
#endif
import VMBusTestSupport

/// Runs one of Debian's hyperv-daemons unmodified against our util devices: in a private mount namespace
/// where `devices` (a FUSE mount of ``DevVMBusDirectory``) is bound at /dev/vmbus over a private /dev, and
/// /var/lib (the KVP pools) is a private tmpfs, so nothing of the machine's is read or written.
final class DaemonNamespace {
    let process: ChildProcess

    /// Whether this machine can run the daemons here: root, FUSE, unshare and the daemons installed.
    static var available: Bool {
        getuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0 && toolInstalled("unshare")
            && toolInstalled("hv_kvp_daemon") && toolInstalled("hv_vss_daemon") && toolInstalled("hv_fcopy_daemon")
    }

    /// Starts `daemon` (e.g. "hv_kvp_daemon") with `-n`; `setup` is more shell run in the namespace first.
    /// `freezable` (for hv_vss_daemon, which freezes every writable block-device filesystem it sees, "/"
    /// included) leaves only filesystems mounted under that directory writable and backed by /dev: the root is
    /// remounted read-only in the namespace and every other /dev-backed mount is detached from it.
    init(_ daemon: String, devices: String, scratch: String, freezable: String? = nil, setup: String = "") throws {
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
