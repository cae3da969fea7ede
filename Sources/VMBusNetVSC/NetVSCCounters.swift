import Atomics

/// The guest NIC's counters, named after Linux's `ethtool -S` for hv_netvsc where one exists.
public struct NetVSCCounters: Sendable, Equatable {
    public var txPackets = 0
    public var txBytes = 0
    public var rxPackets = 0
    public var rxBytes = 0
    /// Received frames joined from RSC fragments.
    public var rxCoalesced = 0
    /// `tx_send_full`: the ring was full when a frame was sent.
    public var txSendFull = 0
    /// `tx_busy`: no send section or GPA-direct buffer was free.
    public var txBusy = 0
    /// Frames sent through a send-buffer section, and GPA-direct.
    public var txCopied = 0
    public var txGPADirect = 0
    /// Frames that went several to one send section (``NetVSC/send(_:offload:more:)``).
    public var txBatched = 0
    /// Sends the host completed with a failure.
    public var txErrors = 0
    /// Frames refused by ``NetVSC/send(_:offload:)``: too short or too long.
    public var txDropped = 0
    /// `rx_comp_busy`: a receive completion waited because the ring was full.
    public var rxCompBusy = 0
    /// Receive completions given up on (the pending queue was full: a host flooding us).
    public var rxCompDropped = 0
    /// Frames received while no handler was set, or of a bad size.
    public var rxDropped = 0
    /// Host input dropped as malformed: bad transfer-page headers or ranges, bad RNDIS, unknown packets.
    public var malformed = 0
    /// RNDIS control messages nobody waited for, and status indications.
    public var unexpectedControl = 0
    public var statusIndications = 0
}

final class NetVSCCounterSet: Sendable {
    let txPackets = ManagedAtomic<Int>(0)
    let txBytes = ManagedAtomic<Int>(0)
    let txBatched = ManagedAtomic<Int>(0)
    let rxPackets = ManagedAtomic<Int>(0)
    let rxBytes = ManagedAtomic<Int>(0)
    let rxCoalesced = ManagedAtomic<Int>(0)
    let txSendFull = ManagedAtomic<Int>(0)
    let txBusy = ManagedAtomic<Int>(0)
    let txCopied = ManagedAtomic<Int>(0)
    let txGPADirect = ManagedAtomic<Int>(0)
    let txErrors = ManagedAtomic<Int>(0)
    let txDropped = ManagedAtomic<Int>(0)
    let rxCompBusy = ManagedAtomic<Int>(0)
    let rxCompDropped = ManagedAtomic<Int>(0)
    let rxDropped = ManagedAtomic<Int>(0)
    let malformed = ManagedAtomic<Int>(0)
    let unexpectedControl = ManagedAtomic<Int>(0)
    let statusIndications = ManagedAtomic<Int>(0)

    var snapshot: NetVSCCounters {
        var c = NetVSCCounters()
        c.txPackets = txPackets.load(ordering: .relaxed)
        c.txBytes = txBytes.load(ordering: .relaxed)
        c.rxPackets = rxPackets.load(ordering: .relaxed)
        c.rxBytes = rxBytes.load(ordering: .relaxed)
        c.rxCoalesced = rxCoalesced.load(ordering: .relaxed)
        c.txSendFull = txSendFull.load(ordering: .relaxed)
        c.txBusy = txBusy.load(ordering: .relaxed)
        c.txCopied = txCopied.load(ordering: .relaxed)
        c.txGPADirect = txGPADirect.load(ordering: .relaxed)
        c.txBatched = txBatched.load(ordering: .relaxed)
        c.txErrors = txErrors.load(ordering: .relaxed)
        c.txDropped = txDropped.load(ordering: .relaxed)
        c.rxCompBusy = rxCompBusy.load(ordering: .relaxed)
        c.rxCompDropped = rxCompDropped.load(ordering: .relaxed)
        c.rxDropped = rxDropped.load(ordering: .relaxed)
        c.malformed = malformed.load(ordering: .relaxed)
        c.unexpectedControl = unexpectedControl.load(ordering: .relaxed)
        c.statusIndications = statusIndications.load(ordering: .relaxed)
        return c
    }
}

extension ManagedAtomic where Value == Int {
    @inline(__always) func bump(_ n: Int = 1) { wrappingIncrement(by: n, ordering: .relaxed) }
}
