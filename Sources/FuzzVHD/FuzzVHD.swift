// Fuzz target: opening a VHD image, which is untrusted input (a user's file, or one a guest wrote). The input is
// the image file; if `VHDBackend` opens it, a few reads and one write run over it. Build and run with
// Scripts/fuzz. Seeds: small fixed and dynamic images our own writer makes.
import FuzzSupport
import VMBusDiskBackend

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-vhd",
    corpus: "VHD",
    summary: "VHD footer, dynamic header and block table parsing, then I/O over whatever opened",
    body: fuzzVHD,
    seeds: vhdSeeds)

/// A file in RAM for each input (the backend works on paths and descriptors).
let imagePath = "/dev/shm/fuzz-vhd-\(getpid()).vhd"

func fuzzVHD(_ bytes: [UInt8]) {
    unlink(imagePath)
    let fd = open(imagePath, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    defer { unlink(imagePath) }
    let disk: VHDBackend
    do { disk = try VHDBackend(path: imagePath) } catch {
        switch error {
        case .corrupt, .unsupported, .invalidConfiguration, .io: return
        default: return fuzzCheck(false, "open threw \(error)")
        }
    }
    let capacity = disk.info.capacity
    fuzzCheck(capacity == disk.footer.currentSize && capacity % 512 == 0 && capacity > 0, "capacity \(capacity)")
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
    let v = IOVector(capacity: 1)
    guard (try? v.append(buffer)) != nil else { return }
    let length = Int(min(8192, capacity))
    for offset in [0, capacity / 2 / 512 * 512, capacity - UInt64(length)] {
        do { try disk.read(at: offset, length: length, into: v) } catch {
            if case .outOfRange = error { fuzzCheck(false, "in-range read refused: \(error)") }
        }
    }
    // A write, then the same bytes read back (when the write was accepted).
    buffer.initializeMemory(as: UInt8.self, repeating: 0xC3)
    if (try? disk.write(at: 0, length: length, from: v, fua: false)) != nil {
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if (try? disk.read(at: 0, length: length, into: v)) != nil {
            fuzzCheck(buffer.prefix(length).allSatisfy { $0 == 0xC3 }, "a written block did not read back")
        }
    }
}

func vhdSeeds() -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    for (name, type, size) in [("dynamic", VHDBackend.CreateType.dynamic, UInt64(64 << 10)), ("fixed", .fixed, UInt64(16 << 10))] {
        let path = "/tmp/fuzz-vhd-seed-\(getpid())-\(name).vhd"
        unlink(path)
        guard (try? VHDBackend.create(path: path, size: size, type: type, blockSize: 4096)) != nil else { continue }
        if type == .dynamic, let d = try? VHDBackend(path: path) {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 512)
            b.initializeMemory(as: UInt8.self, repeating: 7)
            let v = IOVector(capacity: 1)
            if (try? v.append(b)) != nil { _ = try? d.write(at: 4096, length: 512, from: v, fua: false) }
            b.deallocate()
        }
        let fd = open(path, O_RDONLY)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk.prefix(n)
        }
        close(fd)
        unlink(path)
        out.append((name, bytes))
    }
    return out
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzVHD_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
