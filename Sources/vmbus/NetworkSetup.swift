import Logging
import VMBusGuest
import VMBusNetSwitch
import VMBusNetTAP
import VMBusNetVSC
import VMBusNetVSP
import VMBusProtocol
import VMBusTransport
import VMBusWire
#if canImport(Glibc)
import Glibc
#endif

/// The host's networks: one internal switch per `--nic switch:NAME` name and one TAP per `--nic tap:NAME`,
/// both for the whole process (every partition's NICs on a switch share it; a TAP serves the NIC of one
/// partition at a time, the one that attached last). TAPs are opened by ``open(_:)`` before any guest
/// connects, so a bad name fails the command at once.
///
/// Each NIC gets its own instance GUID (by its place among the `--nic` flags) and, unless `mac=` says
/// otherwise, a MAC address in Hyper-V's OUI 00:15:5D, as Hyper-V's dynamic MACs are: then two bytes of the
/// process id and a counter, so NICs of one process, and mostly of different ones, differ.
final class HostNetworks: @unchecked Sendable {
    static let shared = HostNetworks()
    private struct State {
        var switches: [String: NetSwitch] = [:]
        var taps: [String: TAPNetBackend] = [:]
        var nextMAC = 0
    }
    private let state = Condition(State())

    /// Opens every TAP `specs` name.
    func open(_ specs: [NICSpec]) throws {
        for spec in specs {
            guard case .tap(let name) = spec.backend, state.withLock({ $0.taps[name] == nil }) else { continue }
            do {
                let backend = try TAPNetBackend(device: TAPDevice(name: name))
                state.withLock { $0.taps[name] = backend }
            } catch {
                throw CommandError("--nic tap:\(name): \(error)")
            }
        }
    }

    static func instanceID(_ i: Int) -> GUID {
        GUID(data1: 0x6E69_6300 | UInt32(i & 0xFF), data2: 0x0FAD, data3: 0x4E1C,
             data4: (0x9E, 0x1D, 0x7D, 0x53, 0xC1, 0x6F, 0x00, UInt8(i & 0xFF)))
    }

    /// One partition's NICs, in flag order.
    func providers(for specs: [NICSpec]) -> [NetVSP] {
        specs.enumerated().compactMap { i, spec -> NetVSP? in
            let backend: (any NetBackend)? = state.withLock { s in
                switch spec.backend {
                case .tap(let name):
                    return s.taps[name]
                case .internalSwitch(let name):
                    let sw = s.switches[name] ?? NetSwitch(name: name)
                    s.switches[name] = sw
                    return sw.makePort()
                }
            }
            guard let backend else { return nil }
            var c = NetVSP.Configuration(macAddress: spec.mac ?? nextMAC())
            c.mtu = spec.mtu
            return NetVSP(instanceID: Self.instanceID(i), configuration: c, backend: backend)
        }
    }

    private func nextMAC() -> [UInt8] {
        let n = state.withLock { s -> Int in defer { s.nextMAC += 1 }; return s.nextMAC }
        let pid = UInt32(getpid())
        return [0x00, 0x15, 0x5D, UInt8(truncatingIfNeeded: pid >> 8), UInt8(truncatingIfNeeded: pid), UInt8(truncatingIfNeeded: n)]
    }

    /// Stops the switches' threads and the TAPs' readers, and closes the TAPs.
    func stop() {
        let (switches, taps) = state.withLock { s in
            defer { s = State() }
            return (Array(s.switches.values), Array(s.taps.values))
        }
        for t in taps { t.stop() }
        for s in switches { s.stop() }
    }
}

/// The guest's NICs: a NetVSC on every synthetic NIC offered, the i-th presented as the TAP named by the
/// i-th `--tap` (the rest carry no traffic to this machine's stack).
final class GuestNetwork: @unchecked Sendable {
    private(set) var interfaces: [GuestTAPInterface] = []
    private(set) var plain: [NetVSC] = []
    private(set) var problems: [String] = []

    init(bus: GuestBus, taps: [String], logger: Logger) {
        let nics = bus.devices.filter { $0.classID == DeviceClass.nic.classID }.sorted { $0.instanceID < $1.instanceID }
        var configuration = NetVSC.Configuration()
        // The host's MTU caps it (RNDIS frame size); asking for jumbo frames lets a NIC with mtu=9000 use them.
        configuration.mtu = 9000
        for (i, device) in nics.enumerated() {
            do {
                if i < taps.count {
                    interfaces.append(try GuestTAPInterface(device: device, tapName: taps[i], configuration: configuration, logger: logger))
                } else {
                    let nic = try NetVSC(device: device, configuration: configuration, logger: logger)
                    try nic.start()
                    plain.append(nic)
                }
            } catch {
                problems.append("nic \(device.instanceID): \(error)")
            }
        }
        if taps.count > nics.count { problems.append("--tap: \(taps.count) given, but the host offers \(nics.count) NICs") }
    }

    /// One line per NIC: MAC, MTU, link and the TAP it is presented as.
    var listing: String {
        func mac(_ m: [UInt8]) -> String { m.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
        var lines = interfaces.map { t in
            "  \(t.device.name): MAC \(mac(t.nic.macAddress)), MTU \(t.nic.mtu), link \(t.nic.linkUp ? "up" : "down")"
        }
        lines += plain.map { "  (no TAP): MAC \(mac($0.macAddress)), MTU \($0.mtu), link \($0.linkUp ? "up" : "down")" }
        lines += problems.map { "  error: \($0)" }
        return lines.isEmpty ? "" : "nics:\n" + lines.joined(separator: "\n") + "\n"
    }

    func stop() {
        for t in interfaces { t.stop() }
        for n in plain { n.stop() }
        interfaces = []
        plain = []
    }
}
