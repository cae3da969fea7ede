import VMBusDiskBackend
import VMBusProtocol
import VMBusWire
import VMBusSCSI
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSC

#if canImport(Glibc)
import Glibc
#endif

/// Allocations per operation of each layer of the storage data path on its own, to find where a request
/// allocates when the whole stack does.
enum StorageAllocationProbe {
    static var section: BenchmarkSection {
        BenchmarkSection(name: "storage-alloc-probe", summary: "allocations per operation, layer by layer (parse, SCSI target, whole stack at QD1)") { context in
            let n = 10_000
            var packet = VStorPacket(operation: .completeIO, flags: 0)
            var srb = VMSCSIRequest()
            srb.srbStatus = .success
            srb.dataTransferLength = 4096
            packet.srb = srb
            let bytes = packet.wireBytes
            var m = mallocCount()
            for _ in 0..<n {
                _ = bytes.withUnsafeBytes { try? SRBCompletion.parse($0, requestedLength: 4096) }
            }
            context.row("parse", "\(format(Double(mallocCount() - m) / Double(n), 3)) per completion")

            // A GPA-direct packet as the host's worker sees it: descriptor, one range of 2 pages, a VSTOR packet.
            var w = WireWriter(capacity: 128)
            PacketDescriptor(type: .dataUsingGPADirect, offset8: 5, len8: 13, flags: 1, transactionID: 7).encode(into: &w)
            GPARange.encodeSingleRangeBlock(byteCount: 8192, byteOffset: 0, pfns: [3, 4], into: &w)
            w.writeBytes(bytes)
            let whole = w.bytes
            m = mallocCount()
            for _ in 0..<n {
                var r = WireReader(whole)
                if let view = try? GPADirectPacketView(from: &r), let range = try? view.firstRange {
                    _ = try? range.pfn(1)
                    _ = try? VStorPacket(from: &r)
                }
            }
            context.row("gpa-view", "\(format(Double(mallocCount() - m) / Double(n), 3)) per GPA-direct header read")
            var rangeBlock = WireWriter(capacity: 64)
            let pfns: [UInt64] = [1, 2, 3, 4]
            m = mallocCount()
            for _ in 0..<n {
                rangeBlock.reset()
                GPARange.encodeSingleRangeBlock(byteCount: 4096, byteOffset: 0, pfns: pfns.prefix(1), into: &rangeBlock)
            }
            context.row("gpa-encode", "\(format(Double(mallocCount() - m) / Double(n), 3)) per range block encoded")

            let path = try StorageBenchmarks.makeFile()
            defer { unlink(path) }
            let backend = try RawFileBackend(path: path)
            let disk = SCSIDisk(backend: backend, serialNumber: "p", identifier: 1)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { buffer.deallocate() }
            let vector = IOVector(capacity: 4)
            var cdbBytes = InlineArray<16, UInt8>(repeating: 0)
            cdbBytes[0] = SCSIOpcode.READ_16
            cdbBytes[13] = 8
            m = mallocCount()
            for i in 0..<n {
                vector.reset()
                try vector.append(base: buffer.baseAddress!, length: 4096)
                cdbBytes[9] = UInt8(truncatingIfNeeded: i)
                let cdb = SCSICDB(raw: cdbBytes, length: 16)
                _ = disk.execute(cdb, data: vector, dataLength: 4096)
            }
            context.row("scsi-target", "\(format(Double(mallocCount() - m) / Double(n), 3)) per READ(16)")

            let stack = try StorageBenchmarks.Stack(path: path)
            defer { stack.stop() }
            for i in 0..<100 { try stack.disk.read(at: UInt64(i) * 4096, into: buffer) }
            m = mallocCount()
            for i in 0..<n { try stack.disk.read(at: UInt64(i % 1000) * 4096, into: buffer) }
            context.row("stack-qd1", "\(format(Double(mallocCount() - m) / Double(n), 3)) per 4 KiB read")
            m = mallocCount()
            for _ in 0..<1000 { try stack.disk.flush() }
            context.row("flush-qd1", "\(format(Double(mallocCount() - m) / 1000, 3)) per SYNCHRONIZE CACHE (in-band, no data)")

            // StorVSP's asynchronous path (job, bounce buffer, completion from the backend's call), as NBD takes it.
            let asyncStack = try StorageBenchmarks.Stack(backend: InlineAsyncBackend(try RawFileBackend(path: path)))
            defer { asyncStack.stop() }
            for i in 0..<100 { try asyncStack.disk.read(at: UInt64(i) * 4096, into: buffer) }
            m = mallocCount()
            for i in 0..<n { try asyncStack.disk.read(at: UInt64(i % 1000) * 4096, into: buffer) }
            let perRead = Double(mallocCount() - m) / Double(n)
            context.row("stack-qd1-async", "\(format(perRead, 3)) per 4 KiB read (StorVSP's asynchronous path)")
            context.require(perRead < 0.01, "StorVSP's asynchronous path allocates per request: \(perRead)")
        }
    }
}

/// A backend that says it completes asynchronously but completes each request inline on the submitting
/// thread: StorVSP's asynchronous path without a server behind it.
final class InlineAsyncBackend: ForwardingBackend, @unchecked Sendable {
    override var completesAsynchronously: Bool { true }
}
