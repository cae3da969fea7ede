import Atomics

/// What a NetVSP counts, in the spirit of `ethtool -S` (names from the host's point of view: *tx* is what
/// the guest transmitted, *rx* what it received).
public struct NetVSPCounters: Sendable, Equatable {
    public var txPackets = 0
    public var txBytes = 0
    public var rxPackets = 0
    public var rxBytes = 0
    /// Frames a backend offered that the guest was not taking (filter 0, RNDIS not ready, link down, size).
    public var rxDropped = 0
    /// Deliveries answered busy: no free receive slot.
    public var rxBusy = 0
    /// NVSP or RNDIS input refused as malformed or out of order (bad offsets, lengths, sections, PPIs).
    public var protocolErrors = 0
    /// Completions for no outstanding receive slot.
    public var unknownCompletions = 0
    /// Frames whose checksum offload request could not be honoured (headers that do not add up).
    public var checksumErrors = 0
    /// Frames delivered as one RSC packet of several fragments.
    public var rxCoalesced = 0
    /// LSO sends handed to a GSO backend whole instead of being cut here.
    public var largeSendsPassed = 0
    /// Control messages (RNDIS requests) handled, and responses that found no receive slot.
    public var controlMessages = 0
    public var controlResponsesDropped = 0
    public var lastError: String?
}

/// The live counters: atomics, so the data path takes no lock to count.
final class NetVSPCounterSet: Sendable {
    let txPackets = ManagedAtomic<Int>(0)
    let txBytes = ManagedAtomic<Int>(0)
    let rxPackets = ManagedAtomic<Int>(0)
    let rxBytes = ManagedAtomic<Int>(0)
    let rxDropped = ManagedAtomic<Int>(0)
    let rxBusy = ManagedAtomic<Int>(0)
    let protocolErrors = ManagedAtomic<Int>(0)
    let unknownCompletions = ManagedAtomic<Int>(0)
    let checksumErrors = ManagedAtomic<Int>(0)
    let largeSendsPassed = ManagedAtomic<Int>(0)
    let rxCoalesced = ManagedAtomic<Int>(0)
    let controlMessages = ManagedAtomic<Int>(0)
    let controlResponsesDropped = ManagedAtomic<Int>(0)

    func snapshot(lastError: String?) -> NetVSPCounters {
        var c = NetVSPCounters()
        c.txPackets = txPackets.load(ordering: .relaxed)
        c.txBytes = txBytes.load(ordering: .relaxed)
        c.rxPackets = rxPackets.load(ordering: .relaxed)
        c.rxBytes = rxBytes.load(ordering: .relaxed)
        c.rxDropped = rxDropped.load(ordering: .relaxed)
        c.rxBusy = rxBusy.load(ordering: .relaxed)
        c.protocolErrors = protocolErrors.load(ordering: .relaxed)
        c.unknownCompletions = unknownCompletions.load(ordering: .relaxed)
        c.checksumErrors = checksumErrors.load(ordering: .relaxed)
        c.largeSendsPassed = largeSendsPassed.load(ordering: .relaxed)
        c.rxCoalesced = rxCoalesced.load(ordering: .relaxed)
        c.controlMessages = controlMessages.load(ordering: .relaxed)
        c.controlResponsesDropped = controlResponsesDropped.load(ordering: .relaxed)
        c.lastError = lastError
        return c
    }
}

extension ManagedAtomic where Value == Int {
    @inline(__always) func bump(_ n: Int = 1) { wrappingIncrement(by: n, ordering: .relaxed) }
}
