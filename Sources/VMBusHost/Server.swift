import VMBusProtocol
import VMBusWire

/// The VMBus server's control plane as a synchronous state machine: a guest message (or a device request)
/// goes in, ``ServerAction``s come out. It does no I/O and takes no locks, so every rule can be tested with
/// plain values; ``VMBusHost`` performs the actions.
///
/// The guest is untrusted: every message is checked against the connection state, the negotiated version,
/// the channel and GPADL tables and guest memory. A bad message is counted in ``rejectedMessages`` and
/// answered with the protocol's own failure status where one exists; it never stops the server.
public struct Server: Sendable {
    public struct Configuration: Sendable {
        /// Versions this host accepts in INITIATE_CONTACT. Hyper-V accepts every version up to its own.
        public var supportedVersions: [VMBusVersion]
        /// Pages of guest memory; every PFN of a GPADL must be below this.
        public var guestPageCount: UInt64
        /// Most GPADLs one partition may hold (bounds host memory a guest can make us keep).
        public var maxGPADLs: Int
        /// Most GPADLs being assembled at once (each reserves up to 64 KiB of range data on the host).
        public var maxAssemblingGPADLs: Int
        /// Most pages all GPADLs of the partition may describe together; Hyper-V caps GPADL memory per VM too
        /// (Documentation/virt/hyperv/vmbus.rst). Fixed, not derived from the memory the guest declares: a
        /// sparse memfd costs the guest nothing, so its size must buy it nothing.
        public var maxGPADLPages: UInt64
        /// Pages no GPADL may name (the SynIC event-flags page). ``VMBusHost`` adds those its port's guest
        /// memory reserves.
        public var reservedPFNs: [UInt64] = []

        /// Hyper-V's GPADL cap per VM since Windows Server 2019: 1280 MiB of 4 KiB pages.
        public static let defaultMaxGPADLPages: UInt64 = 1280 << 8

        public init(maxVersion: VMBusVersion = .copper, guestPageCount: UInt64, maxGPADLs: Int = 4096,
                    maxGPADLPages: UInt64 = Configuration.defaultMaxGPADLPages) {
            self.supportedVersions = VMBusVersion.all.filter { $0.rawValue <= maxVersion.rawValue }
            self.guestPageCount = guestPageCount
            self.maxGPADLs = maxGPADLs
            self.maxAssemblingGPADLs = 64
            self.maxGPADLPages = maxGPADLPages
        }
    }

    /// `STATUS_UNSUCCESSFUL`-style failure used in OPENCHANNEL_RESULT and GPADL_CREATED (any non-zero fails).
    public static let statusFailure: UInt32 = 0xC000_0001
    /// Relids a partition can use: 1...2047 (the SINT2 event-flag bitmap has 2048 bits, and 0 is reserved).
    public static let relIDRange: ClosedRange<UInt32> = 1...2047
    /// Offered `connection_id` = relid + this base (OpenVMM: relid + (SINT << 12)); opaque to the guest.
    public static let connectionIDBase: UInt32 = UInt32(VMBusSynIC.messageSINT) << 12

    public enum Connection: Sendable, Equatable {
        case disconnected
        case connected(version: VMBusVersion, targetVCPU: UInt32)
    }

    public enum ChannelState: Sendable, Equatable {
        /// Offered (or closed again); may be opened.
        case offered
        /// OPENCHANNEL accepted, waiting for the runtime to map the rings.
        case opening(openID: UInt32, gpadl: UInt32, targetVP: UInt32)
        case open(gpadl: UInt32, targetVP: UInt32)
        /// RESCIND sent; waiting for RELID_RELEASED.
        case rescinded
    }

    public struct Channel: Sendable, Equatable {
        public var offer: OfferChannel
        public var state: ChannelState
        /// Whether the guest has been sent this offer on the current connection.
        public var offerSent: Bool
    }

    public enum GPADLState: Sendable, Equatable {
        case assembling(GPADLAssembler)
        case ready([GPARange])
    }

    public struct GPADL: Sendable, Equatable {
        public var relID: UInt32
        public var state: GPADLState
        /// The guest asked to tear it down while it held the rings of an open channel: GPADL_TORNDOWN is sent
        /// once the channel has stopped (the host no longer touches the memory).
        public var teardownPending = false
    }

    public var configuration: Configuration
    public internal(set) var connection: Connection = .disconnected
    public internal(set) var offersRequested = false
    public internal(set) var channels: [UInt32: Channel] = [:]
    public internal(set) var gpadls: [UInt32: GPADL] = [:]
    /// Guest messages refused since start, and the last reason.
    public internal(set) var rejectedMessages = 0
    public internal(set) var lastRejection: String?

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public var version: VMBusVersion? {
        if case .connected(let v, _) = connection { return v }
        return nil
    }

    // MARK: - Device side

