import VMBusMemory
import VMBusProtocol
import VMBusTransport
import VMBusWire

/// One device in the guest's registry: the primary channel's offer plus the sub-channel offers that
/// arrived for it. Keyed by instance GUID, as Linux's bus keys `hv_device`s.
public final class GuestDevice: @unchecked Sendable {
    public let primaryOffer: OfferChannel
    public var classID: GUID { primaryOffer.interfaceType }
    public var instanceID: GUID { primaryOffer.interfaceInstance }
    public var relID: UInt32 { primaryOffer.childRelID }
    /// Monitor id, when the host allocated one.
    public var monitorID: UInt8? { primaryOffer.monitorAllocated ? primaryOffer.monitorID : nil }
    public var description: String { DeviceClass.describe(classID) }
    weak var bus: GuestBus?
    /// The allocator of guest pages a driver takes its buffers from (bounce pages, receive buffers); nil once
    /// the bus is gone.
    public var pageAllocator: PageAllocator? { bus?.synic.pages }

    struct State {
        var subchannels: [UInt16: OfferChannel] = [:]
        var driver: (any VMBusDriver)?
        var channels: [UInt32: GuestChannel] = [:]
        var rescinded = false
    }
    let state = Condition(State())

    init(offer: OfferChannel, bus: GuestBus) {
        self.primaryOffer = offer
        self.bus = bus
    }

    /// Sub-channel offers received so far, by sub-channel index.
    public var subchannelOffers: [UInt16: OfferChannel] { state.withLock { $0.subchannels } }
    public var driverName: String? { state.withLock { $0.driver?.name } }
    public var isRescinded: Bool { state.withLock { $0.rescinded } }
    public var openChannels: [GuestChannel] {
        state.withLock { s in s.channels.keys.sorted().compactMap { s.channels[$0] } }
    }

    /// Waits until at least `count` sub-channel offers have arrived; returns them in index order.
    public func waitForSubchannels(_ count: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) throws(GuestError) -> [OfferChannel] {
        let r = state.wait(timeoutNanoseconds: timeoutNanoseconds) { s -> [OfferChannel]? in
            if s.rescinded { return [] }
            guard s.subchannels.count >= count else { return nil }
            return s.subchannels.keys.sorted().prefix(count).compactMap { s.subchannels[$0] }
        }
        guard let r else { throw .timedOut("\(count) sub-channel offers of \(instanceID)") }
        if r.isEmpty && count > 0 { throw .rescinded(relID: relID) }
        return r
    }

    /// Opens the primary channel (`offer` nil) or a sub-channel with rings of the given total sizes
    /// (each including its 4 KiB control page; page multiples).
    public func open(_ offer: OfferChannel? = nil, outgoingRingSize: Int = 64 * 1024, incomingRingSize: Int = 64 * 1024,
                     maxPacketSize: Int = 4096, requestSlots: Int = 512, userData: [UInt8] = [],
                     scatteredPages: Bool = false, handler: any GuestChannelHandler) throws(GuestError) -> GuestChannel {
        guard let bus else { throw .notConnected }
        let o = offer ?? primaryOffer
        guard o.interfaceInstance == instanceID else { throw .invalidArgument("offer of another device") }
        let channel = try bus.openChannel(o, outgoingRingSize: outgoingRingSize, incomingRingSize: incomingRingSize,
                                          maxPacketSize: maxPacketSize, requestSlots: requestSlots,
                                          userData: userData, scatteredPages: scatteredPages, handler: handler)
        state.update { $0.channels[o.childRelID] = channel }
        return channel
    }

    /// Creates a GPADL over `pages` on the primary channel (netvsc's receive and send buffers) and waits for
    /// GPADL_CREATED.
    public func createGPADL(pages: [UInt64]) throws(GuestError) -> UInt32 {
        guard let bus else { throw .notConnected }
        return try bus.createGPADL(relID: relID, pages: pages)
    }

    /// Tears down a GPADL of the primary channel and waits for GPADL_TORNDOWN; only then may its pages be
    /// reused.
    public func teardownGPADL(_ handle: UInt32) throws(GuestError) {
        guard let bus else { throw .notConnected }
        try bus.teardownGPADL(relID: relID, handle: handle)
    }
}
