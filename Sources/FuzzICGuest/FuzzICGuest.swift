// Fuzz target: the guest's handling of the host's IC packets, for all six services as Linux's hv_utils
// answers them (NEGOTIATE, heartbeat, shutdown, time sync, KVP pools, VSS, file copy into a private
// directory). Every packet of at least ICMSG_HDR bytes must be answered with exactly its own length and
// Linux's answer flags; shorter ones are dropped. Build and run with Scripts/fuzz.
//
// Input: per packet, byte 0 the service (mod 6), bytes 1-2 the length (mod 8 KiB), then the packet; a packet
// shorter than its length ends the input.
import FuzzSupport
import VMBusICGuest
import VMBusICProtocol
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-ic-guest",
    corpus: "ICGuest",
    summary: "the guest's IC answers (negotiation and the six services) to hostile host packets",
    body: fuzzICGuest,
    seeds: icGuestSeeds)

/// The responders, once per process; file copies land in a private directory.
final class Rig: @unchecked Sendable {
    let root: String
    let responders: [any ICResponder]

    init() {
        var template = Array("/tmp/fuzz-ic-guest-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { p in p.baseAddress.flatMap { mkdtemp($0) } }
        root = made.map { String(cString: $0) } ?? "/nonexistent-fuzz-root"
        responders = [
            HeartbeatResponder(), ShutdownResponder { _, _ in }, TimeSyncResponder(adjustClock: false), KVPResponder(),
            VSSResponder(), FileCopyResponder(root: root),
        ]
    }
}

nonisolated(unsafe) let rig = Rig()

func fuzzICGuest(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    var packets = 0
    while !input.isAtEnd && packets < 16 {
        packets += 1
        let responder = rig.responders[Int(input.byte()) % rig.responders.count]
        let length = Int(input.u16()) % 8192
        let packet = input.bytes(length)
        guard packet.count == length else { return }
        guard let message = try? ICMessage(packet: packet) else {
            fuzzCheck(packet.count < ICMessage.headerSize, "a packet of \(packet.count) bytes was not parsed")
            continue
        }
        let answer: [UInt8]
        if message.header.icmsgtype == .negotiate {
            if let a = try? responder.service.linuxAnswer(to: packet) {
                answer = a.response
            } else if let r = ICNegotiation.linuxRefusal(of: packet) {
                answer = r
            } else {
                return fuzzCheck(false, "a NEGOTIATE of \(packet.count) bytes got no answer")
            }
        } else {
            answer = responder.respond(to: message, versions: nil).message.wireBytes
        }
        fuzzCheck(answer.count == packet.count, "an answer of \(answer.count) bytes to a request of \(packet.count)")
        fuzzCheck(answer[ICMessage.headerSize - 3] == ICMessageFlags.guestResponse.rawValue, "answer flags")
    }
}

func icGuestSeeds() -> [(String, [UInt8])] {
    func packet(_ service: Int, _ type: ICMessageType, _ body: [UInt8], version: ICVersion) -> [UInt8] {
        let bytes = ICMessage(header: ICMessageHeader(icverframe: .utilFWVersion, icmsgtype: type, icvermsg: version,
                                                      icmsgsize: 0), body: body).wireBytes
        var b = FuzzInputBuilder()
        b.byte(UInt8(service))
        b.u16(UInt16(bytes.count))
        b.raw(bytes)
        return b.bytes
    }
    func negotiate(_ service: Int, _ s: ICService) -> [UInt8] {
        let bytes = ICNegotiation.request(frameworkVersions: [.utilFWVersion], serviceVersions: s.serviceVersions)
        var b = FuzzInputBuilder()
        b.byte(UInt8(service))
        b.u16(UInt16(bytes.count))
        b.raw(bytes)
        return b.bytes
    }
    let kvpSet = (try? KVPExchangeValue(key: "k", value: "v", encoding: .utf16LE)).map {
        KVPMessage(operation: .set, pool: .external, member: $0).wireBytes
    } ?? []
    let kvpEnum = KVPMessage(operation: .enumerate, pool: .auto, member: KVPEnumerate(index: 3)).wireBytes
    let start = (try? FCopyStart(fileName: "f", pathName: "/d/", encoding: .utf16LE, copyFlags: [.createPath, .overWrite],
                                 fileSize: 3))?.wireBytes ?? []
    let data = (try? FCopyData(offset: 0, data: [1, 2, 3]))?.wireBytes ?? []
    return [
        ("negotiate-all", (0..<6).flatMap { negotiate($0, ICService.all[$0]) }),
        ("heartbeat", packet(0, .heartbeat, HeartbeatMessage(seqNum: 7).wireBytes, version: .hbVersion)),
        ("shutdown", packet(1, .shutdown, ShutdownMessage(flags: [.restart]).wireBytes, version: .sdVersion3_2)),
        ("time", packet(2, .timeSync, TimeSyncReferenceData(parenttime: TimeSyncLayout.windowsEpochDelta + 1,
                                                           vmreferencetime: 0, flags: .sample).wireBytes, version: .tsVersion)),
        ("kvp", packet(3, .kvpExchange, kvpSet, version: .kvpWin8SrvVersion) + packet(3, .kvpExchange, kvpEnum, version: .kvpWin8SrvVersion)),
        ("vss", packet(4, .vss, VSSMessage(operation: .hotBackup).wireBytes, version: .vssVersion)),
        ("fcopy", packet(5, .fcopy, start, version: .fcopyWin8SrvVersion) + packet(5, .fcopy, data, version: .fcopyWin8SrvVersion)
            + packet(5, .fcopy, FCopyHeader(operation: .completeFCopy).wireBytes, version: .fcopyWin8SrvVersion)),
    ]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzICGuest_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
