import ArgumentParser
import VMBusDiskBackend
#if canImport(Glibc)
import Glibc
#endif

/// `vmbus image create|info|check|convert`: disk images without a running host.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Create, inspect, check and convert disk images (raw, VHD).",
        subcommands: [Create.self, Info.self, Check.self, Convert.self])

    enum Format: String, ExpressibleByArgument, CaseIterable { case raw, vhd, vhdx }
    enum ImageType: String, ExpressibleByArgument, CaseIterable { case fixed, dynamic }

    static func parseSize(_ s: String) throws -> UInt64 {
        guard let v = DiskSpec.parseSize(s), v > 0 else { throw ValidationError("not a size: \(s) (N, NK, NM, NG, NT)") }
        return v
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new image (the file must not exist).")
        @Argument var path: String
        @Option(name: .long, help: "Virtual size: N, NK, NM, NG, NT.") var size: String
        @Option(name: .long) var format: Format = .vhd
        @Option(name: .long, help: "VHD: fixed or dynamic.") var type: ImageType = .dynamic
        @Option(name: .long, help: "VHD dynamic: block size (default 2M).") var blockSize: String?

        func run() throws {
            let bytes = try ImageCommand.parseSize(size)
            switch format {
            case .raw:
                guard access(path, F_OK) != 0 else { fail("cannot create \(path): it exists") }
                do { _ = try RawFileBackend(path: path, createSize: bytes) } catch { fail("cannot create \(path): \(error)") }
            case .vhd:
                let block = try blockSize.map { try UInt32(clamping: ImageCommand.parseSize($0)) } ?? VHDDynamicHeader.defaultBlockSize
                do { try VHDBackend.create(path: path, size: bytes, type: type == .fixed ? .fixed : .dynamic, blockSize: block) }
                catch { fail("cannot create \(path): \(error)") }
            case .vhdx:
                fail("the vhdx image format is not built yet (raw and vhd)")
            }
            print("created \(path): \(format.rawValue)\(format == .vhd ? " \(type.rawValue)" : ""), \(formatBytes(bytes))")
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Format, type, virtual size and space used.")
        @Argument var path: String
        @Flag(name: .long) var json = false

        func run() throws {
            guard let format = DiskImageFormat.detect(path: path) else { fail("cannot read \(path)") }
            let disk: any BlockBackend
            do { disk = try format.open(path: path, readOnly: true) } catch { fail("\(path): \(error)") }
            var type = "raw"
            var blockSize: UInt32?
            if let vhd = disk as? VHDBackend {
                type = vhd.footer.type == .fixed ? "fixed" : "dynamic"
                blockSize = vhd.header?.blockSize
            }
            let used = DiskImageFormat.allocatedBytes(path: path) ?? 0
            if json {
                print("{\"path\":\"\(path.jsonEscaped)\",\"format\":\"\(format.rawValue)\",\"type\":\"\(type)\",\"virtual_size\":\(disk.info.capacity),\"allocated_bytes\":\(used)\(blockSize.map { ",\"block_size\":\($0)" } ?? "")}")
            } else {
                print("image: \(path)")
                print("format: \(format.rawValue)\(format == .vhd ? " (\(type))" : "")")
                print("virtual size: \(formatBytes(disk.info.capacity)) (\(disk.info.capacity) bytes)")
                print("allocated: \(formatBytes(used))")
                if let blockSize { print("block size: \(formatBytes(UInt64(blockSize)))") }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an image's structures: exit 0 when clean, 1 when corrupt (saying what was found).")
        @Argument var path: String

        func run() throws {
            guard let format = DiskImageFormat.detect(path: path) else { fail("cannot read \(path)") }
            do { _ = try format.open(path: path, readOnly: true) } catch { fail("\(path): \(error)") }
            print("\(path): \(format.rawValue), no errors found")
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy an image into a new one of another format; zero regions stay unallocated.")
        @Argument var source: String
        @Argument var destination: String
        @Option(name: .long) var format: Format = .vhd
        @Option(name: .long, help: "VHD: fixed or dynamic.") var type: ImageType = .dynamic

        func run() throws {
            guard let sourceFormat = DiskImageFormat.detect(path: source) else { fail("cannot read \(source)") }
            let from: any BlockBackend
            do { from = try sourceFormat.open(path: source, readOnly: true) } catch { fail("\(source): \(error)") }
            let size = from.info.capacity
            do {
                switch format {
                case .raw:
                    _ = try RawFileBackend(path: destination, createSize: size)
                case .vhd:
                    try VHDBackend.create(path: destination, size: size, type: type == .fixed ? .fixed : .dynamic)
                case .vhdx:
                    fail("the vhdx image format is not built yet (raw and vhd)")
                }
            } catch { fail("cannot create \(destination): \(error)") }
            let to: any BlockBackend
            do { to = try (format == .raw ? DiskImageFormat.raw : .vhd).open(path: destination, readOnly: false) }
            catch { fail("\(destination): \(error)") }
            let chunk = 1 << 20
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
            defer { buffer.deallocate() }
            let vector = IOVector(capacity: 1)
            try vector.append(buffer)
            let progress = Progress(total: size)
            var offset: UInt64 = 0
            do {
                while offset < size {
                    let n = Int(min(UInt64(chunk), size - offset))
                    try from.read(at: offset, length: n, into: vector)
                    if !vector.isZero(offset: 0, length: n) { try to.write(at: offset, length: n, from: vector, fua: false) }
                    offset += UInt64(n)
                    progress.update(offset)
                }
                try to.flush()
            } catch { fail("converting at offset \(offset): \(error)") }
            progress.finish()
            print("converted \(source) (\(sourceFormat.rawValue)) to \(destination) (\(format.rawValue)), \(formatBytes(size))")
        }
    }
}

/// A progress bar on a terminal; nothing when stdout is not one.
final class Progress {
    let total: UInt64
    let enabled = isatty(1) != 0
    private var shown = -1
    init(total: UInt64) { self.total = max(1, total) }
    func update(_ done: UInt64) {
        guard enabled else { return }
        let percent = Int(done * 100 / total)
        guard percent != shown else { return }
        shown = percent
        let bar = String(repeating: "#", count: percent / 4) + String(repeating: " ", count: 25 - percent / 4)
        print("\r[\(bar)] \(percent)%", terminator: "")
        fflush(nil)
    }
    func finish() { if enabled { print("") } }
}

extension String {
    var jsonEscaped: String {
        var out = ""
        for c in unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
