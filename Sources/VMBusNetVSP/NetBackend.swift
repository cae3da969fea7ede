/// Where a host NIC's frames go and come from: a TAP device, an L2 switch port, or (tests) memory.
///
/// The NIC hands the backend every frame the guest sends (``transmit(_:from:)``), with the checksums the guest
/// left to offload already filled in. The backend delivers frames to the guest through the ``NetPort`` it was
/// attached to (``NetPort/deliver(_:)``).
///
/// Threads: ``transmit(_:from:)`` runs on the channel's worker thread, the one that also reads the guest's
/// completions. It must not block for long and must never call ``NetPort/deliver(_:)`` itself (a delivery
/// can wait for ring space that only that thread's progress frees): hand the frame to another thread.
public protocol NetBackend: AnyObject, Sendable {
    /// The NIC is ready to carry frames (the guest finished its set-up) or was re-initialized.
    func attached(_ port: any NetPort)
    /// The guest sent `frame` (an Ethernet frame, no FCS). The bytes are valid only during the call.
    func transmit(_ frame: UnsafeRawBufferPointer, from port: any NetPort)
    /// The NIC stopped (channel closed, guest halted RNDIS or went away). No more frames follow.
    func detached(_ port: any NetPort)
    /// The guest returned receive space after ``NetPort/deliver(_:)`` answered ``NetDelivery/busy``.
    func receiveSpaceAvailable(_ port: any NetPort)
    /// Whether ``transmit(_:offload:from:)`` may be given frames with a partial checksum or a TCP segment of up
    /// to 64 KiB to cut (a TAP's GSO): the receiving stack then does that work once per segment, or not at
    /// all for a local socket. False: every frame is finished and cut to the MTU before it comes.
    var acceptsOffloads: Bool { get }
    /// The guest sent `frame`, with `offload` left to do (only if ``acceptsOffloads``). The bytes are valid
    /// only during the call.
    func transmit(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, from port: any NetPort)
}

extension NetBackend {
    public func attached(_ port: any NetPort) {}
    public func detached(_ port: any NetPort) {}
    public func receiveSpaceAvailable(_ port: any NetPort) {}
    public var acceptsOffloads: Bool { false }
    public func transmit(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, from port: any NetPort) {
        transmit(frame, from: port)
    }
}

/// What ``NetPort/deliver(_:)`` did with a frame.
public enum NetDelivery: Equatable, Sendable {
    /// The frame is the guest's: it will see it (a frame accepted is never dropped later).
    case accepted
    /// No receive space right now: try again after ``NetBackend/receiveSpaceAvailable(_:)``.
    case busy
    /// Not deliverable and never will be in this state: the guest's packet filter is 0, RNDIS is not
    /// initialized, the link is down, the frame is too large or too small. Counted by the NIC.
    case dropped
}

/// The NIC as a backend sees it.
public protocol NetPort: AnyObject, Sendable {
    /// The guest's current MAC address (6 bytes).
    var macAddress: [UInt8] { get }
    /// The largest frame the guest accepts (MTU + 14).
    var maxFrameSize: Int { get }
    /// Hands `frame` to the guest. May wait for ring space (bounded) once receive space was reserved; see
    /// ``NetDelivery``. Never call it from ``NetBackend/transmit(_:from:)``.
    func deliver(_ frame: UnsafeRawBufferPointer) -> NetDelivery
    /// The same for a frame with `offload` left to do (a TAP's GSO frame of up to 64 KiB, a partial checksum):
    /// the NIC finishes it or passes it on as the guest negotiated.
    func deliver(_ frame: UnsafeRawBufferPointer, offload: FrameOffload) -> NetDelivery
    /// Hands `frame` to the guest as part of a batch: with `more` (another frame follows at once, Linux's
    /// `xmit_more`) the NIC may hold it to send with the next ones in one packet, which the guest completes
    /// once. A frame without `more`, or ``flushDeliveries()``, ends the batch; a backend that passes `more` must
    /// end every batch, or what is held waits. Held frames are the guest's as ``NetDelivery/accepted`` says,
    /// except that a guest that stops receiving (packet filter 0, channel closed) before the batch ends does not
    /// get them.
    func deliver(_ frame: UnsafeRawBufferPointer, more: Bool) -> NetDelivery
    func deliver(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, more: Bool) -> NetDelivery
    /// Sends what the batch holds.
    func flushDeliveries()
}

extension NetPort {
    /// A port that does not batch delivers each frame at once.
    public func deliver(_ frame: UnsafeRawBufferPointer, more: Bool) -> NetDelivery { deliver(frame) }
    public func deliver(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, more: Bool) -> NetDelivery {
        deliver(frame, offload: offload)
    }
    public func flushDeliveries() {}

    /// Convenience for tests and the control path.
    public func deliver(bytes: [UInt8]) -> NetDelivery {
        bytes.withUnsafeBytes { deliver($0) }
    }
}
