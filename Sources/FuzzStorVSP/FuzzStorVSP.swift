// Fuzz target: StorVSP's packet handling behind a real VMBus host, fed by a raw guest. Each input is a run of
// VSTOR packets, in-band or GPA-direct with hostile range blocks (counts, lengths, offsets, PFNs in and out of
// guest memory), over two LUNs (one read-only). Every packet that asks for a completion must get exactly one, as
// long as its request, and the channel must keep serving. Build and run with Scripts/fuzz.
//
// Input: per packet, byte 0 (bit 0: GPA-direct; bit 1: no completion requested), byte 1 the payload length,
// the payload; for GPA-direct then a range block: range count, byte count (u32), byte offset (u16), PFN count,
// and one byte per PFN (below 0xF0: a data page; else an address outside memory).
import FuzzSupport
import Logging
import VMBusDiskBackend
import VMBusGuest
import VMBusMemory
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-storvsp",
    corpus: "StorVSP",
    summary: "StorVSP packet handling (VSTOR packets, GPA-direct ranges, SCSI CDBs) behind a VMBus host",
    body: fuzzStorVSP,
    seeds: storVSPSeeds)

/// One system for the whole process: host, StorVSP, a raw guest channel, initialized once, and the guest
/// pages data may point at (never the rings, which the host would then overwrite).
final class Rig: @unchecked Sendable {
    let system: InProcessSystem
    let vsp: StorVSP
    let channel: GuestChannel
    let capture = CompletionCapture()
    let dataPages: [UInt64]
    var context: UInt64 = 0

    init() {
        do {
            system = try InProcessSystem(memoryPages: 2048, logLevel: fuzzVerbose ? .debug : .critical)
            vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(3), maxSubchannels: 1, maxTransferBytes: 64 * 1024)
            vsp.luns.attach(SCSIDisk(backend: MemoryBackend(capacity: 1 << 20), serialNumber: "f", identifier: 1), at: 0)
            vsp.luns.attach(SCSIDisk(backend: MemoryBackend(capacity: 64 << 10, readOnly: true), serialNumber: "r", identifier: 2), at: 1)
            system.host.addDevice(vsp)
            try system.start()
            guard let device = system.guest.devices.first else { fatalError("no device offered") }
            channel = try device.open(userData: [UInt8](repeating: 0, count: 24), handler: capture)
            dataPages = try system.partition.guest.pages.allocate(pages: 32)
            for op in [VStorOperation.beginInitialization, .queryProtocolVersion, .queryProperties, .endInitialization] {
                var p = VStorPacket(operation: op)
                if op == .queryProtocolVersion { p.version = StorageVersionBody(.win10) }
                _ = try channel.request(p.wireBytes)
            }
        } catch {
            fatalError("fuzz rig: \(error)")
        }
    }
}

nonisolated(unsafe) let rig = Rig()

