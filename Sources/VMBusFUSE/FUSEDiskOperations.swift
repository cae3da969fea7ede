import CFuse3
import VMBusStorVSC
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// The disk directory's `fuse_operations` callbacks: C function pointers that find the directory through
/// `fuse_get_context()->private_data`.
enum FUSEDiskOperations {
    static var table: fuse_operations {
        var ops = fuse_operations()
        ops.getattr = { path, st, _ in
            guard let path, let st else { return -EINVAL }
            return FUSEDiskOperations.getattr(String(cString: path), st)
        }
        ops.readdir = { path, buffer, filler, _, _, _ in
            guard let path, let filler, String(cString: path) == "/", let dir = FUSEDiskOperations.directory else { return -ENOENT }
            _ = filler(buffer, ".", nil, 0, FUSE_FILL_DIR_PLUS)
            _ = filler(buffer, "..", nil, 0, FUSE_FILL_DIR_PLUS)
            for name in dir.names { _ = filler(buffer, name, nil, 0, fuse_fill_dir_flags(0)) }
            return 0
        }
        ops.open = { path, fi in
            guard let path, let disk = FUSEDiskOperations.disk(path) else { return -ENOENT }
            if let fi, disk.isReadOnly, fi.pointee.flags & O_ACCMODE != O_RDONLY { return -EROFS }
            return 0
        }
        ops.read = { path, buffer, size, offset, _ in
            guard let path, let buffer, let disk = FUSEDiskOperations.disk(path) else { return -ENOENT }
            guard offset >= 0 else { return -EINVAL }
            let start = UInt64(offset)
            guard start < disk.capacityBytes else { return 0 }
            let n = Int(min(UInt64(size), disk.capacityBytes - start))
            do throws(StorVSCError) {
                try disk.read(at: start, into: UnsafeMutableRawBufferPointer(start: buffer, count: n))
            } catch { return -FUSEDiskOperations.errno(error) }
            return Int32(n)
        }
        ops.write = { path, buffer, size, offset, _ in
            guard let path, let buffer, let disk = FUSEDiskOperations.disk(path) else { return -ENOENT }
            guard offset >= 0 else { return -EINVAL }
            let start = UInt64(offset)
            guard start < disk.capacityBytes || size == 0 else { return -ENOSPC }
            let n = Int(min(UInt64(size), disk.capacityBytes - min(start, disk.capacityBytes)))
            do throws(StorVSCError) {
                try disk.write(at: start, from: UnsafeRawBufferPointer(start: buffer, count: n))
            } catch { return -FUSEDiskOperations.errno(error) }
            return Int32(n)
        }
        ops.truncate = { path, size, _ in
            guard let path, let disk = FUSEDiskOperations.disk(path) else { return -ENOENT }
            // A disk's size is the LUN's: only a truncate to that size (what tools do to be sure) succeeds.
            return size == off_t(disk.capacityBytes) ? 0 : -EINVAL
        }
        ops.fsync = { path, _, _ in
            guard let path, let disk = FUSEDiskOperations.disk(path) else { return -ENOENT }
            do throws(StorVSCError) { try disk.flush() } catch { return -FUSEDiskOperations.errno(error) }
            return 0
        }
        ops.fallocate = { path, mode, offset, length, _ in
            guard let path, let disk = FUSEDiskOperations.disk(path) else { return -ENOENT }
            let punch = Int32(0x02)  // FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE, as the loop driver sends it)
            guard mode & punch != 0, offset >= 0, length > 0 else { return mode == 0 ? 0 : -EOPNOTSUPP }
            guard disk.supportsUnmap else { return -EOPNOTSUPP }
            let start = UInt64(offset)
            guard start < disk.capacityBytes else { return 0 }
            let n = min(UInt64(length), disk.capacityBytes - start)
            do throws(StorVSCError) { try disk.unmap(at: start, length: n) } catch { return -FUSEDiskOperations.errno(error) }
            return 0
        }
        ops.statfs = { _, st in
            guard let st else { return -EINVAL }
            st.pointee = statvfs()
            st.pointee.f_bsize = 4096
            st.pointee.f_namemax = 255
            return 0
        }
        return ops
    }

    static var directory: FUSEDiskDirectory? {
        guard let p = vmbus_fuse_private_data() else { return nil }
        return Unmanaged<FUSEDiskDirectory>.fromOpaque(p).takeUnretainedValue()
    }

    static func disk(_ path: UnsafePointer<CChar>) -> StorVSCDisk? {
        let p = String(cString: path)
        guard p.hasPrefix("/"), !p.dropFirst().contains("/") else { return nil }
        return directory?.disk(named: String(p.dropFirst()))
    }

    static func getattr(_ path: String, _ st: UnsafeMutablePointer<stat>) -> Int32 {
        st.pointee = stat()
        let now = time(nil)
        st.pointee.st_atim.tv_sec = now
        st.pointee.st_mtim.tv_sec = now
        st.pointee.st_ctim.tv_sec = now
        st.pointee.st_uid = getuid()
        st.pointee.st_gid = getgid()
        if path == "/" {
            st.pointee.st_mode = S_IFDIR | 0o755
            st.pointee.st_nlink = 2
            return 0
        }
        guard path.hasPrefix("/"), let disk = directory?.disk(named: String(path.dropFirst())) else { return -ENOENT }
        st.pointee.st_mode = S_IFREG | (disk.isReadOnly ? 0o444 : 0o644)
        st.pointee.st_nlink = 1
        st.pointee.st_size = off_t(disk.capacityBytes)
        st.pointee.st_blksize = blksize_t(max(4096, disk.blockSize))
        st.pointee.st_blocks = blkcnt_t(disk.capacityBytes / 512)
        return 0
    }

    static func errno(_ e: StorVSCError) -> Int32 {
        switch e {
        case .writeProtected: return EROFS
        case .invalidArgument: return EINVAL
        case .lunRemoved, .controllerGone: return ENODEV
        case .timedOut: return ETIMEDOUT
        default: return EIO
        }
    }
}
