import Atomics
import VMBusNetVSP
import VMBusSync
import VMBusTransport

/// An internal L2 learning switch in the host process (`--nic switch[:NAME]`): every NIC on it is a port.
/// Source MACs are learned per port; a frame to a known unicast address goes to that port only (never back
/// to the port it came from), broadcast, multicast and unknown unicast are flooded to every other attached
/// port. Entries age out (300 s by default, as Linux's bridge).
///
/// Offloads cross the switch: a guest's LSO segment or partial checksum is queued as it is and the receiving
/// NIC finishes it (``PortQueue``), as a bridge passes GSO packets between virtual NICs.
///
/// Threads: ``NetSwitchPort/transmit(_:from:)`` (a NIC's channel worker) only learns, looks up and copies the
/// frame into the destination ports' queues; each attached port has a delivery thread of the switch's that
/// hands its queue to the NIC (``PortQueue``).
public final class NetSwitch: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var agingNanoseconds: UInt64 = 300_000_000_000
        /// Learned addresses kept at most (a guest inventing source MACs cannot grow the table past it).
        public var tableCapacity = 4096
        /// Frames queued per port before more are dropped.
        public var queueFrames = 256
        /// The largest frame carried (MTU 9000 plus the Ethernet header and one 802.1Q tag).
        public var maxFrameSize = 9018
        public init() {}
    }

    public let name: String
    public let configuration: Configuration
    private struct State {
        var table: MACTable
        var ports: [PortQueue] = []
        var nextID = 0
        var stopped = false
    }
    private let state: Lock<State>

    public let framesForwarded = ManagedAtomic<Int>(0)
    public let framesFlooded = ManagedAtomic<Int>(0)
    /// Frames whose learned destination is the port they came from (filtered, as a bridge does).
    public let framesFiltered = ManagedAtomic<Int>(0)
    /// Frames shorter than an Ethernet header.
    public let framesMalformed = ManagedAtomic<Int>(0)
    /// Frames dropped at ports that detached; see ``PortQueue``. (Those dropped at live ports are in
    /// ``droppedFrames``.)
    private let retiredDrops = ManagedAtomic<Int>(0)

    public init(name: String, configuration: Configuration = Configuration()) {
        self.name = name
        self.configuration = configuration
        state = Lock(State(table: MACTable(agingNanoseconds: configuration.agingNanoseconds,
                                           capacity: configuration.tableCapacity)))
    }

    /// A new port for one NIC: give it to the NIC's NetVSP as its backend.
    public func makePort() -> NetSwitchPort { NetSwitchPort(switch: self) }

    /// Ports with a NIC attached.
    public var attachedPorts: Int { state.withLock { $0.ports.count } }
    /// Learned addresses (aged ones included until they are looked up or swept).
    public var learnedAddresses: Int { state.withLock { $0.table.entries.count } }
    public var droppedFrames: Int {
        state.withLock { $0.ports.reduce(retiredDrops.load(ordering: .relaxed)) { $0 + $1.dropped.load(ordering: .relaxed) } }
    }

    /// Stops every port's delivery thread and waits for them (bounded).
    public func stop() {
        let ports = state.withLock { s -> [PortQueue] in
            s.stopped = true
            defer { s.ports = [] }
            return s.ports
        }
        for p in ports { p.stop() }
        for p in ports { _ = p.done.wait(timeoutNanoseconds: 5_000_000_000) }
    }

    // MARK: Ports

    func attach(_ port: any NetPort) -> PortQueue? {
        let queue: PortQueue? = state.withLock { s in
            guard !s.stopped else { return nil }
            s.nextID += 1
            let q = PortQueue(id: s.nextID, port: port, frames: configuration.queueFrames,
                              slotSize: configuration.maxFrameSize)
            s.ports.append(q)
            return q
        }
        guard let queue else { return nil }
        guard startThread(name: "switch-\(name.prefix(8))", { queue.run() }) else {
            detach(queue)
            return nil
        }
        return queue
    }

    func detach(_ queue: PortQueue) {
        state.withLock { s in
            s.ports.removeAll { $0 === queue }
            s.table.forget(port: queue.id)
        }
        queue.stop()
        // Its thread goes on its own; what it dropped stays counted.
        retiredDrops.wrappingIncrement(by: queue.dropped.load(ordering: .relaxed), ordering: .relaxed)
    }

    // MARK: Forwarding

    /// On the source NIC's worker: learn, look up, queue the frame for its destinations.
    func forward(_ frame: UnsafeRawBufferPointer, offload: FrameOffload? = nil, from source: PortQueue,
                 now: UInt64 = monotonicNanoseconds()) {
        guard frame.count >= 14 else {
            framesMalformed.wrappingIncrement(ordering: .relaxed)
            return
        }
        let destination = MACTable.key(frame, at: 0)
        let sourceMAC = MACTable.key(frame, at: 6)
        state.withLock { s in
            s.table.learn(sourceMAC, port: source.id, now: now)
            if !MACTable.isGroup(destination), let target = s.table.lookup(destination, now: now) {
                if target == source.id {
                    framesFiltered.wrappingIncrement(ordering: .relaxed)
                } else if let q = s.ports.first(where: { $0.id == target }) {
                    // Counted before the frame can reach its NIC, so whoever sees the frame sees the count.
                    framesForwarded.wrappingIncrement(ordering: .relaxed)
                    q.enqueue(frame, offload: offload)
                }
                return
            }
            framesFlooded.wrappingIncrement(ordering: .relaxed)
            for q in s.ports where q.id != source.id { q.enqueue(frame, offload: offload) }
        }
    }
}
