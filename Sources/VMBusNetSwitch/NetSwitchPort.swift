import VMBusNetVSP
import VMBusSync

/// One NIC's port on a ``NetSwitch``: the NIC's ``NetBackend``. The port joins the switch when the NIC
/// attaches (its queue and delivery thread are made then) and leaves when it detaches, so a NIC that goes
/// away (a guest that disconnected) leaves nothing running.
public final class NetSwitchPort: NetBackend, @unchecked Sendable {
    public let `switch`: NetSwitch
    private let queue = Lock<PortQueue?>(nil)

    init(switch: NetSwitch) { self.switch = `switch` }

    public var isAttached: Bool { queue.withLock { $0 != nil } }
    /// Frames the switch delivered to this port's NIC while attached.
    public var framesDelivered: Int { queue.withLock { $0?.delivered.load(ordering: .relaxed) ?? 0 } }

    public func attached(_ port: any NetPort) {
        let old = queue.withLock { q -> PortQueue? in defer { q = nil }; return q }
        if let old { self.switch.detach(old) }
        let new = self.switch.attach(port)
        queue.withLock { $0 = new }
    }

    public func detached(_ port: any NetPort) {
        let old = queue.withLock { q -> PortQueue? in
            guard let current = q, current.port === port else { return nil }
            q = nil
            return current
        }
        if let old { self.switch.detach(old) }
    }

    public func receiveSpaceAvailable(_ port: any NetPort) {
        queue.withLock { $0 }?.spaceAvailable()
    }

    public func transmit(_ frame: UnsafeRawBufferPointer, from port: any NetPort) {
        guard let q = queue.withLock({ $0 }) else { return }
        self.switch.forward(frame, from: q)
    }

    /// The receiving NIC finishes what the sender left (see ``PortQueue``).
    public var acceptsOffloads: Bool { true }

    public func transmit(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, from port: any NetPort) {
        guard let q = queue.withLock({ $0 }) else { return }
        self.switch.forward(frame, offload: offload, from: q)
    }
}
