import VMBusControl
import VMBusHost
import VMBusNetVSP
import VMBusTransport

/// The host's NICs: the `--nic` flags at start-up, then whatever `vmbus nic attach|detach|link` changes through
/// the control socket (docs/CONTROL.md). Each partition gets its own NetVSP per NIC (its own MAC unless `mac=`
/// fixes one); a NIC attached later is offered to every live partition and to partitions that connect after,
/// as Hyper-V offers a NIC added to a running VM, and the guest's NetVSC binds it on the offer. Detach rescinds
/// it everywhere.
///
/// Index `N` is the NIC's place (the first free one for an attached NIC) and its instance GUID
/// (``HostNetworks/instanceID(_:)``), so a NIC keeps its identity for the guest across partitions.
final class HostNICSet: @unchecked Sendable {
    struct NIC: Sendable {
        let index: Int
        let spec: NICSpec
        /// What new NetVSPs start with and `link N up|down` last set.
        var linkUp = true
    }
    private struct Port {
        let vsp: NetVSP
        let handle: HostDeviceHandle?
    }
    private struct Partition {
        let id: UInt64
        let host: VMBusHost
        var ports: [Int: Port] = [:]
    }
    private struct State {
        var nics: [NIC] = []
        var partitions: [Partition] = []
    }
    /// Held across offers and rescinds: neither calls back into this set, and it keeps a partition that
    /// connects during an attach from missing the NIC or getting it twice.
    private let state = Condition(State())
    let networks: HostNetworks
    /// `DeviceOptions` allows 64 `--nic`s; the instance GUID has room for 256.
    static let maxNICs = 64

    /// The TAPs the specs name must be open already (``HostNetworks/open(_:)``).
    init(_ specs: [NICSpec], networks: HostNetworks = .shared) {
        self.networks = networks
        state.withLock { s in s.nics = specs.enumerated().map { NIC(index: $0, spec: $1) } }
    }

    var nics: [NIC] { state.withLock { $0.nics } }

    /// Offers every NIC to a new partition; ``release(partition:)`` forgets it when it ends.
    func attach(partition id: UInt64, host: VMBusHost) {
        state.withLock { s in
            var p = Partition(id: id, host: host)
            for nic in s.nics { p.ports[nic.index] = offer(nic, on: host) }
            s.partitions.append(p)
        }
    }

    func release(partition id: UInt64) {
        state.withLock { $0.partitions.removeAll { $0.id == id } }
    }

    /// The NetVSPs of a partition, by NIC index (tests, listings).
    func ports(partition id: UInt64) -> [Int: NetVSP] {
        state.withLock { s in s.partitions.first { $0.id == id }?.ports.mapValues(\.vsp) ?? [:] }
    }

    private func offer(_ nic: NIC, on host: VMBusHost) -> Port? {
        guard let vsp = networks.provider(for: nic.spec, index: nic.index) else { return nil }
        // Before the offer: the guest's first OID_GEN_MEDIA_CONNECT_STATUS already answers the NIC's state.
        vsp.setLink(up: nic.linkUp)
        return Port(vsp: vsp, handle: host.addDevice(vsp))
    }

    // MARK: Control commands

    static let usage = "nic list | nic attach SPEC | nic detach N | nic link N up|down"

    func handle(_ words: [String]) -> ControlResponse {
        switch words.dropFirst().first {
        case "list" where words.count == 2:
            return .success(listing)
        case "attach" where words.count == 3:
            guard let spec = NICSpec(argument: words[2]) else { return .failure("malformed NIC: \(words[2])") }
            return attach(spec)
        case "detach" where words.count == 3:
            guard let n = Int(words[2]) else { return .failure("not a NIC index: \(words[2])") }
            return detach(n)
        case "link" where words.count == 4 && (words[3] == "up" || words[3] == "down"):
            guard let n = Int(words[2]) else { return .failure("not a NIC index: \(words[2])") }
            return link(n, up: words[3] == "up")
        default:
            return .failure("unknown command '\(words.joined(separator: " "))' (\(Self.usage))")
        }
    }

