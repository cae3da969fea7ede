// Fuzz target: the ring buffer's reading end over hostile shared memory, and the packet headers parsed from
// what it copies out. Build and run with Scripts/fuzz; see docs/CONFORMANCE.md "Fuzzing".
//
// Input (fixed header, then the data area):
//   byte 0      bits 0-1: data pages - 1; bit 2: paged (each page its own allocation); bits 3-4: packet buffer
//               capacity (16, 256, 4096, 65536); bit 5: run the writer round trip; bit 6: the writer moves
//               write_index after the first packet; bit 7: drain through a ChannelEndpoint instead, then send
//               on an outgoing ring whose control page holds the same hostile words
//   1..<21      control page: write_index, read_index, interrupt_mask, pending_send_sz, feature_bits (u32 LE)
//   21..<25     the write_index the peer stores mid-batch (bit 6)
//   25..<29     writer round trip: start offset
//   29..<53     writer round trip: 8 × (payload length u16, kind u8)
//   53...       the data area, placed starting at read_index (wrapping); the rest of the area is zero
import FuzzSupport
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-ring",
    corpus: "Ring",
    summary: "IncomingRing over hostile indices and data, PacketBuffer, GPA-direct and transfer-page headers",
    body: fuzzRing,
    seeds: ringSeeds)

let headerLength = 53
let capacities = [16, 256, 4096, 65536]

/// Page-aligned memory for one ring: a control page and `dataPages` data pages, contiguous or one
/// allocation per page (so ASan sees any access past a page).
final class RingPages {
    let pages: [UnsafeMutableRawPointer]
    let blocks: [UnsafeMutableRawPointer]
    let memory: RingMemory

    init(dataPages: Int, paged: Bool) {
        var blocks: [UnsafeMutableRawPointer] = []
        var pages: [UnsafeMutableRawPointer] = []
        func alloc(_ size: Int) -> UnsafeMutableRawPointer {
            var p: UnsafeMutableRawPointer?
            guard posix_memalign(&p, 4096, size) == 0, let p else { fatalError("posix_memalign failed") }
            memset(p, 0, size)
            return p
        }
        if paged {
            for _ in 0...dataPages { let p = alloc(4096); blocks.append(p); pages.append(p) }
        } else {
            let p = alloc((dataPages + 1) * 4096)
            blocks.append(p)
            pages = (0...dataPages).map { p + $0 * 4096 }
        }
        self.blocks = blocks
        self.pages = pages
        do {
            memory = paged ? try RingMemory(pages: pages) : try RingMemory(contiguous: pages[0], totalSize: (dataPages + 1) * 4096)
        } catch {
            fatalError("ring memory: \(error)")
        }
    }

    deinit { for b in blocks { free(b) } }

    var dataSize: Int { memory.dataSize }

