import CVMBusShims
#if canImport(Glibc)
import Glibc
#endif

/// Checks for descriptors that cross the socket transport.
enum Descriptors {
    /// Whether `fd` lives on tmpfs/shmem (`fstatfs` says `TMPFS_MAGIC`, as every plain memfd does). Guest
    /// memory must: a memfd on hugetlbfs (`MFD_HUGETLB`) can have pages punched out of it (`fallocate
    /// PUNCH_HOLE` is not stopped by the size seals) or fail to fault one in, and the host's next access to
    /// such a page is a SIGBUS that kills the host, not the guest.
    static func isShmem(_ fd: Int32) -> Bool {
        vmbus_shim_fs_magic(fd) == vmbus_shim_tmpfs_magic()
    }
}
