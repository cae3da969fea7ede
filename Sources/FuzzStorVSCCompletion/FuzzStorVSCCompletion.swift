// Fuzz target: what StorVSC parses from a hostile host: COMPLETE_IO packets for EXECUTE_SRB
// (`SRBCompletion.parse` and its classification) and the SCSI data of LUN discovery (REPORT LUNS, INQUIRY,
// READ CAPACITY(16), MODE SENSE, VPD pages). Pure functions: fast. Build and run with Scripts/fuzz.
//
// Input: bytes 0-1 the requested data length, byte 2 the LUN, the rest the packet (also used as the SCSI data).
import FuzzSupport
import VMBusSCSI
import VMBusStorageProtocol
import VMBusStorVSC

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-storvsc-completion",
    corpus: "StorVSCCompletion",
    summary: "StorVSC's parsing of host completions and LUN discovery data",
    body: fuzzCompletion,
    seeds: completionSeeds)

func fuzzCompletion(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let requested = Int(input.u16()) * 16
    let lun = input.byte()
    let packet = input.rest()
    let parsed: Result<SRBCompletion, StorVSCError> = packet.withUnsafeBytes { p in
        do throws(StorVSCError) { return .success(try SRBCompletion.parse(p, requestedLength: requested)) }
        catch { return .failure(error) }
    }
    switch parsed {
    case .success(let c):
        fuzzCheck(packet.count >= SRBCompletion.minimumLength, "accepted a \(packet.count)-byte completion")
        fuzzCheck(c.transferred <= requested, "more moved (\(c.transferred)) than asked (\(requested))")
        fuzzCheck(c.senseLength <= VMSCSIRequest.senseBufferSize, "sense length \(c.senseLength)")
        fuzzCheck(VStorOperation(rawValue: UInt32(packet[0]) | UInt32(packet[1]) << 8 | UInt32(packet[2]) << 16
                                 | UInt32(packet[3]) << 24) == .completeIO, "accepted another operation")
        switch c.disposition(lun: lun) {
        case .success:
            fuzzCheck(c.srbStatus == .success && c.scsiStatus == SAMStatus.GOOD, "success from \(c)")
        case .retry:
            break
        case .failure(let e):
            if case .lunRemoved(let l) = e { fuzzCheck(l == lun, "removed another LUN") }
        }
    case .failure(let e):
        guard case .malformedCompletion = e else { return fuzzCheck(false, "parse threw \(e)") }
    }
    // Discovery parsers: any data gives a value or a typed error.
    if let luns = try? LUNIdentity.parseReportLUNs(packet) {
        fuzzCheck(luns == Array(Set(luns)).sorted(), "REPORT LUNS not sorted and unique")
    }
    _ = try? LUNIdentity.parseInquiry(packet)
    if let cap = try? LUNIdentity.parseReadCapacity16(packet) {
        fuzzCheck(cap.blocks > 0 && cap.blockSize >= 512, "capacity \(cap)")
        fuzzCheck(!cap.blocks.multipliedReportingOverflow(by: UInt64(cap.blockSize)).overflow, "capacity overflows")
    }
    _ = try? LUNIdentity.parseWriteProtect(modeSense6: packet)
    _ = LUNIdentity.parseMaxUnmapBlocks(blockLimits: packet)
    _ = LUNIdentity.parseSerialNumber(packet)
}

func completionSeeds() -> [(String, [UInt8])] {
    func seed(_ name: String, requested: UInt16, _ edit: (inout VMSCSIRequest) -> Void) -> (String, [UInt8]) {
        var srb = VMSCSIRequest()
        srb.srbStatus = .success
        edit(&srb)
        var b = FuzzInputBuilder()
        b.u16(requested)
        b.byte(0)
        b.raw(VStorPacket(operation: .completeIO, flags: 0, srb: srb).wireBytes)
        return (name, b.bytes)
    }
    return [
        seed("good", requested: 256) { $0.dataTransferLength = 4096 },
        seed("sense", requested: 32) { s in
            s.srbStatus = SRBStatus.error.withAutosense()
            s.scsiStatus = SAMStatus.CHECK_CONDITION
            s.senseInfoLength = 18
            let d = FixedSenseData(key: SenseKey.UNIT_ATTENTION, AdditionalSense(0x29, 0))
            for i in 0..<18 { s.dataArea[i] = d.byte(i) }
        },
        seed("invalid-lun", requested: 1) { $0.srbStatus = .invalidLUN },
        ("capacity", [0, 1, 0] + [0, 0, 0, 0, 0, 0, 0x0F, 0xFF, 0, 0, 2, 0, 0, 0, 0x80, 0]),
    ]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzStorVSCCompletion_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
