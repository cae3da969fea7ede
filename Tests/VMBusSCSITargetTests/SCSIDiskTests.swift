import Testing
import VMBusDiskBackend
import VMBusSCSI
import VMBusSCSITarget

/// An initiator buffer of `size` bytes behind an IOVector.
final class Buffer {
    let raw: UnsafeMutableRawBufferPointer
    let vector = IOVector(capacity: 4)
    init(_ size: Int, fill: UInt8 = 0) throws {
        raw = .allocate(byteCount: max(size, 1), alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: fill)
        if size > 0 { try vector.append(base: raw.baseAddress!, length: size) }
    }
    deinit { raw.deallocate() }
    var bytes: [UInt8] { Array(raw.prefix(vector.totalLength)) }
    func set(_ b: [UInt8]) { for (i, v) in b.enumerated() { raw[i] = v } }
}

func cdb(_ b: [UInt8]) -> SCSICDB { SCSICDB(b) }

struct Fixture {
    let backend: MemoryBackend
    let disk: SCSIDisk
    init(capacity: UInt64 = 1 << 24, readOnly: Bool = false) {
        backend = MemoryBackend(capacity: capacity, readOnly: readOnly)
        disk = SCSIDisk(backend: backend, serialNumber: "SN-0001", identifier: 0x1234_5678_9ABC, maxTransferBytes: 1 << 20)
    }
    func run(_ c: [UInt8], _ buffer: Buffer) -> SCSICommandResult {
        disk.execute(cdb(c), data: buffer.vector, dataLength: buffer.vector.totalLength)
    }
}

func expectSense(_ r: SCSICommandResult, _ key: UInt8, _ a: AdditionalSense, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status == SAMStatus.CHECK_CONDITION, sourceLocation: sourceLocation)
    #expect(r.sense?.key == key, sourceLocation: sourceLocation)
    #expect(r.sense?.additional == a, sourceLocation: sourceLocation)
    #expect(r.transferred == 0, sourceLocation: sourceLocation)
}