func fuzzStorVSP(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    var packets = 0
    while !input.isAtEnd && packets < 32 {
        packets += 1
        let kind = input.byte()
        let payload = input.chunk()
        let gpa = kind & 1 != 0
        let wantsCompletion = kind & 2 == 0
        rig.context += 1
        let context = rig.context
        guard gpa || 16 + ((payload.count + 7) & ~7) <= rig.vsp.offer.maxPacketSize else { continue }
        do {
            if gpa {
                let rangeCount = UInt32(input.byte() % 4)
                let byteCount = input.u32() & 0x3_FFFF
                let offset = UInt32(input.u16())
                let pfnCount = Int(input.byte() % 20)
                var w = WireWriter(capacity: 16 + 8 * pfnCount)
                w.writeUInt32(0)
                w.writeUInt32(rangeCount)
                w.writeUInt32(byteCount)
                w.writeUInt32(offset)
                for _ in 0..<pfnCount {
                    let b = input.byte()
                    w.writeUInt64(b < 0xF0 ? rig.dataPages[Int(b) % rig.dataPages.count] : 0xFFFF_FF00 + UInt64(b))
                }
                let header = w.bytes
                // A packet over the offer's maximum makes the host rescind the channel (tested elsewhere); the
                // run is about what fits.
                guard 16 + header.count + ((payload.count + 7) & ~7) <= rig.vsp.offer.maxPacketSize else { continue }
                let r: Result<UInt64, GuestError> = header.withUnsafeBytes { h in
                    payload.withUnsafeBytes { p in
                        do throws(GuestError) { return .success(try rig.channel.sendGPADirectRequest(rangeHeader: h, payload: p, context: context)) }
                        catch { return .failure(error) }
                    }
                }
                _ = try r.get()
            } else if wantsCompletion {
                let r: Result<UInt64, GuestError> = payload.withUnsafeBytes { p in
                    do throws(GuestError) { return .success(try rig.channel.sendRequest(p, context: context)) }
                    catch { return .failure(error) }
                }
                _ = try r.get()
            } else {
                let r: Result<Void, GuestError> = payload.withUnsafeBytes { p in
                    do throws(GuestError) { try rig.channel.sendInband(p); return .success(()) } catch { return .failure(error) }
                }
                try r.get()
                continue
            }
        } catch {
            fuzzCheck(false, "the guest could not send: \(error)")
        }
        guard let reply = rig.capture.wait(context, timeoutNanoseconds: 5_000_000_000) else {
            return fuzzCheck(false, "no completion for packet \(packets) (\(payload.count) bytes, GPA-direct \(gpa))")
        }
        // Ring packets are padded to 8 bytes: the host sees (and answers) the padded length.
        func padded(_ n: Int) -> Int { (n + 7) & ~7 }
        let expected = padded(StorVSPNegotiation.completionLength(forRequestPayload: padded(payload.count)))
        fuzzCheck(reply.count == expected, "completion of \(reply.count) bytes for a request of \(payload.count) (expected \(expected))")
    }
    fuzzCheck(!rig.channel.isClosed && !rig.channel.isRescinded, "the channel stopped serving")
}

func storVSPSeeds() -> [(String, [UInt8])] {
    func srb(_ cdb: [UInt8], direction: VMSCSIRequest.DataDirection, length: UInt32, lun: UInt8 = 0) -> [UInt8] {
        var s = VMSCSIRequest()
        s.lun = lun
        s.setCDB(cdb)
        s.dataIn = direction.rawValue
        s.dataTransferLength = length
        s.senseInfoLength = 20
        return VStorPacket(operation: .executeSRB, srb: s).wireBytes
    }
    var a = FuzzInputBuilder()
    // WRITE(10) of 8 blocks from two pages, then READ(16) back, then TEST UNIT READY in-band.
    a.byte(1); a.chunk(srb([0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0], direction: .write, length: 4096))
    a.byte(1); a.u32(4096); a.u16(0); a.byte(1); a.byte(3)
    a.byte(1); a.chunk(srb([0x88, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0], direction: .read, length: 4096))
    a.byte(1); a.u32(4096); a.u16(0); a.byte(1); a.byte(4)
    a.byte(0); a.chunk(srb([0, 0, 0, 0, 0, 0], direction: .none, length: 0))
    var b = FuzzInputBuilder()
    // INQUIRY VPD 0xB0, a write to the read-only LUN, a range past memory.
    b.byte(1); b.chunk(srb([0x12, 1, 0xB0, 0, 0xFC, 0], direction: .read, length: 252))
    b.byte(1); b.u32(252); b.u16(100); b.byte(1); b.byte(5)
    b.byte(1); b.chunk(srb([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .write, length: 512, lun: 1))
    b.byte(1); b.u32(512); b.u16(0); b.byte(1); b.byte(0xF3)
    var c = FuzzInputBuilder()
    c.byte(0); c.chunk(VStorPacket(operation: .queryProperties).wireBytes)
    c.byte(0); c.chunk([1, 2, 3])
    c.byte(2); c.chunk(VStorPacket(operation: .createSubChannels).wireBytes)
    return [("write-read", a.bytes), ("errors", b.bytes), ("control", c.bytes)]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzStorVSP_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
