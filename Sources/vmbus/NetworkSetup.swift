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

    /// A partition's NetVSP for the NIC at `index` (its instance GUID), on the switch or TAP `spec` names; nil
    /// when the TAP was never opened (``open(_:)``).
    func provider(for spec: NICSpec, index: Int) -> NetVSP? {
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
        return NetVSP(instanceID: Self.instanceID(index), configuration: c, backend: backend)
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

/// The guest's NICs: a driver binding a NetVSC to every synthetic NIC offered, those present at start-up and
/// those the host adds later (`vmbus nic attach`), as hv_netvsc probes each new offer; a rescinded NIC is
/// stopped and forgotten. A NIC takes the first `--tap` name no other NIC holds and is presented as that TAP;
/// the rest carry no traffic to this machine's stack.
///
/// Hot changes and link changes after start-up are queued as ``events`` for the command's main loop to print:
/// probes run on the bus's work thread and link changes on its interrupt thread, neither of which may block
/// on our stdout.
final class GuestNetwork: VMBusDriver, @unchecked Sendable {
    let name = "netvsc"
    let classIDs = [DeviceClass.nic.classID]
    struct NIC {
        let device: GuestDevice
        let nic: NetVSC
        let tap: GuestTAPInterface?
    }
    private struct State {
        var nics: [NIC] = []
        var problems: [String] = []
        var events: [String] = []
        /// Off while the bus probes the NICs present at start-up: the listing shows those.
        var announcing = false
    }
    private let state = Condition(State())
    private let taps: [String]
    private let logger: Logger

    /// Binds the NICs offered now (returns once they are up) and every NIC offered later.
    init(bus: GuestBus, taps: [String], logger: Logger) {
        self.taps = taps
        self.logger = logger
        bus.register(self)
        state.withLock { s in
            s.announcing = true
            if taps.count > s.nics.count { s.problems.append("--tap: \(taps.count) given, but the host offers \(s.nics.count) NICs") }
        }
    }

    var nics: [NIC] { state.withLock { $0.nics } }

    func probe(_ device: GuestDevice) throws {
        var configuration = NetVSC.Configuration()
        // The host's MTU caps it (RNDIS frame size); asking for jumbo frames lets a NIC with mtu=9000 use them.
        configuration.mtu = 9000
        // hv_netvsc turns TSO on wherever the host offers LSOv2.
        configuration.largeSendOffload = true
        let tapName = state.withLock { s in taps.first { t in !s.nics.contains { $0.tap?.device.name == t } } }
        let link: @Sendable (Bool) -> Void = { [weak self] up in self?.linkChanged(device, up: up) }
        let entry: NIC
        do {
            if let tapName {
                let t = try GuestTAPInterface(device: device, tapName: tapName, configuration: configuration, logger: logger,
                                              onLinkChange: link)
                entry = NIC(device: device, nic: t.nic, tap: t)
            } else {
                let nic = try NetVSC(device: device, configuration: configuration, logger: logger, onLinkChange: link)
                try nic.start()
                entry = NIC(device: device, nic: nic, tap: nil)
            }
        } catch {
            state.withLock { s in
                s.problems.append("nic \(device.instanceID): \(error)")
                if s.announcing { s.events.append("nic \(device.instanceID): \(error)") }
            }
            throw error
        }
        state.withLock { s in
            s.nics.append(entry)
            if s.announcing { s.events.append("nic added: \(Self.line(entry))") }
        }
    }

    func remove(_ device: GuestDevice) {
        let gone: NIC? = state.withLock { s in
            guard let i = s.nics.firstIndex(where: { $0.device === device }) else { return nil }
            return s.nics.remove(at: i)
        }
        guard let gone else { return }
        let mac = macString(gone.nic.macAddress)
        if let t = gone.tap { t.stop() } else { gone.nic.stop() }
        state.withLock { s in if s.announcing { s.events.append("nic removed: MAC \(mac)") } }
    }

    private func linkChanged(_ device: GuestDevice, up: Bool) {
        state.withLock { s in
            guard s.announcing, let n = s.nics.first(where: { $0.device === device }) else { return }
            s.events.append("nic MAC \(macString(n.nic.macAddress)): link \(up ? "up" : "down")")
        }
    }

    /// What happened since the last call, one line each.
    func takeEvents() -> [String] {
        state.withLock { s in defer { s.events = [] }; return s.events }
    }

    /// `TAPNAME: MAC …, MTU …, queues N, link up|down` (or `(no TAP): …`).
    private static func line(_ n: NIC) -> String {
        "\(n.tap?.device.name ?? "(no TAP)"): MAC \(macString(n.nic.macAddress)), MTU \(n.nic.mtu), queues \(n.nic.queueCount), link \(n.nic.linkUp ? "up" : "down")"
    }

    /// One line per NIC: MAC, MTU, queues, link and the TAP it is presented as.
    var listing: String {
        let (nics, problems) = state.withLock { ($0.nics, $0.problems) }
        let lines = nics.map { "  " + Self.line($0) } + problems.map { "  error: \($0)" }
        return lines.isEmpty ? "" : "nics:\n" + lines.joined(separator: "\n") + "\n"
    }

    /// Each NIC's NetVSC counters (`ethtool -S` names), for SIGUSR1 and the exit.
    var counterListing: String {
        let lines = nics.map { "  MAC \(macString($0.nic.macAddress)): \($0.nic.counterSnapshot.summary)" }
        return lines.isEmpty ? "" : "nic counters:\n" + lines.joined(separator: "\n") + "\n"
    }

    /// Stops every NIC (the guest is leaving; no events follow).
    func stop() {
        let all = state.withLock { s in
            defer { s.nics = []; s.announcing = false }
            return s.nics
        }
        for n in all { if let t = n.tap { t.stop() } else { n.nic.stop() } }
    }
}

extension NetVSCCounters {
    /// `ethtool -S` style, one line; batching, coalescing and the error counters only when not zero.
    var summary: String {
        var fields = ["tx_packets=\(txPackets)", "tx_bytes=\(txBytes)", "rx_packets=\(rxPackets)", "rx_bytes=\(rxBytes)",
                      "tx_send_full=\(txSendFull)", "tx_busy=\(txBusy)", "rx_comp_busy=\(rxCompBusy)"]
        for (name, value) in [("tx_batched", txBatched), ("rx_coalesced", rxCoalesced), ("tx_errors", txErrors), ("tx_dropped", txDropped), ("rx_comp_dropped", rxCompDropped),
                              ("rx_dropped", rxDropped), ("malformed", malformed)] where value != 0 {
            fields.append("\(name)=\(value)")
        }
        return fields.joined(separator: " ")
    }
}

/// `00:15:5d:…`, as ip link prints a MAC address.
func macString(_ m: [UInt8]) -> String {
    m.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
}
