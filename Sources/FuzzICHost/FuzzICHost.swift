// Fuzz target: the host's integration services behind a real VMBus host, fed hostile answers by a raw guest.
// Each step picks a service and an operation (heartbeat status, shutdown, time, KVP get/set/list, VSS,
// file copy) and scripts the guest's answer: Linux's answer with a fuzzed status and body, fuzzed bytes with
// the right transaction id, or with a wrong one, or nothing. Every operation must return (a value or a
// thrown ICHostError) within its timeout, and the services must stay ready. Build and run with Scripts/fuzz.
//
// Input: per step, byte 0 the operation, byte 1 the answer mode, bytes 2-5 a status, then a chunk (the
// answer's body or bytes).
import FuzzSupport
import Logging
import VMBusGuest
import VMBusICHost
import VMBusICProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-ic-host",
    corpus: "ICHost",
    summary: "the host's IC requests (shutdown, time, KVP, VSS, file copy) against hostile guest answers",
    body: fuzzICHost,
    seeds: icHostSeeds)

/// What the raw guest sends for the next request.
struct Script: Sendable {
    var mode: UInt8 = 0
    var status: UInt32 = 0
    var bytes: [UInt8] = []
}

/// A guest driver for all six services that answers NEGOTIATE as Linux does and everything else as scripted.
final class ScriptedGuest: VMBusDriver, GuestChannelHandler, @unchecked Sendable {
    let name = "fuzz_ic"
    let script = Condition(Script())
    var classIDs: [GUID] { ICService.all.map(\.classID) }
    private let channels = Condition<[GuestChannel]>([])

    func probe(_ device: GuestDevice) throws {
        let c = try device.open(outgoingRingSize: 6 * 4096, incomingRingSize: 6 * 4096, maxPacketSize: 16 << 10, handler: self)
        channels.withLock { $0.append(c) }
    }

    func remove(_ device: GuestDevice) {}

    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        let bytes = buffer.payloadArray(of: packet)
        let id = packet.descriptor.transactionID
        guard let m = try? ICMessage(packet: bytes) else { return }
        if m.header.icmsgtype == .negotiate {
            guard let service = ICService.all.first(where: { $0.classID == channel.offer.interfaceType }),
                  let a = try? service.linuxAnswer(to: bytes) else { return }
            send(a.response, id, channel)
            return
        }
        let s = script.withLock { $0 }
        switch s.mode % 4 {
        case 0:
            var r = m.linuxResponse(status: ICStatus(rawValue: s.status))
            if !s.bytes.isEmpty { r.body = s.bytes }
            send(r.wireBytes, id, channel)
        case 1: send(s.bytes, id, channel)
        case 2: send(m.linuxResponse(status: .ok).wireBytes, id &+ 1, channel)
        default: break
        }
    }

    private func send(_ bytes: [UInt8], _ id: UInt64, _ channel: GuestChannel) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { p in _ = try? channel.sendInband(p, transactionID: id) }
    }
}

final class Rig: @unchecked Sendable {
    let system: InProcessSystem
    let services: ICHostServices
    let guest = ScriptedGuest()
    let source: String

    init() {
        do {
            system = try InProcessSystem(memoryPages: 1024, logLevel: fuzzVerbose ? .debug : .critical)
            var logger = Logger(label: "fuzz.ic")
            logger.logLevel = .critical
            services = ICHostServices(configuration: .init(heartbeatIntervalNanoseconds: 5_000_000, syncTimeOnConnect: false),
                                      logger: logger)
            for p in services.providers { system.host.addDevice(p) }
            try system.start()
            system.guest.register(guest)
            system.guest.flushWork()
            source = "/tmp/fuzz-ic-host-source-\(getpid())"
            let fd = open(source, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            var data = [UInt8](repeating: 0x5A, count: 2 * FCopyData.dataFragment + 5)
            _ = write(fd, &data, data.count)
            close(fd)
            let deadline = monotonicNanoseconds() + 10_000_000_000
            while services.channels.contains(where: { $0.versions == nil }) && monotonicNanoseconds() < deadline {
                sleepNanoseconds(1_000_000)
            }
        } catch {
            fatalError("fuzz rig: \(error)")
        }
    }
}

nonisolated(unsafe) let rig = Rig()

func fuzzICHost(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    var steps = 0
    let timeout: UInt64 = 10_000_000
    while !input.isAtEnd && steps < 8 {
        steps += 1
        let op = input.byte()
        let script = Script(mode: input.byte(), status: input.u32(), bytes: input.chunk())
        rig.guest.script.withLock { $0 = script }
        let s = rig.services
        switch op % 9 {
        case 0: _ = s.heartbeat?.status
        case 1: _ = try? s.shutdown?.request(ShutdownFlags(rawValue: script.status), reason: "fuzz", timeoutNanoseconds: timeout)
        case 2: _ = try? s.timeSync?.send(sync: script.status & 1 != 0, timeoutNanoseconds: timeout)
        case 3: _ = try? s.kvp?.get(pool: KVPPool(rawValue: UInt8(script.status % 5)), key: "k", timeoutNanoseconds: timeout)
        case 4: _ = try? s.kvp?.set(pool: .external, key: "k", value: "v", timeoutNanoseconds: timeout)
        case 5: _ = try? s.kvp?.enumerate(pool: .auto, index: script.status, timeoutNanoseconds: timeout)
        case 6: _ = try? s.kvp?.list(pool: .guest, limit: 3, timeoutNanoseconds: timeout)
        case 7: _ = try? s.vss?.perform(VSSOperation(rawValue: UInt8(truncatingIfNeeded: script.status)), timeoutNanoseconds: timeout)
        default:
            _ = try? s.fileCopy?.copy(source: rig.source, destination: "/fuzz/f", flags: [], timeoutNanoseconds: timeout)
        }
    }
    for c in rig.services.channels {
        fuzzCheck(c.versions != nil, "\(c.service) is no longer ready: \(c.phase)")
    }
}

func icHostSeeds() -> [(String, [UInt8])] {
    func step(_ op: UInt8, _ mode: UInt8, _ status: UInt32, _ chunk: [UInt8]) -> [UInt8] {
        var b = FuzzInputBuilder()
        b.byte(op)
        b.byte(mode)
        b.u32(status)
        b.chunk(Array(chunk.prefix(255)))
        return b.bytes
    }
    return [
        ("answers", step(1, 0, 0, []) + step(2, 0, 0, []) + step(3, 0, ICStatus.cont.rawValue, []) + step(7, 0, 0, [])),
        ("garbage", step(3, 1, 0, [1, 2, 3]) + step(4, 0, 0, [0xFF, 0xFF]) + step(8, 2, 0, [])),
        ("silence", step(5, 3, 0, []) + step(6, 0, 0, Array(repeating: 0x41, count: 40))),
    ]
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzICHost_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