    /// Registers a channel offer (a device's primary channel or a sub-channel) and returns its relid, or nil
    /// when all relids are in use. The offer is sent at once if the guest already asked for offers.
    public mutating func addOffer(_ device: HostDeviceOffer, subchannelIndex: UInt16) -> (UInt32, [ServerAction])? {
        guard let relID = Self.relIDRange.first(where: { channels[$0] == nil }) else { return nil }
        let offer = OfferChannel(
            interfaceType: device.classID, interfaceInstance: device.instanceID,
            channelFlags: device.flags, mmioMegabytes: device.mmioMegabytes, userDefined: device.userDefined,
            subchannelIndex: subchannelIndex, mmioMegabytesOptional: 0, childRelID: relID,
            monitorID: 0xFF, monitorAllocated: false, isDedicatedInterrupt: true,
            connectionID: Self.connectionIDBase + relID)
        var channel = Channel(offer: offer, state: .offered, offerSent: false)
        var actions: [ServerAction] = []
        if offersRequested {
            channel.offerSent = true
            actions.append(.send(.offerChannel(offer)))
        }
        channels[relID] = channel
        return (relID, actions)
    }

    /// Withdraws channel `relID` (device removed). The relid stays taken until the guest releases it.
    public mutating func rescind(relID: UInt32) -> [ServerAction] {
        guard var channel = channels[relID], channel.state != .rescinded else { return [] }
        var actions: [ServerAction] = []
        switch channel.state {
        case .open, .opening: actions.append(.closeChannel(relID: relID))
        default: break
        }
        guard channel.offerSent else {
            // The guest never saw it: nothing to release.
            channels[relID] = nil
            removeGPADLs(of: relID)
            actions.append(.releaseChannel(relID: relID))
            return actions
        }
        let ring = channel.state.ringGPADL
        channel.state = .rescinded
        channels[relID] = channel
        actions.append(.send(.rescindChannelOffer(RescindChannelOffer(childRelID: relID))))
        actions += finishPendingTeardown(ring)
        return actions
    }

    /// The runtime found channel `relID` broken (its ring corrupt, or a packet over the device's maximum):
    /// it is rescinded, as Hyper-V withdraws a channel it cannot serve, so the guest learns of it and releases
    /// the relid. Nothing happens if the channel is no longer open.
    public mutating func channelFailed(relID: UInt32) -> [ServerAction] {
        guard let channel = channels[relID] else { return [] }
        switch channel.state {
        case .open, .opening: return rescind(relID: relID)
        case .offered, .rescinded: return []
        }
    }

    /// The runtime finished (or failed) mapping the rings of `relID`.
    public mutating func channelOpenCompleted(relID: UInt32, status: UInt32) -> [ServerAction] {
        guard var channel = channels[relID], case .opening(let openID, let gpadl, let targetVP) = channel.state else {
            // Rescinded or reset meanwhile: Hyper-V sends no result for a rescinded channel.
            return status == 0 ? [.closeChannel(relID: relID)] : []
        }
        channel.state = status == 0 ? .open(gpadl: gpadl, targetVP: targetVP) : .offered
        channels[relID] = channel
        let result = ServerAction.send(.openChannelResult(OpenChannelResult(childRelID: relID, openID: openID,
                                                                           status: status)))
        return status == 0 ? [result] : [result] + finishPendingTeardown(gpadl)
    }

    /// The guest disappeared without UNLOAD: drop everything of the connection.
    public mutating func guestDisconnected() -> [ServerAction] {
        reset()
    }

    // MARK: - Guest messages

    /// Handles one message the guest posted. Refused messages are counted and produce no action unless the
    /// protocol has a failure reply for them.
    public mutating func handle(_ bytes: [UInt8]) -> [ServerAction] {
        let message: ChannelMessage
        do {
            message = try ChannelMessage.parse(bytes)
        } catch {
            reject("\(error)")
            return []
        }
        do {
            return try handle(message)
        } catch {
            reject("\(error)")
            return []
        }
    }

    mutating func reject(_ why: String) {
        rejectedMessages += 1
        lastRejection = why
    }

