import Glibc
import VMBusWire

/// The log of an open VHDX: replays what a crash left in it, and carries every metadata update we make.
///
/// Each update is one entry, written and flushed, then applied in place without a flush of its own: the next
/// entry's flush makes that apply durable too, so each entry's tail reaches back to the previous one, whose
/// apply may still be only in the page cache, and a replay redoes both. A crash before an entry is whole leaves
/// the previous sequence (the torn entry fails its checksum); a crash after it replays the entry and the one
/// before. A clean close flushes before it clears the log GUID. Entries are written sector by sector around the
/// circular log; one is at most 33 sectors (132 KiB), so three fit in the smallest log (1 MiB) and the two entries
/// of a sequence are never overwritten by the entry being written.
final class VHDXLog {
    let fd: Int32
    let offset: UInt64
    let length: Int
    let guid: GUID
    private var sequence: UInt64
    private var head = 0
    /// Where the last entry starts while its apply is not known to be durable: the next entry's tail.
    private var unflushedEntry: Int?

    init(fd: Int32, offset: UInt64, length: Int, guid: GUID, firstSequence: UInt64 = 1) {
        self.fd = fd
        self.offset = offset
        self.length = length
        self.guid = guid
        sequence = firstSequence
    }

    /// The largest log we read into memory to replay.
    static let maximumReplayLength = 256 << 20

    /// The active sequence of the log described by `header`, read from `fd`; empty when the log is clean.
    static func pending(fd: Int32, header: VHDXHeader, fileSize: UInt64) throws(BackendError) -> [VHDXLogEntry] {
        guard header.logGUID != .zero else { return [] }
        guard Int(header.logLength) <= maximumReplayLength else {
            throw .unsupported("a VHDX log of \(header.logLength) bytes to replay (at most \(maximumReplayLength))")
        }
        guard header.logOffset + UInt64(header.logLength) <= fileSize else {
            throw .corrupt(structure: "VHDX log", offset: header.logOffset, why: "it runs past the end of the file")
        }
        let log = try [UInt8].read(fd: fd, at: header.logOffset, count: Int(header.logLength), what: "VHDX log")
        let entries = VHDXLogEntry.activeSequence(log: log, logGUID: header.logGUID)
        guard let last = entries.last else { return [] }
        guard last.lastFileOffset <= VHDXFileIdentifier.maximumFileOffset else {
            throw .corrupt(structure: "VHDX log entry \(last.sequenceNumber)", offset: header.logOffset,
                           why: "a file end of \(last.lastFileOffset) bytes")
        }
        guard fileSize >= last.flushedFileOffset else {
            throw .corrupt(structure: "VHDX log", offset: header.logOffset,
                           why: "the file is \(fileSize) bytes, shorter than the \(last.flushedFileOffset) the log saw flushed")
        }
        for e in entries {
            for d in e.descriptors {
                let (o, l) = d.fileRange
                let (end, overflow) = o.addingReportingOverflow(l)
                let inLog = o < header.logOffset + UInt64(header.logLength) && end > header.logOffset
                guard !overflow, o >= VHDXFileIdentifier.headerSectionSize, !inLog, end <= max(e.lastFileOffset, fileSize) else {
                    throw .corrupt(structure: "VHDX log entry \(e.sequenceNumber)", offset: header.logOffset,
                                   why: "a descriptor for \(o)+\(l) outside the file's structures")
                }
            }
        }
        return entries
    }

    /// Applies `entries` (an active sequence) to the file, extends it to what the last entry says it holds, and
    /// flushes.
    static func replay(_ entries: [VHDXLogEntry], fd: Int32, fileSize: UInt64) throws(BackendError) {
        for e in entries { try apply(e, fd: fd) }
        if let last = entries.last, last.lastFileOffset > fileSize {
            guard ftruncate(fd, off_t(last.lastFileOffset)) == 0 else { throw .io(call: "ftruncate", errno: errno) }
        }
        try syncData(fd: fd)
    }

    private static func apply(_ e: VHDXLogEntry, fd: Int32) throws(BackendError) {
        for d in e.descriptors {
            switch d {
            case .data(let o, let sector):
                try sector.write(fd: fd, at: o, what: "VHDX log replay")
            case .zero(let o, let l):
                try writeZeros(fd: fd, at: o, length: l, what: "VHDX log replay")
            }
        }
    }

    static let maximumSectorsPerEntry = 32

    /// A step of ``commit`` that tests may stop before, to leave an image as a crash there would.
    enum Step: Int, CaseIterable, Sendable { case writeEntry, flushEntry, apply }

    /// Logs and applies `sectors` (4 KiB file sectors, offsets 4 KiB-aligned). `stopBefore` ends the commit early
    /// with `.io`, as a crash would (tests only).
    func commit(_ sectors: [(UInt64, [UInt8])], flushedFileOffset: UInt64, lastFileOffset: UInt64,
                stopBefore: Step? = nil) throws(BackendError) {
        // One entry, so that the sectors change together: two BAT sectors and up to 16 of a sector bitmap.
        guard sectors.count <= Self.maximumSectorsPerEntry else { throw .invalidConfiguration("a VHDX log entry of \(sectors.count) sectors") }
        let entry = VHDXLogEntry(sequenceNumber: sequence, tail: UInt32(unflushedEntry ?? head), logGUID: guid,
                                 flushedFileOffset: flushedFileOffset, lastFileOffset: lastFileOffset,
                                 descriptors: sectors.map { .data(fileOffset: $0.0, sector: $0.1) })
        let bytes = entry.encoded
        func stop(_ step: Step) throws(BackendError) {
            if stopBefore == step { throw .io(call: "stopped before \(step)", errno: EIO) }
        }
        try stop(.writeEntry)
        for s in 0..<(bytes.count / VHDXLogEntry.sectorSize) {
            let at = (head + s * VHDXLogEntry.sectorSize) % length
            try Array(bytes[(s * VHDXLogEntry.sectorSize)..<((s + 1) * VHDXLogEntry.sectorSize)])
                .write(fd: fd, at: offset + UInt64(at), what: "VHDX log entry")
        }
        try stop(.flushEntry)
        try syncData(fd: fd)
        // The previous entry's apply was written before this flush, so it is durable now; this one's is not.
        unflushedEntry = head
        head = (head + bytes.count) % length
        sequence += 1
        try stop(.apply)
        for (o, sector) in sectors { try sector.write(fd: fd, at: o, what: "VHDX metadata") }
    }
}
