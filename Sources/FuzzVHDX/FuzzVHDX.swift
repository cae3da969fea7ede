// Fuzz target: the MS-VHDX structure parsers, each fed untrusted bytes (an image file is a user's file, or one a
// guest wrote). The first input byte picks the structure, the rest is its bytes. Whatever decodes must encode and
// decode to the same value; nothing may trap. Whole images are too large for libFuzzer to mutate usefully (the
// header section alone is 1 MiB), so the open path over damaged images is in VHDXBackendTests. Build and run with
// Scripts/fuzz. Seeds: the structures of an image our own writer makes.
import FuzzSupport
import VMBusDiskBackend
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-vhdx",
    corpus: "VHDX",
    summary: "VHDX header, region table, metadata, parent locator and log entry parsing, with re-encoding",
    body: fuzzVHDX,
    seeds: vhdxSeeds)

enum Structure: UInt8, CaseIterable { case header, regionTable, metadata, parentLocator, log }

/// `bytes` padded with zeros, or cut, to `count`.
func sized(_ bytes: ArraySlice<UInt8>, _ count: Int) -> [UInt8] {
    Array(bytes.prefix(count)) + [UInt8](repeating: 0, count: max(0, count - bytes.count))
}

func fuzzVHDX(_ input: [UInt8]) {
    guard let first = input.first, let kind = Structure(rawValue: first % UInt8(Structure.allCases.count)) else { return }
    let body = input.dropFirst()
    switch kind {
    case .header:
        guard let h = try? VHDXHeader(decoding: sized(body, VHDXHeader.size), at: 0) else { return }
        fuzzCheck((try? VHDXHeader(decoding: h.encoded, at: 0)) == h, "a header does not survive re-encoding")
    case .regionTable:
        guard let t = try? VHDXRegionTable(decoding: sized(body, VHDXRegionTable.size), at: 0) else { return }
        fuzzCheck((try? VHDXRegionTable(decoding: t.encoded, at: 0)) == t, "a region table does not survive re-encoding")
    case .metadata:
        guard let m = try? VHDXMetadata(decoding: sized(body, max(body.count, VHDXMetadata.tableSize)), at: 0) else { return }
        fuzzCheck(m.blockSize >= VHDXMetadata.minimumBlockSize && m.diskSize % UInt64(m.logicalSectorSize) == 0,
                  "metadata accepted outside its bounds")
        fuzzCheck((try? VHDXMetadata(decoding: m.encoded(length: 1 << 20), at: 0)) == m, "metadata does not survive re-encoding")
    case .parentLocator:
        guard let l = try? VHDXParentLocator(decoding: Array(body), at: 0) else { return }
        fuzzCheck((try? VHDXParentLocator(decoding: l.encoded, at: 0)) == l, "a parent locator does not survive re-encoding")
    case .log:
        // A log of whole sectors; the entries' GUID is taken from the first one, so that parsing goes deep.
        let log = sized(body, max(VHDXLogEntry.sectorSize, (body.count + 4095) / 4096 * 4096))
        guard let guid = try? GUID(wireBytes: Array(log[32..<48])) else { return }
        for e in VHDXLogEntry.activeSequence(log: log, logGUID: guid) {
            fuzzCheck(e.length <= log.count && e.tail % UInt32(VHDXLogEntry.sectorSize) == 0, "a log entry outside its log")
            // Room for the entry and for its tail offset, which must lie inside the log it is parsed from.
            var copy = [UInt8](repeating: 0, count: max(e.length, Int(e.tail) + VHDXLogEntry.sectorSize))
            for (i, b) in e.encoded.enumerated() { copy[i] = b }
            fuzzCheck(VHDXLogEntry.parse(log: copy, at: 0, logGUID: guid) == e, "a log entry does not survive re-encoding")
        }
    }
}

func vhdxSeeds() -> [(String, [UInt8])] {
    let path = "/tmp/fuzz-vhdx-seed-\(getpid()).vhdx", parentPath = path + ".parent"
    defer { unlink(path); unlink(parentPath) }
    unlink(path); unlink(parentPath)
    guard (try? VHDXBackend.create(path: parentPath, size: 4 << 20, blockSize: 1 << 20)) != nil,
          (try? VHDXBackend.create(path: path, size: 0, type: .differencing, blockSize: 1 << 20, parent: parentPath)) != nil,
          let d = try? VHDXBackend(path: path, readOnly: true), let metadataRegion = d.regions.entry(VHDXRegionTable.metadata),
          let locator = d.metadata.parent else { return [] }
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    func bytes(_ offset: UInt64, _ count: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return n == count ? b : []
    }
    let logGUID = GUID(data1: 0x1234_5678, data2: 0x9ABC, data3: 0x4DEF, data4: (0x80, 1, 2, 3, 4, 5, 6, 7))
    var log = VHDXLogEntry(sequenceNumber: 7, tail: 0, logGUID: logGUID, flushedFileOffset: 8 << 20, lastFileOffset: 8 << 20,
                           descriptors: [.data(fileOffset: 3 << 20, sector: [UInt8](repeating: 0x11, count: 4096)),
                                         .zero(fileOffset: 5 << 20, length: 8192)]).encoded
    log += VHDXLogEntry(sequenceNumber: 8, tail: UInt32(log.count), logGUID: logGUID, flushedFileOffset: 8 << 20, lastFileOffset: 8 << 20,
                        descriptors: [.data(fileOffset: 3 << 20, sector: [UInt8](repeating: 0x22, count: 4096))]).encoded
    return [
        ("header", [Structure.header.rawValue] + bytes(VHDXFileIdentifier.header1Offset, VHDXHeader.size)),
        ("region-table", [Structure.regionTable.rawValue] + bytes(VHDXFileIdentifier.regionTable1Offset, VHDXRegionTable.size)),
        ("metadata", [Structure.metadata.rawValue] + bytes(metadataRegion.fileOffset, VHDXMetadata.tableSize + 4096)),
        ("parent-locator", [Structure.parentLocator.rawValue] + locator.encoded),
        ("log", [Structure.log.rawValue] + log),
    ]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzVHDX_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