    mutating func handle(_ message: ChannelMessage) throws(ServerError) -> [ServerAction] {
        let type = message.type
        guard type.direction == .guestToHost else { throw .unexpected(type, "sent by the guest") }
        if case .initiateContact(let m) = message { return initiateContact(m) }
        guard case .connected(let version, _) = connection else { throw .unexpected(type, "not connected") }
        guard version.rawValue >= type.minimumVersion.rawValue else {
            throw .unexpected(type, "needs version \(type.minimumVersion), negotiated \(version)")
        }
        switch message {
        case .requestOffers:
            return try requestOffers()
        case .openChannel(let m):
            return try openChannel(m)
        case .closeChannel(let m):
            return try closeChannel(relID: m.childRelID)
        case .gpadlHeader(let m):
            return try gpadlHeader(m)
        case .gpadlBody(let m):
            return try gpadlBody(m)
        case .gpadlTeardown(let m):
            return try gpadlTeardown(m)
        case .relIDReleased(let m):
            return try relIDReleased(m.childRelID)
        case .unload:
            var actions = reset()
            // UNLOAD_RESPONSE exists from Win7 (1.1) on; a WS2008 guest expects none.
            if version.rawValue >= ChannelMessageType.unloadResponse.minimumVersion.rawValue {
                actions.append(.send(.unloadResponse(UnloadResponse())))
            }
            return actions
        case .modifyChannel(let m):
            return try modifyChannel(m)
        case .tlConnectRequest(let m):
            // No hv_sock services are offered by this host: refuse the connection (Linux ignores the result).
            guard version.rawValue >= ChannelMessageType.tlConnectResult.minimumVersion.rawValue else { return [] }
            return [.send(.tlConnectResult(TLConnectResult(
                guestEndpointID: m.guestEndpointID, hostServiceID: m.hostServiceID, status: -1)))]
        default:
            // Reserved channels, MODIFY_CONNECTION and PAUSE/RESUME are known but not served.
            throw .unexpected(type, "not supported by this host")
        }
    }

    mutating func initiateContact(_ m: InitiateContact) -> [ServerAction] {
        var actions: [ServerAction] = []
        if connection != .disconnected {
            // A new INITIATE_CONTACT while connected is a reconnect: tear the old connection down first.
            actions += reset()
        }
        // From 5.0 the guest names the SINT and VTL it receives messages on; this host delivers only on
        // SINT 2 of VTL 0, so any other target is answered "unsupported" (OpenVMM does the same).
        let target = !m.versionRequested.usesMessageConnectionID
            || (m.messageSINT == VMBusSynIC.messageSINT && m.messageVTL == 0)
        let supported = configuration.supportedVersions.contains(m.versionRequested) && target
        if supported {
            connection = .connected(version: m.versionRequested, targetVCPU: m.targetVCPU)
        }
        // Hyper-V answers an unsupported version with version_supported = 0 so the guest tries the next one;
        // msg_conn_id names the connection id for later messages (Linux reads it from 5.0 on).
        actions.append(.send(.versionResponse(VersionResponse(
            versionSupported: supported, connectionState: 0,
            messageConnectionID: VMBusConnectionID.message))))
        return actions
    }

    mutating func requestOffers() throws(ServerError) -> [ServerAction] {
        guard !offersRequested else { throw .unexpected(.requestOffers, "offers were already requested") }
        offersRequested = true
        var actions: [ServerAction] = []
        for relID in channels.keys.sorted() {
            guard var c = channels[relID], c.state != .rescinded else { continue }
            c.offerSent = true
            channels[relID] = c
            actions.append(.send(.offerChannel(c.offer)))
        }
        actions.append(.send(.allOffersDelivered(AllOffersDelivered())))
        return actions
    }

    /// Tears down the connection: closes open channels, forgets GPADLs and rescinded relids.
    mutating func reset() -> [ServerAction] {
        var actions: [ServerAction] = []
        for relID in channels.keys.sorted() {
            guard var c = channels[relID] else { continue }
            switch c.state {
            case .open, .opening:
                actions.append(.closeChannel(relID: relID))
                c.state = .offered
            case .rescinded:
                channels[relID] = nil
                actions.append(.releaseChannel(relID: relID))
                continue
            case .offered:
                break
            }
            c.offerSent = false
            channels[relID] = c
        }
        gpadls.removeAll()
        offersRequested = false
        connection = .disconnected
        actions.append(.connectionReset)
        return actions
    }

    /// The channel `relID` if the guest was sent its offer on this connection: a guest may only name
    /// channels it was offered.
    func offeredChannel(_ relID: UInt32) -> Channel? {
        guard let c = channels[relID], c.offerSent else { return nil }
        return c
    }

    /// GPADL_TORNDOWN for `handle` if the guest asked for it while the GPADL held a channel's rings; call once
    /// that channel has stopped (the runtime stops it before sending what follows).
    mutating func finishPendingTeardown(_ handle: UInt32?) -> [ServerAction] {
        guard let handle, let g = gpadls[handle], g.teardownPending else { return [] }
        gpadls[handle] = nil
        return [.send(.gpadlTorndown(GPADLTorndown(gpadl: handle)))]
    }

    mutating func removeGPADLs(of relID: UInt32) {
        gpadls = gpadls.filter { $0.value.relID != relID }
    }
}

extension Server.ChannelState {
    /// The ring GPADL of an open (or opening) channel.
    var ringGPADL: UInt32? {
        switch self {
        case .open(let gpadl, _), .opening(_, let gpadl, _): return gpadl
        case .offered, .rescinded: return nil
        }
    }
}
