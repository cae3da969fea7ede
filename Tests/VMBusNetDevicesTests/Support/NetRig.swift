import VMBusGuest
import VMBusHost
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

/// A NetVSP with an in-memory backend and a NetVSC, host and guest in one process over the real rings.
final class NetRig: @unchecked Sendable {
    let system: InProcessSystem
    let backend: MemoryNetBackend
    let vsp: NetVSP
    let nic: NetVSC
    let received = Condition<[[UInt8]]>([])
    /// What the host said about each frame in ``received`` (in the same order, kept until taken).
    let receivedInfo = Condition<[ReceivedFrameInfo]>([])
    let links = Condition<[Bool]>([])
    static let mac: [UInt8] = [0x00, 0x15, 0x5D, 0x12, 0x34, 0x56]

    init(hostVersions: Set<NVSPProtocolVersion> = Set(NVSPProtocolVersion.all), mtu: Int = 9000,
         guest: (inout NetVSC.Configuration) -> Void = { _ in }, host: (inout NetVSP.Configuration) -> Void = { _ in },
         provider: ((NetVSP) -> any VMBusDeviceProvider)? = nil, memoryPages: Int = 16384,
         backendAcceptsOffloads: Bool = false, recordsReceiveInfo: Bool = false) throws {
        system = try InProcessSystem(memoryPages: memoryPages)
        backend = MemoryNetBackend(acceptsOffloads: backendAcceptsOffloads)
        var hc = NetVSP.Configuration(macAddress: Self.mac)
        hc.mtu = mtu
        hc.acceptedVersions = hostVersions
        host(&hc)
        vsp = NetVSP(instanceID: InProcessSystem.instanceID(7), configuration: hc, backend: backend)
        system.host.addDevice(provider?(vsp) ?? vsp)
        try system.start()
        guard let device = system.guest.devices.first(where: { $0.classID == DeviceClass.nic.classID }) else {
            system.stop()
            throw NetVSCError.stopped
        }
        var gc = NetVSC.Configuration()
        gc.mtu = mtu
        gc.controlTimeoutNanoseconds = 3_000_000_000
        guest(&gc)
        let received = self.received, receivedInfo = self.receivedInfo
        let links = self.links
        nic = try NetVSC(device: device, configuration: gc,
                         onReceiveFrame: { frame, info in
                             if recordsReceiveInfo { receivedInfo.update { $0.append(info) } }
                             received.update { $0.append([UInt8](frame)) }
                         },
                         onLinkChange: { up in links.update { $0.append(up) } })
    }

    func start() throws {
        do { try nic.start() } catch {
            system.stop()
            throw error
        }
    }

    func stop() {
        nic.stop()
        system.stop()
    }

    /// Waits until `count` frames arrived in the guest, then takes them.
    /// ``takeReceived(_:timeoutNanoseconds:)`` with the info of each (`recordsReceiveInfo` rigs only).
    func takeReceivedWithInfo(_ count: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) -> [([UInt8], ReceivedFrameInfo)] {
        let frames = takeReceived(count, timeoutNanoseconds: timeoutNanoseconds)
        let infos = receivedInfo.withLock { i in
            defer { i.removeFirst(min(frames.count, i.count)) }
            return Array(i.prefix(frames.count))
        }
        return Array(zip(frames, infos))
    }

    func takeReceived(_ count: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) -> [[UInt8]] {
        _ = received.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.count >= count ? true : nil }
        return received.withLock { r in
            let n = min(count, r.count)
            defer { r.removeFirst(n) }
            return Array(r.prefix(n))
        }
    }

    var receivedCount: Int { received.withLock { $0.count } }
}

/// A frame of `length` bytes: broadcast destination, our MAC as source, a made-up EtherType, then bytes
/// from `seed`, with the sequence number in the first payload bytes.
func testFrame(length: Int, sequence: Int, seed: inout SplitMix64) -> [UInt8] {
    var f = [UInt8](repeating: 0, count: length)
    for i in 0..<6 { f[i] = 0xFF }
    for i in 0..<6 { f[6 + i] = NetRig.mac[i] }
    f[12] = 0x88
    f[13] = 0xB5  // local experimental EtherType
    for i in 0..<4 where 14 + i < length { f[14 + i] = UInt8(truncatingIfNeeded: sequence >> (8 * i)) }
    var i = 18
    while i < length {
        let r = seed.next()
        for k in 0..<8 where i + k < length { f[i + k] = UInt8(truncatingIfNeeded: r >> (8 * UInt64(k))) }
        i += 8
    }
    return f
}

/// Where two frames first differ, or nil (comparing whole arrays in `#expect` is slow to report on failure).
func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int? {
    if a.count != b.count { return -1 }
    for i in a.indices where a[i] != b[i] { return i }
    return nil
}
