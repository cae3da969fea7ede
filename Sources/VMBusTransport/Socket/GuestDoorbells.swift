/// The doorbells a guest holds, by connection id, and the rule that bounds them (docs/TRANSPORT.md §4.4).
///
/// A host may hand over a doorbell only for a connection id an OFFERCHANNEL names. It sends the DOORBELL
/// before the offer, so a DOORBELL for an id not offered yet is held as *pending*: at most
/// ``maxPending`` at once (a further one evicts the oldest), each dropped unless an offer naming its id
/// arrives within ``pendingLifetimeFrames`` frames. Ids offered are remembered (at most ``maxOffered``;
/// offers beyond that get no doorbell) until DOORBELL_REVOKE. So a rogue host can make the guest hold at
/// most `maxOffered + maxPending` descriptors, however many DOORBELLs it sends.
///
/// Not thread-safe: the SINT thread owns it, under the synic's lock.
struct GuestDoorbells {
    static let maxPending = 16
    static let pendingLifetimeFrames: UInt64 = 64

    let maxOffered: Int
    private(set) var active: [UInt32: Doorbell] = [:]
    private(set) var offered: Set<UInt32> = []
    private var pending: [(id: UInt32, bell: Doorbell, expiresAfter: UInt64)] = []
    private var frames: UInt64 = 0

    init(maxOffered: Int) { self.maxOffered = maxOffered }

    var pendingCount: Int { pending.count }

    /// A DOORBELL arrived. Returns false when the doorbell was not kept or another was dropped for it (the
    /// caller counts a violation).
    mutating func received(_ bell: Doorbell, for id: UInt32) -> Bool {
        if offered.contains(id) {
            active[id] = bell
            return true
        }
        pending.removeAll { $0.id == id }
        var evicted = false
        if pending.count >= Self.maxPending {
            pending.removeFirst()
            evicted = true
        }
        pending.append((id, bell, frames &+ Self.pendingLifetimeFrames))
        return !evicted
    }

    /// A CHANNEL_MESSAGE arrived (`offeredID`: the connection id, if it is an OFFERCHANNEL). Returns how many
    /// pending doorbells expired.
    mutating func channelMessage(offering offeredID: UInt32?) -> Int {
        frames &+= 1
        if let id = offeredID, offered.contains(id) || offered.count < maxOffered {
            offered.insert(id)
            if let i = pending.firstIndex(where: { $0.id == id }) {
                active[id] = pending.remove(at: i).bell
            }
        }
        let before = pending.count
        pending.removeAll { $0.expiresAfter < frames }
        return before - pending.count
    }

    /// DOORBELL_REVOKE: the id is no longer offered.
    mutating func revoke(_ id: UInt32) {
        active.removeValue(forKey: id)
        offered.remove(id)
        pending.removeAll { $0.id == id }
    }
}
