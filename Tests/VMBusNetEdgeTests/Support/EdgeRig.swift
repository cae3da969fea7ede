import VMBusNetVSC
import VMBusNetVSP
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

/// Host and guest in one process with one NetVSP per backend given and a started NetVSC on each, recording
/// what each guest NIC receives.
final class EdgeRig: @unchecked Sendable {
    let system: InProcessSystem
    let vsps: [NetVSP]
    private(set) var nics: [NetVSC] = []
    let received: [Condition<[[UInt8]]>]

    static func mac(_ i: Int) -> [UInt8] { [0x00, 0x15, 0x5D, 0xE0, 0x00, UInt8(i + 1)] }

    init(backends: [any NetBackend], mtu: Int = 1500) throws {
        system = try InProcessSystem(memoryPages: 16384 * backends.count)
        var vsps: [NetVSP] = []
        for (i, b) in backends.enumerated() {
            var c = NetVSP.Configuration(macAddress: Self.mac(i))
            c.mtu = mtu
            let vsp = NetVSP(instanceID: InProcessSystem.instanceID(UInt32(0x40 + i)), configuration: c, backend: b)
            system.host.addDevice(vsp)
            vsps.append(vsp)
        }
        self.vsps = vsps
        received = backends.map { _ in Condition<[[UInt8]]>([]) }
        try system.start()
        let devices = system.guest.devices.filter { $0.classID == DeviceClass.nic.classID }
        for (i, vsp) in vsps.enumerated() {
            guard let device = devices.first(where: { $0.instanceID == vsp.offer.instanceID }) else {
                stop()
                throw NetVSCError.stopped
            }
            var gc = NetVSC.Configuration()
            gc.mtu = mtu
            let sink = received[i]
            let nic = try NetVSC(device: device, configuration: gc, onReceive: { f in sink.update { $0.append([UInt8](f)) } })
            nics.append(nic)
            do { try nic.start() } catch {
                stop()
                throw error
            }
        }
    }

    func stop() {
        for n in nics { n.stop() }
        system.stop()
    }

    /// The first frame NIC `i` received that `match` accepts, waiting up to `seconds`; frames before it are
    /// dropped.
    func first<T>(_ i: Int, seconds: Double = 5, _ match: ([UInt8]) -> T?) -> T? {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < deadline {
            let frames = received[i].withLock { r in defer { r = [] }; return r }
            for f in frames { if let t = match(f) { return t } }
            _ = received[i].wait(timeoutNanoseconds: 10_000_000) { $0.isEmpty ? nil : true }
        }
        return nil
    }

    /// Frames NIC `i` received so far (taken).
    func take(_ i: Int) -> [[UInt8]] { received[i].withLock { r in defer { r = [] }; return r } }

    /// Sends until the NIC takes the frame.
    func send(_ i: Int, _ frame: [UInt8]) -> NetVSCSendResult {
        let deadline = monotonicNanoseconds() + 5_000_000_000
        while true {
            let r = nics[i].send(bytes: frame)
            if r != .busy || monotonicNanoseconds() > deadline { return r }
            sleepNanoseconds(20_000)
        }
    }
}