    func attach(_ spec: NICSpec) -> ControlResponse {
        if case .tap(let name) = spec.backend, nics.contains(where: { $0.spec.backend == spec.backend }) {
            return .failure("tap:\(name) already serves a NIC (a TAP serves one)")
        }
        do { try networks.open([spec]) } catch { return .failure("\(error)") }
        let outcome: (NIC, Int)? = state.withLock { s in
            let used = Set(s.nics.map(\.index))
            guard let index = (0..<Self.maxNICs).first(where: { !used.contains($0) }) else { return nil }
            let nic = NIC(index: index, spec: spec)
            s.nics.append(nic)
            s.nics.sort { $0.index < $1.index }
            for i in s.partitions.indices { s.partitions[i].ports[index] = offer(nic, on: s.partitions[i].host) }
            return (nic, s.partitions.count)
        }
        guard let (nic, partitions) = outcome else { return .failure("no NIC index left (at most \(Self.maxNICs) NICs)") }
        return .success("attached nic \(nic.index) (\(nic.spec.backendName)), offered to \(partitions) partition\(partitions == 1 ? "" : "s")\n")
    }

    func detach(_ index: Int) -> ControlResponse {
        let removed: NIC? = state.withLock { s in
            guard let i = s.nics.firstIndex(where: { $0.index == index }) else { return nil }
            for p in s.partitions.indices { s.partitions[p].ports.removeValue(forKey: index)?.handle?.rescind() }
            return s.nics.remove(at: i)
        }
        guard let removed else { return .failure("no nic \(index)") }
        return .success("detached nic \(index) (\(removed.spec.backendName))\n")
    }

    func link(_ index: Int, up: Bool) -> ControlResponse {
        let found: Bool = state.withLock { s in
            guard let i = s.nics.firstIndex(where: { $0.index == index }) else { return false }
            s.nics[i].linkUp = up
            for p in s.partitions { p.ports[index]?.vsp.setLink(up: up) }
            return true
        }
        guard found else { return .failure("no nic \(index)") }
        return .success("nic \(index): link \(up ? "up" : "down")\n")
    }

    /// One line per NIC (index, backend, MTU, link), then one per live partition: its MAC, whether its guest
    /// initialized RNDIS, its open queues and the NetVSP's counters.
    var listing: String {
        state.withLock { s in
            s.nics.map { nic in
                var out = "nic \(nic.index)\t\(nic.spec.backendName)\tMTU \(nic.spec.mtu)\tlink \(nic.linkUp ? "up" : "down")\n"
                for p in s.partitions {
                    guard let vsp = p.ports[nic.index]?.vsp else { continue }
                    let state = vsp.rndisStage == .initialized ? "initialized" : "not initialized"
                    out += "\tpartition \(p.id)\tMAC \(macString(vsp.macAddress))\t\(state)\tqueues \(vsp.openQueues)\t\(vsp.counterSnapshot.summary)\n"
                }
                return out
            }.joined()
        }
    }
}

extension NetVSPCounters {
    /// `ethtool -S` style, one line: `tx_packets=N tx_bytes=N …`, the error and offload counters only when not zero.
    var summary: String {
        var fields = ["tx_packets=\(txPackets)", "tx_bytes=\(txBytes)", "rx_packets=\(rxPackets)", "rx_bytes=\(rxBytes)",
                      "rx_dropped=\(rxDropped)", "rx_busy=\(rxBusy)"]
        for (name, value) in [("protocol_errors", protocolErrors), ("unknown_completions", unknownCompletions),
                              ("checksum_errors", checksumErrors), ("control_responses_dropped", controlResponsesDropped),
                              ("large_sends_passed", largeSendsPassed), ("rx_coalesced", rxCoalesced)]
            where value != 0 {
            fields.append("\(name)=\(value)")
        }
        // What the last protocol error was: what an operator needs to see first when a guest's NIC fails.
        if protocolErrors != 0, let lastError { fields.append("last_error=\"\(lastError)\"") }
        return fields.joined(separator: " ")
    }
}