    func setControl(_ offset: Int, _ value: UInt32) {
        pages[0].storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Writes `bytes` (at most `dataSize`) into the data area starting at `offset`, wrapping at the end.
    func poke(_ offset: Int, _ bytes: [UInt8]) {
        var at = offset % dataSize
        var done = 0
        bytes.withUnsafeBytes { src in
            while done < src.count {
                let n = min(src.count - done, 4096 - at % 4096)
                (pages[1 + at / 4096] + at % 4096).copyMemory(from: src.baseAddress! + done, byteCount: n)
                done += n
                at = (at + n) % dataSize
            }
        }
    }
}

/// Byte equality through memcmp: Swift's element loop would be instrumented and dominate the run time.
func same(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
    a.withUnsafeBytes { x in
        b.withUnsafeBytes { y in x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
    }
}

func same(_ a: ArraySlice<UInt8>, _ b: [UInt8]) -> Bool { same(a, b[...]) }
func same(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool { same(a[...], b) }
func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { same(a[...], b[...])
}

@Sendable func fuzzRing(_ data: [UInt8]) {
    var input = FuzzInput(data)
    let mode = input.byte()
    let dataPages = Int(mode & 3) + 1
    let paged = mode & 4 != 0
    let capacity = capacities[Int(mode >> 3) & 3]
    let ring = RingPages(dataPages: dataPages, paged: paged)
    let write = input.u32(), read = input.u32()
    ring.setControl(0, write)
    ring.setControl(4, read)
    ring.setControl(8, input.u32())
    ring.setControl(12, input.u32())
    ring.setControl(64, input.u32())
    let midWrite = input.u32()
    let writerStart = input.u32()
    let writerPackets = (0..<8).map { _ in (input.u16(), input.byte()) }
    fuzzCheck(input.index == min(headerLength, data.count), "header layout")
    ring.poke(Int(read & ~7) % ring.dataSize, Array(input.rest().prefix(ring.dataSize)))

    if mode & 0x80 != 0 {
        endpoint(ring, capacity: capacity, dataPages: dataPages, paged: paged, packets: writerPackets)
    } else {
        readAll(ring, capacity: capacity, midWrite: mode & 0x40 != 0 ? midWrite : nil)
    }
    if mode & 0x20 != 0 { writerRoundTrip(ring, start: writerStart, packets: writerPackets) }
}

/// Reads until the ring is empty or refuses, in up to three batches, checking every packet.
func readAll(_ ring: RingPages, capacity: Int, midWrite: UInt32?) {
    let reader = IncomingRing(memory: ring.memory)
    let buffer = PacketBuffer(capacity: capacity)
    var midWrite = midWrite
    _ = try? reader.bytesAvailable
    reader.maskInterrupts()
    for _ in 0..<3 {
        var batch: IncomingBatch
        do {
            batch = try reader.beginRead()
        } catch {
            _ = error.description
            fuzzCheck(reader.isCorrupt, "beginRead failed without corruption: \(error)")
            return
        }
        var done = false
        for _ in 0..<4096 {
            do {
                guard let packet = try reader.next(&batch, into: buffer) else {
                    done = true
                    break
                }
                fuzzLog("packet \(packet.descriptor) length \(packet.length) at \(batch.nextOffset)")
                check(packet, in: buffer, capacity: capacity)
                fuzzCheck(batch.nextOffset >= 0 && batch.nextOffset < ring.dataSize && batch.nextOffset & 7 == 0,
                          "batch offset \(batch.nextOffset)")
                if let w = midWrite {
                    ring.setControl(0, w)
                    midWrite = nil
                }
            } catch {
                fuzzLog("read stopped: \(error)")
                switch error {
                case .tooLarge(let n): fuzzCheck(n > capacity, "tooLarge(\(n)) with a \(capacity)-byte buffer")
                case .corrupt: fuzzCheck(reader.isCorrupt, "corrupt error on a ring not marked corrupt")
                default: fuzzCheck(false, "unexpected read error \(error)")
                }
                done = true
                break
            }
        }
        let committed = reader.commit(batch)
        if committed { fuzzCheck(!batch.isEmpty, "signal after an empty batch") }
        let snapshot = ring.memory.controlSnapshot()
        fuzzCheck(Int(snapshot.readIndex) < ring.dataSize || reader.isCorrupt || batch.isEmpty,
                  "read_index \(snapshot.readIndex) after commit")
        _ = reader.unmaskInterrupts()
        _ = try? reader.isEmpty()
        if done && reader.isCorrupt { return }
    }
}

/// The channel layer both sides use: `drain` over the hostile incoming ring, then `send` into an outgoing ring
/// whose reader (the peer) left the same hostile control words.
func endpoint(_ ring: RingPages, capacity: Int, dataPages: Int, paged: Bool, packets: [(UInt16, UInt8)]) {
    let out = RingPages(dataPages: dataPages, paged: paged)
    for offset in [0, 4, 8, 12, 64] {
        out.setControl(offset, ring.pages[0].loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    let e = ChannelEndpoint(outgoing: OutgoingRing(memory: out.memory), incoming: IncomingRing(memory: ring.memory),
                            maxPacketSize: capacity, signalPeer: {})
    e.sendTimeoutNanoseconds = 0
    do {
        let n = try e.drain { packet, buffer in check(packet, in: buffer, capacity: capacity) }
        fuzzLog("drained \(n) packets")
    } catch {
        fuzzLog("drain stopped: \(error)")
        _ = error.description
        fuzzCheck(e.isClosed && e.failure == error, "a failed drain leaves the endpoint open or forgets why")
    }
    // A failed drain closes its endpoint; the sends get their own over the same outgoing ring.
    let sender = e.isClosed
        ? ChannelEndpoint(outgoing: OutgoingRing(memory: out.memory), incoming: IncomingRing(memory: ring.memory),
                          maxPacketSize: capacity, signalPeer: {})
        : e
    sender.sendTimeoutNanoseconds = 0
    for (i, (length, kind)) in packets.enumerated() where kind & 0x80 == 0 {
        let payload = [UInt8](repeating: UInt8(i), count: Int(length) % (out.dataSize + 64))
        do {
            try sender.send(type: kind & 1 == 0 ? .dataInband : .completion, flags: 0, transactionID: UInt64(i),
                       bytes: payload)
        } catch {
            fuzzLog("send stopped: \(error)")
            _ = error.description
            break
        }
    }
    withExtendedLifetime(out) {}
}

/// Checks one packet the ring copied out, and parses its type-specific header.
func check(_ packet: ReceivedPacket, in buffer: PacketBuffer, capacity: Int) {
    fuzzCheck((try? packet.descriptor.validate()) != nil, "invalid descriptor delivered: \(packet.descriptor)")
    fuzzCheck(packet.length >= PacketDescriptor.wireSize && packet.length <= capacity && packet.length % 8 == 0,
              "packet length \(packet.length), capacity \(capacity)")
    fuzzCheck(packet.payloadOffset >= PacketDescriptor.wireSize
              && packet.payloadOffset + packet.payloadLength == packet.length, "payload range \(packet.payloadRange)")
    let bytes = buffer.bytes(0..<packet.length)
    var w = WireWriter(capacity: 16)
    packet.descriptor.encode(into: &w)
    fuzzCheck(same(bytes[0..<16], w.bytes), "descriptor bytes differ from the descriptor")
    fuzzCheck(same(buffer.payloadArray(of: packet), bytes[packet.payloadRange]), "payloadArray")

    var reader = buffer.wireReader(for: packet)
    fuzzCheck(reader.remaining == packet.payloadLength, "payload reader length")
    while reader.remaining >= 8 { _ = try? reader.readUInt64() }
    var scratch = [UInt8](repeating: 0, count: 64)
    let skip = Int(bytes[bytes.count - 1])
    let copied = scratch.withUnsafeMutableBytes {
        buffer.copy(payloadOf: packet, to: $0.baseAddress!, maxCount: $0.count, skipping: skip)
    }
    fuzzCheck(copied == max(0, min(64, packet.payloadLength - skip)), "copied \(copied)")
    if copied > 0 {
        fuzzCheck(same(scratch[0..<copied], bytes[(packet.payloadOffset + skip)...].prefix(copied)), "copy")
    }

    // Both header decoders see every packet; each must accept only its own type.
    do {
        let h = try GPADirectPacketHeader.decode(packet: bytes)
        fuzzLog("  GPA direct: \(h.ranges)")
        fuzzCheck(h.descriptor == packet.descriptor && h.descriptor.type == .dataUsingGPADirect, "GPA-direct type")
        fuzzCheck(!h.ranges.isEmpty, "GPA-direct without ranges")
        for r in h.ranges { fuzzCheck((try? r.validate()) != nil, "invalid GPA-direct range") }
        fuzzCheck(GPADirectPacketHeader.headerLength(ranges: h.ranges) <= packet.payloadOffset, "ranges past payload")
        var e = WireWriter(capacity: 64)
        h.encode(into: &e)
        var again = bytes
        again.replaceSubrange(0..<e.bytes.count, with: e.bytes)
        fuzzCheck((try? GPADirectPacketHeader.decode(packet: again)) == h, "GPA-direct header does not round trip")
    } catch {
        _ = error.description
    }
    do {
        let h = try TransferPagePacketHeader.decode(packet: bytes)
        fuzzLog("  transfer pages: \(h.ranges)")
        fuzzCheck(h.descriptor == packet.descriptor && h.descriptor.type == .dataUsingXferPages, "xfer-page type")
        fuzzCheck(TransferPagePacketHeader.headerLength(rangeCount: h.ranges.count) <= packet.payloadOffset,
                  "transfer-page ranges past payload")
        var e = WireWriter(capacity: 64)
        h.encode(into: &e)
        var again = bytes
        again.replaceSubrange(0..<e.bytes.count, with: e.bytes)
        fuzzCheck((try? TransferPagePacketHeader.decode(packet: again)) == h, "transfer-page header does not round trip")
    } catch {
        _ = error.description
    }
}

/// Our own writer from an arbitrary start offset (wrapping, paged memory): every packet it accepts reads back
/// unchanged.
func writerRoundTrip(_ ring: RingPages, start: UInt32, packets: [(UInt16, UInt8)]) {
    let offset = UInt32(Int(start & ~7) % ring.dataSize)
    ring.setControl(0, offset)
    ring.setControl(4, offset)
    ring.setControl(8, 0)
    ring.setControl(12, 0)
    ring.setControl(64, 1)
    let writer = OutgoingRing(memory: ring.memory)
    let reader = IncomingRing(memory: ring.memory)
    let types: [VMBusPacketType] = [.dataInband, .completion, .dataUsingGPADirect, .dataUsingXferPages]
    var expected: [(VMBusPacketType, UInt64, [UInt8], [UInt8])] = []
    do {
        var batch = try writer.beginWrite()
        for (i, (length, kind)) in packets.enumerated() {
            let type = types[Int(kind & 3)]
            let header = [UInt8](repeating: UInt8(i), count: Int(kind >> 2 & 3) * 8)
            var payload = [UInt8](repeating: UInt8(i + 1), count: Int(length) % (ring.dataSize + 64))
            if !payload.isEmpty { payload[0] = UInt8(truncatingIfNeeded: length); payload[payload.count - 1] = 0xEE }
            let tid = UInt64(i) << 32 | UInt64(length)
            do {
                try header.withUnsafeBytes { h in
                    try payload.withUnsafeBytes { p in
                        try writer.append(&batch, type: type, flags: 0, transactionID: tid, header: h, payload: p)
                    }
                }
                expected.append((type, tid, header, payload))
                fuzzLog("wrote \(type) header \(header.count) payload \(payload.count)")
            } catch let error as RingError {
                switch error {
                case .full, .tooLarge: break
                default: fuzzCheck(false, "writer failed on a clean ring: \(error)")
                }
            } catch {
                fuzzCheck(false, "unexpected error \(error)")
            }
        }
        _ = writer.commit(batch)
    } catch {
        fuzzCheck(false, "beginWrite on a clean ring: \(error)")
    }
    let buffer = PacketBuffer(capacity: ring.dataSize)
    do {
        var batch = try reader.beginRead()
        for (type, tid, header, payload) in expected {
            guard let p = try reader.next(&batch, into: buffer) else {
                fuzzCheck(false, "written packet missing")
                return
            }
            fuzzCheck(p.descriptor.type == type && p.descriptor.transactionID == tid, "descriptor changed")
            fuzzCheck(same(buffer.bytes(p.headerRange), header), "header changed")
            fuzzCheck(same(buffer.payloadArray(of: p).prefix(payload.count), payload), "payload changed")
            fuzzCheck(p.payloadLength - payload.count < 8, "payload padded by \(p.payloadLength - payload.count)")
        }
        let extra = try reader.next(&batch, into: buffer)
        fuzzCheck(extra == nil, "extra packet")
        _ = reader.commit(batch)
        let empty = try reader.isEmpty()
        fuzzCheck(empty, "ring not empty after reading everything")
    } catch {
        fuzzCheck(false, "reading our own packets failed: \(error)")
    }
}

// MARK: - Seeds

@Sendable func ringSeeds() -> [(String, [UInt8])] {
    func seed(mode: UInt8, write: UInt32, read: UInt32, packets: [[UInt8]]) -> [UInt8] {
        var b = FuzzInputBuilder()
        b.byte(mode)
        b.u32(write); b.u32(read); b.u32(0); b.u32(0); b.u32(1)
        b.u32(0)
        b.u32(4000)
        for i in 0..<8 { b.u16(UInt16(i * 37)); b.byte(UInt8(i)) }
        for p in packets { b.raw(p) }
        return b.bytes
    }
    /// A packet as a writer lays it out: descriptor, header, payload padded, trailer.
    func packet(_ type: VMBusPacketType, header: [UInt8], payload: [UInt8], at start: UInt32) -> [UInt8] {
        let offset = 16 + header.count
        let total = (offset + payload.count + 7) / 8 * 8
        var w = WireWriter(capacity: total + 8)
        PacketDescriptor(type: type, offset8: UInt16(offset / 8), len8: UInt16(total / 8),
                         flags: PacketDescriptor.flagCompletionRequested, transactionID: 7).encode(into: &w)
        w.writeBytes(header)
        w.writeBytes(payload)
        w.writeBytes([UInt8](repeating: 0, count: total - offset - payload.count))
        w.writeUInt64(UInt64(start) << 32)
        return w.bytes
    }
    let inband = packet(.dataInband, header: [], payload: Array("hello, ring".utf8), at: 4000)
    var gpa = WireWriter(capacity: 64)
    gpa.writeUInt32(0)
    gpa.writeUInt32(1)
    GPARange(byteCount: 5000, byteOffset: 100, pfns: [3, 4]).encode(into: &gpa)
    let gpaPacket = packet(.dataUsingGPADirect, header: gpa.bytes, payload: [1, 2, 3, 4], at: 4000 + 32)
    var xfer = WireWriter(capacity: 64)
    xfer.writeUInt16(0xCAFE); xfer.writeUInt8(0); xfer.writeUInt8(0); xfer.writeUInt32(2)
    TransferPageRange(byteCount: 100, byteOffset: 0).encode(into: &xfer)
    TransferPageRange(byteCount: 60, byteOffset: 4096).encode(into: &xfer)
    let xferPacket = packet(.dataUsingXferPages, header: xfer.bytes, payload: [9, 9], at: 0)
    let all = inband + gpaPacket + xferPacket
    let used = UInt32(all.count)
    return [
        // One data page, ring wrapping: read_index 4000, packets running past the end of the data area.
        ("wrap-contiguous", seed(mode: 0x10, write: (4000 + used) % 4096, read: 4000, packets: [all])),
        // Two paged data pages, starting at 0, writer round trip enabled.
        ("paged-writer", seed(mode: 0x01 | 0x04 | 0x10 | 0x20, write: used, read: 0, packets: [all])),
        ("empty", seed(mode: 0x10, write: 0, read: 0, packets: [])),
        // The same packets through ChannelEndpoint.drain, then sends.
        ("endpoint", seed(mode: 0x80 | 0x10, write: (4000 + used) % 4096, read: 4000, packets: [all])),
    ]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzRing_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