@Suite struct SCSIDiskTests {
    @Test func testUnitReadyStartStopAndRequestSense() throws {
        let f = Fixture()
        let b = try Buffer(252)
        #expect(f.run([0x00, 0, 0, 0, 0, 0], b) == .good())
        #expect(f.run([0x1B, 0, 0, 0, 1, 0], b) == .good())
        let r = f.run([0x03, 0, 0, 0, 252, 0], b)
        #expect(r == .good(18))
        #expect(b.bytes[0] == 0x70 && b.bytes[2] == 0 && b.bytes[7] == 10)
        #expect(f.run([0x03, 0, 0, 0, 8, 0], b) == .good(8))
        // Too short for its group, and unknown opcodes.
        expectSense(f.run([0x00, 0, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        expectSense(f.run([0xC0, 0, 0, 0, 0, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidCommandOperationCode)
        expectSense(f.run([0x4D, 0, 0, 0, 0, 0, 0, 0, 0, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidCommandOperationCode)
        expectSense(f.disk.execute(SCSICDB([UInt8](repeating: 0, count: 20)), data: b.vector, dataLength: 0),
                    SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
    }

    @Test func standardInquiryIsHyperVs() throws {
        let f = Fixture()
        let b = try Buffer(255)
        #expect(f.run([0x12, 0, 0, 0, 255, 0], b) == .good(36))
        let d = b.bytes
        #expect(d[0] == 0 && d[2] == 5 && d[3] == 2 && d[4] == 31)
        #expect(String(decoding: d[8..<16], as: UTF8.self) == "Msft    ")
        #expect(String(decoding: d[16..<32], as: UTF8.self) == "Virtual Disk    ")
        #expect(f.run([0x12, 0, 0, 0, 5, 0], b) == .good(5))
        #expect(f.run([0x12, 0, 0, 0, 0, 0], b) == .good(0))
        expectSense(f.run([0x12, 0, 0x80, 0, 255, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
    }

    @Test func vpdPages() throws {
        let f = Fixture()
        let b = try Buffer(255)
        #expect(f.run([0x12, 1, 0x00, 0, 255, 0], b) == .good(10))
        #expect(Array(b.bytes[4..<10]) == [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2])
        #expect(f.run([0x12, 1, 0x80, 0, 255, 0], b) == .good(11))
        #expect(String(decoding: b.bytes[4..<11], as: UTF8.self) == "SN-0001")
        #expect(f.run([0x12, 1, 0x83, 0, 255, 0], b) == .good(16))
        #expect(Array(b.bytes[4..<8]) == [0x01, 0x03, 0x00, 0x08])
        #expect(b.bytes[8] >> 4 == 5)
        #expect(f.run([0x12, 1, 0xB0, 0, 255, 0], b) == .good(64))
        #expect(Array(b.bytes[8..<12]) == [0, 0, 0x08, 0])  // 1 MiB / 512 = 2048 blocks
        #expect(b.bytes[20..<24] != [0, 0, 0, 0])  // unmap descriptors advertised
        #expect(f.run([0x12, 1, 0xB1, 0, 255, 0], b) == .good(64))
        #expect(b.bytes[5] == 1)
        #expect(f.run([0x12, 1, 0xB2, 0, 255, 0], b) == .good(8))
        #expect(b.bytes[5] & 0x80 != 0)
        // Linux hides INQUIRY failures, so an unknown page is GOOD with nothing transferred.
        #expect(f.run([0x12, 1, 0x89, 0, 255, 0], b) == .good(0))
    }

    @Test func readCapacity10And16() throws {
        let f = Fixture(capacity: 1 << 24)
        let b = try Buffer(32)
        #expect(f.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], b) == .good(8))
        #expect(Array(b.bytes[0..<8]) == [0, 0, 0x7F, 0xFF, 0, 0, 2, 0])
        #expect(f.run([0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], b) == .good(32))
        #expect(Array(b.bytes[0..<12]) == [0, 0, 0, 0, 0, 0, 0x7F, 0xFF, 0, 0, 2, 0])
        #expect(b.bytes[13] == 3)  // 4096 / 512 = 2^3 logical blocks per physical block
        #expect(b.bytes[14] & 0x80 != 0)  // LBPME
        expectSense(f.run([0x9E, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
    }

    @Test(arguments: [
        // (opcode form, builder) for READ/WRITE 6, 10, 12, 16 at LBA 100, 8 blocks
        ([UInt8](arrayLiteral: 0x0A, 0, 0, 100, 8, 0), [UInt8](arrayLiteral: 0x08, 0, 0, 100, 8, 0)),
        ([0x2A, 0, 0, 0, 0, 100, 0, 0, 8, 0], [0x28, 0, 0, 0, 0, 100, 0, 0, 8, 0]),
        ([0xAA, 0x08, 0, 0, 0, 100, 0, 0, 0, 8, 0, 0], [0xA8, 0, 0, 0, 0, 100, 0, 0, 0, 8, 0, 0]),
        ([0x8A, 0x08, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 8, 0, 0], [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 8, 0, 0]),
    ])
    func readAndWriteInEachForm(write: [UInt8], read: [UInt8]) throws {
        let f = Fixture()
        let out = try Buffer(4096)
        out.set((0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) })
        #expect(f.run(write, out) == .good(4096))
        #expect(f.backend.flushCount == (write[1] & 0x08 != 0 ? 1 : 0), "FUA flushes")
        let back = try Buffer(4096)
        #expect(f.run(read, back) == .good(4096))
        #expect(back.bytes == out.bytes)
    }

    @Test func readWriteErrors() throws {
        let f = Fixture(capacity: 1 << 20)  // 2048 blocks
        let b = try Buffer(8192)
        // Past the end, and an LBA + count that overflows.
        expectSense(f.run([0x28, 0, 0, 0, 0x07, 0xFF, 0, 0, 2, 0], b), SenseKey.ILLEGAL_REQUEST, .lbaOutOfRange)
        expectSense(f.run([0x88, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0, 0], b),
                    SenseKey.ILLEGAL_REQUEST, .lbaOutOfRange)
        // A buffer shorter than the transfer.
        expectSense(f.run([0x28, 0, 0, 0, 0, 0, 0, 0, 17, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        // Zero blocks is a no-op; READ(6) 0 means 256 blocks (which this buffer cannot hold).
        #expect(f.run([0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0], b) == .good())
        expectSense(f.run([0x08, 0, 0, 0, 0, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        // Read-only.
        let ro = Fixture(capacity: 1 << 20, readOnly: true)
        expectSense(ro.run([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], b), SenseKey.DATA_PROTECT, .writeProtected)
        #expect(ro.run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], b) == .good(512))
    }

    @Test func synchronizeCacheFlushes() throws {
        let f = Fixture()
        let b = try Buffer(0)
        #expect(f.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], b) == .good())
        #expect(f.run([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], b) == .good())
        #expect(f.backend.flushCount == 2)
    }

    @Test func modeSensePages() throws {
        let f = Fixture()
        let b = try Buffer(255)
        let r6 = f.run([0x1A, 0, 0x3F, 0, 255, 0], b)
        #expect(r6.status == SAMStatus.GOOD)
        #expect(Int(b.bytes[0]) + 1 == r6.transferred)
        #expect(b.bytes[3] == 8)  // block descriptor
        #expect(b.bytes[12] == 0x08 && b.bytes[14] & 0x04 != 0)  // caching page, WCE
        #expect(b.bytes[32] == 0x0A)  // then the control page
        let dbd = f.run([0x1A, 0x08, 0x08, 0, 255, 0], b)
        #expect(dbd == .good(24) && b.bytes[3] == 0 && b.bytes[4] == 0x08)
        let r10 = f.run([0x5A, 0x08, 0x0A, 0, 0, 0, 0, 0, 255, 0], b)
        #expect(r10 == .good(20) && b.bytes[8] == 0x0A)
        #expect(f.run([0x1A, 0, 0x48, 0, 255, 0], b) == .good(32))  // changeable values: WCE not changeable
        #expect(b.bytes[14] & 0x04 == 0)
        expectSense(f.run([0x1A, 0, 0x1C, 0, 255, 0], b), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        expectSense(f.run([0x1A, 0, 0xC8, 0, 255, 0], b), SenseKey.ILLEGAL_REQUEST, .savingParametersNotSupported)
        let ro = Fixture(readOnly: true)
        _ = ro.run([0x1A, 0x08, 0x3F, 0, 255, 0], b)
        #expect(b.bytes[2] & 0x80 != 0, "WP for a read-only disk")
    }

    @Test func unmapAndWriteSame() throws {
        let f = Fixture(capacity: 1 << 20)
        let data = try Buffer(4096, fill: 0xAB)
        #expect(f.run([0x2A, 0, 0, 0, 0, 0, 0, 0, 8, 0], data) == .good(4096))
        // UNMAP LBA 2, 4 blocks.
        let list = try Buffer(24)
        list.set([0, 22, 0, 16, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 4] + [0, 0, 0, 0])
        #expect(f.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], list) == .good())
        let back = try Buffer(4096)
        _ = f.run([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], back)
        #expect(back.bytes[0..<1024].allSatisfy { $0 == 0xAB })
        #expect(back.bytes[1024..<3072].allSatisfy { $0 == 0 })
        #expect(back.bytes[3072...].allSatisfy { $0 == 0xAB })
        // A descriptor past the end; a descriptor length the list does not hold.
        list.set([0, 22, 0, 16, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0x07, 0xFF] + [0, 0, 0, 4] + [0, 0, 0, 0])
        expectSense(f.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], list), SenseKey.ILLEGAL_REQUEST, .lbaOutOfRange)
        list.set([0, 22, 0, 32])
        expectSense(f.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], list), SenseKey.ILLEGAL_REQUEST, .parameterListLengthError)
        // WRITE SAME(16) of a pattern block over 4 blocks, then WRITE SAME(10) with UNMAP and a zero block.
        let block = try Buffer(512, fill: 0x5C)
        #expect(f.run([0x93, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 4, 0, 0], block) == .good())
        _ = f.run([0x28, 0, 0, 0, 0, 10, 0, 0, 4, 0], back)
        #expect(back.bytes[0..<2048].allSatisfy { $0 == 0x5C })
        let zero = try Buffer(512)
        #expect(f.run([0x41, 0x08, 0, 0, 0, 10, 0, 0, 4, 0], zero) == .good())
        _ = f.run([0x28, 0, 0, 0, 0, 10, 0, 0, 4, 0], back)
        #expect(back.bytes[0..<2048].allSatisfy { $0 == 0 })
        expectSense(f.run([0x41, 0x08, 0, 0, 0, 10, 0, 0, 0, 0], zero), SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        expectSense(f.run([0x41, 0x08, 0, 0, 0x07, 0xFF, 0, 0, 4, 0], zero), SenseKey.ILLEGAL_REQUEST, .lbaOutOfRange)
        let ro = Fixture(readOnly: true)
        expectSense(ro.run([0x41, 0x08, 0, 0, 0, 10, 0, 0, 4, 0], zero), SenseKey.DATA_PROTECT, .writeProtected)
    }
}

@Suite struct SCSILUNTableTests {
    @Test func reportLUNsListsPresentLUNsAndAbsentOnesAreInvalid() throws {
        let table = SCSILUNTable()
        let d = SCSIDisk(backend: MemoryBackend(capacity: 1 << 20), serialNumber: "a", identifier: 1)
        #expect(table.attach(d, at: 3))
        #expect(!table.attach(d, at: 3))
        #expect(!table.attach(d, at: 64))
        #expect(table.attach(SCSIDisk(backend: MemoryBackend(capacity: 1 << 20), serialNumber: "b", identifier: 2), at: 0))
        let b = try Buffer(64)
        let r = table.execute(lun: 9, cdb([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0]), data: b.vector, dataLength: 64)
        #expect(r == .completed(.good(24)))
        #expect(Array(b.bytes[0..<4]) == [0, 0, 0, 16])
        #expect(b.bytes[9] == 0 && b.bytes[17] == 3)
        guard case .completed(let bad) = table.execute(lun: 0, cdb([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]),
                                                       data: b.vector, dataLength: 64) else { Issue.record("absent?"); return }
        expectSense(bad, SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        // Commands to an absent LUN; INQUIRY answers "not present".
        #expect(table.execute(lun: 5, cdb([0x00, 0, 0, 0, 0, 0]), data: b.vector, dataLength: 0) == .lunAbsent)
        #expect(table.execute(lun: 5, cdb([0x12, 0, 0, 0, 36, 0]), data: b.vector, dataLength: 64) == .completed(.good(36)))
        #expect(b.bytes[0] == 0x7F)
        // Hot remove.
        #expect(table.detach(3) != nil)
        #expect(table.execute(lun: 3, cdb([0x00, 0, 0, 0, 0, 0]), data: b.vector, dataLength: 0) == .lunAbsent)
        #expect(table.presentLUNs == [0])
        #expect(table.firstFreeLUN == 1)
    }
}

/// A backend whose storage is unreachable (an NBD server gone), or failing with I/O errors.
final class UnreachableBackend: BlockBackend, @unchecked Sendable {
    let info = BlockBackendInfo(capacity: 1 << 20, description: "unreachable")
    let error: BackendError
    init(_ error: BackendError) { self.error = error }
    func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) { throw error }
    func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) { throw error }
    func flush() throws(BackendError) { throw error }
    func unmap(at offset: UInt64, length: UInt64) throws(BackendError) { throw error }
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) { throw error }
}

@Suite struct SCSIDiskBackendFailureTests {
    @Test func aDisconnectedBackendIsNotReadyAndAnIOErrorAMediumError() throws {
        let b = try Buffer(512)
        let gone = SCSIDisk(backend: UnreachableBackend(.disconnected("server gone")), serialNumber: "g", identifier: 1)
        for c: [UInt8] in [[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]] {
            expectSense(gone.execute(cdb(c), data: b.vector, dataLength: c[0] == 0x35 ? 0 : 512), SenseKey.NOT_READY,
                        .logicalUnitCommunicationFailure)
        }
        let failing = SCSIDisk(backend: UnreachableBackend(.io(call: "pread", errno: 5)), serialNumber: "f", identifier: 2)
        expectSense(failing.execute(cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), data: b.vector, dataLength: 512),
                    SenseKey.MEDIUM_ERROR, .unrecoveredReadError)
    }
}

/// Records the backend outcome of an asynchronous READ or WRITE.
final class OutcomeBox: BlockIOCompletion, @unchecked Sendable {
    var calls = 0
    var error: BackendError?
    func blockIOCompleted(_ error: BackendError?) {
        calls += 1
        self.error = error
    }
}

@Suite struct SCSIDiskAsyncPathTests {
    /// prepareTransfer checks what execute checks, start moves the data, result(of:) builds the same answers.
    @Test func prepareStartAndResultMatchExecute() throws {
        let f = Fixture(capacity: 1 << 20)
        let b = try Buffer(4096, fill: 0x5A)
        guard case .transfer(let w) = f.disk.prepareTransfer(cdb([0x2A, 0x08, 0, 0, 0, 8, 0, 0, 8, 0]), data: b.vector, dataLength: 4096)
        else { Issue.record("a WRITE(10) is a transfer"); return }
        #expect(w == SCSIDiskTransfer(lba: 8, offset: 4096, bytes: 4096, isWrite: true, fua: true))
        let box = OutcomeBox()
        f.disk.start(w, data: b.vector, completion: box)
        #expect(box.calls == 1 && box.error == nil, "a synchronous backend completes before start returns")
        #expect(f.disk.result(of: w, box.error) == .good(4096))
        let r = try Buffer(4096)
        guard case .transfer(let t) = f.disk.prepareTransfer(cdb([0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0]), data: r.vector, dataLength: 4096)
        else { Issue.record("a READ(10) is a transfer"); return }
        f.disk.start(t, data: r.vector, completion: box)
        #expect(r.bytes == [UInt8](repeating: 0x5A, count: 4096))
        #expect(!f.disk.completesAsynchronously)

        // Refusals, without the backend.
        #expect(f.disk.prepareTransfer(cdb([0x00, 0, 0, 0, 0, 0]), data: r.vector, dataLength: 0) == .notReadWrite)
        #expect(f.disk.prepareTransfer(cdb([0x28, 0, 0, 0, 0x08, 0, 0, 0, 1, 0]), data: r.vector, dataLength: 512)
                == .completed(f.run([0x28, 0, 0, 0, 0x08, 0, 0, 0, 1, 0], r)))
        #expect(f.disk.prepareTransfer(cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 16, 0]), data: r.vector, dataLength: 4096)
                == .completed(f.run([0x28, 0, 0, 0, 0, 0, 0, 0, 16, 0], try Buffer(4096))),
                "a transfer longer than the buffer")
        #expect(f.disk.prepareTransfer(cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0]), data: r.vector, dataLength: 0) == .completed(.good()))
        #expect(f.disk.prepareTransfer(cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]), data: r.vector, dataLength: 8192)
                == .completed(f.disk.execute(cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]), data: r.vector, dataLength: 8192)),
                "a data length past the buffer")
        expectSense(f.disk.execute(cdb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]), data: r.vector, dataLength: 8192),
                    SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
        let ro = Fixture(capacity: 1 << 20, readOnly: true)
        guard case .completed(let refused) = ro.disk.prepareTransfer(cdb([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]), data: b.vector, dataLength: 512)
        else { Issue.record("a WRITE to a read-only disk is refused"); return }
        expectSense(refused, SenseKey.DATA_PROTECT, .writeProtected)

        // The backend's errors, as the synchronous path reports them.
        expectSense(f.disk.result(of: t, .disconnected("gone")), SenseKey.NOT_READY, .logicalUnitCommunicationFailure)
        expectSense(f.disk.result(of: t, .io(call: "nbd", errno: 5)), SenseKey.MEDIUM_ERROR, .unrecoveredReadError)
        expectSense(f.disk.result(of: w, .io(call: "nbd", errno: 5)), SenseKey.MEDIUM_ERROR, .writeError)
        expectSense(f.disk.result(of: w, .readOnly), SenseKey.DATA_PROTECT, .writeProtected)
    }
}
