import ArgumentParser
import VMBusDiskBackend
#if canImport(Glibc)
import Glibc
#endif

/// `vmbus image create|info|check|convert`: disk images without a running host.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Create, inspect, check and convert disk images (VHDX, VHD, raw).",
        subcommands: [Create.self, Info.self, Check.self, Convert.self])

    enum Format: String, ExpressibleByArgument, CaseIterable { case raw, vhd, vhdx }
    enum ImageType: String, ExpressibleByArgument, CaseIterable { case fixed, dynamic }

    /// The format `--format` names, else the one the file name says (.vhd, .raw, .img), else VHDX.
    static func format(_ given: Format?, for path: String) -> Format {
        if let given { return given }
        let p = path.lowercased()
        return p.hasSuffix(".vhd") ? .vhd : p.hasSuffix(".raw") || p.hasSuffix(".img") ? .raw : .vhdx
    }

    /// Creates an empty image; `parent` makes a differencing VHDX (its size and sector size are the parent's).
    static func create(_ path: String, size: UInt64, format: Format, type: ImageType, blockSize: UInt32? = nil,
                       sectorSize: UInt32 = 512, parent: String? = nil) throws {
        guard parent == nil || format == .vhdx else { throw ValidationError("--parent: only a VHDX is a differencing disk here") }
        guard sectorSize == 512 || format == .vhdx else { throw ValidationError("--sector-size 4096: only a VHDX has 4096-byte sectors") }
        switch format {
        case .raw:
            guard access(path, F_OK) != 0 else { throw CommandError("it exists") }
            _ = try RawFileBackend(path: path, createSize: size)
        case .vhd:
            try VHDBackend.create(path: path, size: size, type: type == .fixed ? .fixed : .dynamic,
                                  blockSize: blockSize ?? VHDDynamicHeader.defaultBlockSize)
        case .vhdx:
            try VHDXBackend.create(path: path, size: size, type: parent != nil ? .differencing : type == .fixed ? .fixed : .dynamic,
                                   blockSize: blockSize, logicalSectorSize: sectorSize, parent: parent)
        }
    }

    static func parseSize(_ s: String) throws -> UInt64 {
        guard let v = DiskSpec.parseSize(s), v > 0 else { throw ValidationError("not a size: \(s) (N, NK, NM, NG, NT)") }
        return v
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new image (the file must not exist).")
        @Argument var path: String
        @Option(name: .long, help: "Virtual size: N, NK, NM, NG, NT (a differencing disk has its parent's).") var size: String?
        @Option(name: .long, help: "vhdx, vhd or raw (default: from the name's extension, else vhdx).") var format: Format?
        @Option(name: .long, help: "fixed or dynamic (with --parent: differencing).") var type: ImageType = .dynamic
        @Option(name: .long, help: "VHDX: the parent of a new differencing disk.") var parent: String?
        @Option(name: .long, help: "Block size (VHDX 1M...256M, default 32M, 2M differencing; VHD default 2M).") var blockSize: String?
        @Option(name: .long, help: "VHDX logical sector size: 512 or 4096.") var sectorSize: UInt32 = 512

        func validate() throws {
            guard size != nil || parent != nil else { throw ValidationError("--size is needed (except with --parent)") }
            guard sectorSize == 512 || sectorSize == 4096 else { throw ValidationError("--sector-size is 512 or 4096") }
        }

        func run() throws {
            let format = ImageCommand.format(format, for: path)
            let bytes = try size.map(ImageCommand.parseSize) ?? 0
            let block = try blockSize.map { try UInt32(clamping: ImageCommand.parseSize($0)) }
            do { try ImageCommand.create(path, size: bytes, format: format, type: type, blockSize: block, sectorSize: sectorSize, parent: parent) }
            catch let e as ValidationError { throw e }
            catch { fail("cannot create \(path): \(error)") }
            let made = (try? DiskImageFormat(rawValue: format.rawValue)?.open(path: path, readOnly: true))?.info.capacity ?? bytes
            let kind = parent != nil ? "differencing" : type.rawValue
            print("created \(path): \(format.rawValue)\(format != .raw ? " \(kind)" : ""), \(formatBytes(made))")
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Format, type, virtual size, block and sector sizes, parent chain, log state and space used.")
        @Argument var path: String
        @Flag(name: .long) var json = false

        func run() throws {
            guard let format = DiskImageFormat.detect(path: path) else { fail("cannot read \(path)") }
            let disk: any BlockBackend
            do {
                // Read-only and without replaying the log, so that looking changes nothing.
                disk = format == .vhdx ? try VHDXBackend(path: path, readOnly: true, replayLog: false)
                                       : try format.open(path: path, readOnly: true)
            } catch { fail("\(path): \(error)") }
            var fields: [(String, String, Bool)] = [("image", path, true), ("format", format.rawValue, true)]
            var type = "raw"
            if let vhd = disk as? VHDBackend {
                type = vhd.footer.type == .fixed ? "fixed" : "dynamic"
                if let b = vhd.header?.blockSize { fields.append(("block_size", "\(b)", false)) }
            }
            if let vhdx = disk as? VHDXBackend {
                type = vhdx.metadata.hasParent ? "differencing" : vhdx.metadata.leaveBlocksAllocated ? "fixed" : "dynamic"
                fields.append(("block_size", "\(vhdx.metadata.blockSize)", false))
                fields.append(("logical_sector_size", "\(vhdx.metadata.logicalSectorSize)", false))
                fields.append(("physical_sector_size", "\(vhdx.metadata.physicalSectorSize)", false))
                fields.append(("log", vhdx.pendingLogEntries > 0 ? "dirty (\(vhdx.pendingLogEntries) entries to replay)" : "clean", true))
                fields.append(("blocks_present", "\(vhdx.presentBlocks)", false))
                for (i, p) in vhdx.chain.enumerated() { fields.append(("parent\(i + 1)", p.path, true)) }
            }
            fields.insert(("type", type, true), at: 2)
            fields.insert(("virtual_size", "\(disk.info.capacity)", false), at: 3)
            fields.append(("allocated_bytes", "\(DiskImageFormat.allocatedBytes(path: path) ?? 0)", false))
            if json {
                let parents = fields.filter { $0.0.hasPrefix("parent") }.map { "\"\($0.1.jsonEscaped)\"" }
                let body = fields.filter { !$0.0.hasPrefix("parent") }
                    .map { "\"\($0.0)\":" + ($0.2 ? "\"\($0.1.jsonEscaped)\"" : $0.1) } + ["\"parents\":[\(parents.joined(separator: ","))]"]
                print("{" + body.joined(separator: ",") + "}")
            } else {
                for (key, value, quoted) in fields {
                    let shown = !quoted && key.hasSuffix("size") || key == "allocated_bytes"
                        ? "\(formatBytes(UInt64(value) ?? 0)) (\(value) bytes)" : value
                    print("\(String(key.map { $0 == "_" ? " " : $0 })): \(shown)")
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an image's structures: exit 0 when clean, 1 when corrupt (saying what was found).")
        @Argument var path: String

        func run() throws {
            guard let format = DiskImageFormat.detect(path: path) else { fail("cannot read \(path)") }
            var note = ""
            do {
                if format == .vhdx {
                    // As the structures stand, then the log's pending updates, which must be replayable.
                    let d = try VHDXBackend(path: path, readOnly: true, replayLog: false)
                    if d.pendingLogEntries > 0 { note = "; the log holds \(d.pendingLogEntries) update(s) the next writable open replays" }
                    if !d.chain.isEmpty { note += "; parents: " + d.chain.map(\.path).joined(separator: " <- ") }
                } else {
                    _ = try format.open(path: path, readOnly: true)
                }
            } catch { fail("\(path): \(error)") }
            print("\(path): \(format.rawValue), no errors found\(note)")
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy an image into a new one of another format; zero regions stay unallocated.")
        @Argument var source: String
        @Argument var destination: String
        @Option(name: .long, help: "vhdx, vhd or raw (default: from the name's extension, else vhdx).") var format: Format?
        @Option(name: .long, help: "fixed or dynamic.") var type: ImageType = .dynamic
        @Option(name: .long, help: "Block size of the new image.") var blockSize: String?

        func run() throws {
            let format = ImageCommand.format(format, for: destination)
            guard let sourceFormat = DiskImageFormat.detect(path: source) else { fail("cannot read \(source)") }
            let from: any BlockBackend
            do { from = try sourceFormat.open(path: source, readOnly: true) } catch { fail("\(source): \(error)") }
            let size = from.info.capacity
            let block = try blockSize.map { try UInt32(clamping: ImageCommand.parseSize($0)) }
            do {
                try ImageCommand.create(destination, size: size, format: format, type: type, blockSize: block,
                                        sectorSize: UInt32(from.info.logicalBlockSize == 4096 && format == .vhdx ? 4096 : 512))
            } catch { fail("cannot create \(destination): \(error)") }
            let to: any BlockBackend
            do { to = try (DiskImageFormat(rawValue: format.rawValue) ?? .raw).open(path: destination, readOnly: false) }
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
