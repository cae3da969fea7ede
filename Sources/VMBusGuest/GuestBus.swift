import Atomics
import Logging
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// The guest's VMBus bus driver: connects to the host (versions newest first), collects offers into a
/// device registry keyed by instance GUID, binds drivers by class GUID, and provides the channel library
/// (GPADLs, open and close).
///
/// Threads: the transport's interrupt thread delivers channel interrupts and messages. Responses
/// (VERSION_RESPONSE, OPENCHANNEL_RESULT, GPADL_CREATED …) wake the waiting caller at once; offers and
/// rescinds go to the bus work thread, which runs probe and remove, so a driver may open channels (and wait
/// for the host) from probe without blocking message delivery, as Linux separates its offer work queue
/// from the message DPC.
///
/// A channel interrupt drains at most ``drainBudget`` packets on the interrupt thread. A channel that has
/// more (a host that keeps its ring full) goes to the bus's poll thread, which keeps draining the busy
/// channels in turn, a budget each, with their interrupts masked, as Linux's NAPI polls a busy device. So
/// however busy a ring is kept, the interrupt thread gets back to the other channels and to the message
/// queue: RESCIND, responses and UNLOAD_RESPONSE are never starved.
///
/// DOORBELL_REVOKE (socket transport): the transport forgets the doorbell and ``GuestSynIC/signalEvent``
/// becomes a no-op for it. The bus keeps the channel open: the rings stay correct without signals, the host
/// that revoked its doorbell must poll them (ours does), and closing still works because it goes over the
/// message connection, not the doorbell. Closing instead would let a host tear channels down by a transport
/// frame that VMBus itself does not have.
///
/// The host is untrusted: messages of the wrong direction, malformed or unexpected ones are counted in
/// ``rejectedMessages`` and dropped.
public final class GuestBus: GuestInterruptSink, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Versions tried in order. Default: 6.0 first, then Linux 6.12's list.
        public var tryOrder: [VMBusVersion]
        /// How long to wait for each host response.
        public var responseTimeoutNanoseconds: UInt64
        public init(tryOrder: [VMBusVersion] = [.copper] + VMBusVersion.linuxTryOrder,
                    responseTimeoutNanoseconds: UInt64 = 5_000_000_000) {
            self.tryOrder = tryOrder
            self.responseTimeoutNanoseconds = responseTimeoutNanoseconds
        }
    }

    /// Linux starts GPADL handles here (`next_gpadl_handle`).
    public static let firstGPADLHandle: UInt32 = 0xE1E10

    public let synic: any GuestSynIC
    public let configuration: Configuration
    public let logger: Logger

    /// Responses the host sent that a caller may be waiting for.
    struct Responses {
        var versionResponse: VersionResponse?
        /// The negotiated version; nil while disconnected.
        var version: VMBusVersion?
        var allOffersDelivered = false
        var openResults: [UInt32: OpenChannelResult] = [:]
        var gpadlCreated: [UInt32: GPADLCreated] = [:]
        var gpadlTorndown: Set<UInt32> = []
        var unloadResponse = false
        var hostLost = false
        /// What callers are waiting for. A response nobody asked for is rejected, so a host cannot grow the
        /// tables above: OPENCHANNEL relids, GPADL handle → relid, GPADL_TEARDOWN handles.
        var awaitedOpens: Set<UInt32> = []
        var awaitedGPADLs: [UInt32: UInt32] = [:]
        var awaitedTeardowns: Set<UInt32> = []
        /// Relids the host rescinded (until offered again): waits for OPENCHANNEL_RESULT or GPADL_CREATED on
        /// them end at once, as Linux's `vmbus_rescind_cleanup` wakes them.
        var rescinded: Set<UInt32> = []
    }

    /// How a wait for a host response ended.
    enum Awaited<T> {
        case answered(T)
        case rescinded
        case hostLost
    }

    /// Waits for the response `take` removes from ``Responses``; fails on timeout, on host loss and (with
    /// `relID`) when the host rescinds that channel meanwhile.
    func awaitResponse<T>(_ what: String, relID: UInt32?, _ take: (inout Responses) -> T?) throws(GuestError) -> T {
        let outcome = responses.wait(timeoutNanoseconds: configuration.responseTimeoutNanoseconds) { r -> Awaited<T>? in
            if let v = take(&r) { return .answered(v) }
            if r.hostLost { return .hostLost }
            if let relID, r.rescinded.contains(relID) { return .rescinded }
            return nil
        }
        switch outcome {
        case nil: throw .timedOut(what)
        case .hostLost: throw .hostLost
        case .rescinded: throw .rescinded(relID: relID ?? 0)
        case .answered(let v): return v
        }
    }

    struct Registry {
        var devices: [GUID: GuestDevice] = [:]
        /// relid → device, for primary and sub-channels.
        var byRelID: [UInt32: GuestDevice] = [:]
        var drivers: [any VMBusDriver] = []
        var rejectedMessages = 0
        var lastRejection: String?
    }

    enum Work: Sendable {
        case offer(OfferChannel)
        case rescind(UInt32)
        case bindAll
        case removeAll
        case barrier(Latch)
        /// The host broke this open channel: tell the driver, then close it.
        case channelBroken(GuestChannel, GuestError)
    }

    /// Channels whose drain used up its budget, served in turn by the poll thread.
    struct Backlog {
        /// Room reserved up front: a channel is queued at most once (its `backlogged` flag), so the first drain
        /// that runs out of budget, in the middle of the data path, does not allocate (vmbus-bench's
        /// channel-echo saw that allocation now and then).
        var queue: [GuestChannel] = {
            var q: [GuestChannel] = []
            q.reserveCapacity(64)
            return q
        }()
        var stopping = false
        var running = false
    }

    /// Packets one channel interrupt (or one poll turn) delivers before the next channel, or the message
    /// queue, gets its turn.
    public static let drainBudget = 4 * GuestChannel.batchSize

    let responses = Condition(Responses())
    let registry = Condition(Registry())
    /// relid → open channel, read on every interrupt.
    let channels = Condition<[UInt32: GuestChannel]>([:])
    /// Relids with an open in progress.
    let opening = Condition<Set<UInt32>>([])
    let work = BlockingQueue<Work>(capacity: 8192)
    let workDone = Latch()
    let backlog = Condition(Backlog())
    let pollDone = Latch()
    let nextGPADL = ManagedAtomic<UInt32>(GuestBus.firstGPADLHandle)
    /// The negotiated VMBus version; nil while not connected.
    public var version: VMBusVersion? { responses.withLock { $0.version } }
    var messageConnectionID: UInt32 = VMBusConnectionID.message

    public init(synic: any GuestSynIC, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "vmbus.guest")) {
        self.synic = synic
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: - Connecting

    /// Starts the transport, negotiates a version (newest first), requests offers and waits until the
    /// offers delivered so far are in the registry.
    public func connect() throws(GuestError) {
        synic.start(self)
        do {
            try spawnThread(name: "vmbus-bus") { [self] in
                while let item = work.pop() { run(item) }
                workDone.open()
            }
        } catch {
            // disconnect() waits for these latches: nothing runs behind them.
            workDone.open()
            pollDone.open()
            throw .outOfResources("\(error)")
        }
        backlog.withLock { $0.running = true }
        do {
            try spawnThread(name: "vmbus-poll") { [self] in
                while let channel = backlog.wait(until: { b -> GuestChannel?? in
                    b.stopping ? .some(nil) : (b.queue.isEmpty ? nil : .some(b.queue.removeFirst()))
                }), let channel {
                    channel.backlogged.store(false, ordering: .sequentiallyConsistent)
                    serve(channel)
                }
                pollDone.open()
            }
        } catch {
            pollDone.open()
            throw .outOfResources("\(error)")
        }
        try negotiate()
        try post(.requestOffers(RequestOffers()))
        guard responses.wait(timeoutNanoseconds: configuration.responseTimeoutNanoseconds, until: { r -> Bool? in
            r.hostLost ? false : (r.allOffersDelivered ? true : nil)
        }) == true else {
            throw responses.withLock({ $0.hostLost }) ? .hostLost : .timedOut("ALLOFFERS_DELIVERED")
        }
        flushWork()
    }

    func negotiate() throws(GuestError) {
        for candidate in configuration.tryOrder {
            responses.withLock { $0.versionResponse = nil }
            // From 5.0 the interrupt-page field carries the SINT for messages; no monitor pages (no MNF).
            let contact = candidate.usesMessageConnectionID
                ? InitiateContact(versionRequested: candidate, targetVCPU: 0, messageSINT: VMBusSynIC.messageSINT)
                : InitiateContact(versionRequested: candidate, targetVCPU: 0)
            try post(.initiateContact(contact), connectionID: candidate.initiateContactConnectionID)
            let response = responses.wait(timeoutNanoseconds: configuration.responseTimeoutNanoseconds) { r -> VersionResponse?? in
                if r.hostLost { return .some(nil) }
                return r.versionResponse.map { .some($0) }
            }
            guard let response else { throw .timedOut("VERSION_RESPONSE to \(candidate)") }
            guard let response else { throw .hostLost }
            if response.versionSupported {
                responses.withLock { $0.version = candidate }
                // From 5.0 on, later messages go to the connection id the host names.
                messageConnectionID = candidate.rawValue >= VMBusVersion.win10_v5.rawValue
                    ? response.messageConnectionID : VMBusConnectionID.message
                logger.info("connected at VMBus \(candidate)")
                return
            }
        }
        throw .noCommonVersion(tried: configuration.tryOrder)
    }

    /// Posts a message, retrying transient failures with backoff as Linux's `vmbus_post_msg` does.
    func post(_ message: ChannelMessage, connectionID: UInt32? = nil) throws(GuestError) {
        let bytes = message.bytes
        var delay: UInt64 = 1_000
        for _ in 0..<100 {
            if responses.withLock({ $0.hostLost }) { throw .hostLost }
            let status = synic.postMessage(connectionID: connectionID ?? messageConnectionID, bytes)
            if status == .success { return }
            guard status == .insufficientBuffers || status == .insufficientMemory else { throw .postFailed(status) }
            sleepNanoseconds(delay)
            delay = min(delay * 2, 10_000_000)
        }
        throw .postFailed(.insufficientBuffers)
    }

    /// Unbinds every driver (closing channels), sends UNLOAD and waits for UNLOAD_RESPONSE, then stops.
    /// Returns whether UNLOAD_RESPONSE arrived (false also when never connected or the host was gone).
    @discardableResult
    public func disconnect() -> Bool {
        var unloaded = false
        if version != nil {
            let done = Latch()
            if work.push(.removeAll) && work.push(.barrier(done)) { done.wait(timeoutNanoseconds: 30_000_000_000) }
            do {
                // Only an answer to this UNLOAD counts.
                responses.withLock { $0.unloadResponse = false }
                try post(.unload(Unload()))
                let ok = responses.wait(timeoutNanoseconds: configuration.responseTimeoutNanoseconds) { r -> Bool? in
                    r.unloadResponse ? true : (r.hostLost ? false : nil)
                }
                unloaded = ok == true
                if !unloaded { logger.warning("no UNLOAD_RESPONSE from the host") }
            } catch {
                logger.warning("UNLOAD: \(error)")
            }
            responses.withLock { $0.version = nil }
        }
        work.close()
        workDone.wait(timeoutNanoseconds: 30_000_000_000)
        synic.stop()
        let polling = backlog.update { b -> Bool in
            b.stopping = true
            b.queue.removeAll()
            return b.running
        }
        if polling { pollDone.wait(timeoutNanoseconds: 30_000_000_000) }
        return unloaded
    }

    // MARK: - Drivers and registry

    /// Registers a driver; it is probed for every matching device, present now or offered later. Returns
    /// after the present devices were probed.
    public func register(_ driver: any VMBusDriver) {
        registry.withLock { $0.drivers.append(driver) }
        guard work.push(.bindAll) else { return }
        flushWork()
    }

    /// Waits until the bus work queued so far (offers, rescinds, probes) is done.
    public func flushWork() {
        let done = Latch()
        guard work.push(.barrier(done)) else { return }
        done.wait(timeoutNanoseconds: 60_000_000_000)
    }

    /// Devices in the registry, by relid.
    public var devices: [GuestDevice] {
        registry.withLock { r in r.devices.values.sorted { $0.relID < $1.relID } }
    }

    public func device(instance: GUID) -> GuestDevice? { registry.withLock { $0.devices[instance] } }

    public var rejectedMessages: Int { registry.withLock { $0.rejectedMessages } }
    /// Whether the transport reported the host gone.
    public var isHostLost: Bool { responses.withLock { $0.hostLost } }
    public var lastRejection: String? { registry.withLock { $0.lastRejection } }

    func reject(_ why: String) {
        registry.withLock { $0.rejectedMessages += 1; $0.lastRejection = why }
        logger.debug("rejected host message: \(why)")
    }

    private func run(_ item: Work) {
        switch item {
        case .offer(let offer): addOffer(offer)
        case .rescind(let relID): rescind(relID)
        case .bindAll: for d in devices { bind(d) }
        case .removeAll: for d in devices { unbind(d) }
        case .barrier(let latch): latch.open()
        case .channelBroken(let channel, let error):
            channel.notifyBroken(error)
            close(channel)
        }
    }

    private func addOffer(_ offer: OfferChannel) {
        let device: GuestDevice? = registry.withLock { r in
            if let primary = r.devices[offer.interfaceInstance] {
                // Same instance as a known device: a sub-channel, which must have a non-zero index.
                guard offer.interfaceType == primary.classID, offer.subchannelIndex != 0,
                      r.byRelID[offer.childRelID] == nil else {
                    r.rejectedMessages += 1
                    r.lastRejection = "duplicate offer for \(offer.interfaceInstance) relid \(offer.childRelID)"
                    return nil
                }
                let added = primary.state.update { s -> Bool in
                    guard s.subchannels[offer.subchannelIndex] == nil else { return false }
                    s.subchannels[offer.subchannelIndex] = offer
                    return true
                }
                if added {
                    r.byRelID[offer.childRelID] = primary
                } else {
                    r.rejectedMessages += 1
                    r.lastRejection = "duplicate sub-channel \(offer.subchannelIndex) of \(offer.interfaceInstance)"
                }
                return nil
            }
            guard offer.subchannelIndex == 0, r.byRelID[offer.childRelID] == nil else {
                r.rejectedMessages += 1
                r.lastRejection = "orphan or duplicate offer relid \(offer.childRelID)"
                return nil
            }
            let d = GuestDevice(offer: offer, bus: self)
            r.devices[offer.interfaceInstance] = d
            r.byRelID[offer.childRelID] = d
            return d
        }
        if let device { bind(device) }
    }

    private func bind(_ device: GuestDevice) {
        guard device.state.withLock({ $0.driver == nil && !$0.rescinded }) else { return }
        let drivers = registry.withLock { $0.drivers }
        for driver in drivers where driver.classIDs.contains(device.classID) {
            do {
                device.state.update { $0.driver = driver }
                try driver.probe(device)
                logger.info("\(driver.name) bound to \(device.instanceID) (relid \(device.relID))")
                return
            } catch {
                device.state.update { $0.driver = nil }
                logger.warning("\(driver.name) probe of \(device.instanceID) failed: \(error)")
            }
        }
    }

    private func unbind(_ device: GuestDevice) {
        guard let driver = device.state.withLock({ $0.driver }) else { return }
        driver.remove(device)
        // A driver that forgot a channel must not leave it open.
        for channel in device.openChannels { close(channel) }
        device.state.update { $0.driver = nil }
    }

    private func rescind(_ relID: UInt32) {
        guard let device = registry.withLock({ $0.byRelID[relID] }) else {
            reject("RESCIND for unknown relid \(relID)")
            return
        }
        if relID == device.relID {
            // The whole device goes: unbind, then release the primary's relid. Each sub-channel is rescinded
            // by its own RESCIND (Hyper-V sends one per relid), which finds the device through `byRelID`.
            device.state.update { $0.rescinded = true }
            unbind(device)
            registry.withLock { r in
                r.devices[device.instanceID] = nil
                r.byRelID[relID] = nil
            }
            releaseRelID(relID)
        } else {
            if let channel = channels.withLock({ $0[relID] }) { close(channel) }
            device.state.update { s in s.subchannels = s.subchannels.filter { $0.value.childRelID != relID } }
            registry.withLock { $0.byRelID[relID] = nil }
            releaseRelID(relID)
        }
    }

    private func releaseRelID(_ relID: UInt32) {
        do { try post(.relIDReleased(RelIDReleased(childRelID: relID))) }
        catch { logger.warning("RELID_RELEASED \(relID): \(error)") }
    }

    // MARK: - GuestInterruptSink

    public func channelInterrupt(relID: UInt32) {
        guard let channel = channels.withLock({ $0[relID] }) else { return }
        serve(channel)
    }

    /// One budget of `channel`'s drain; the rest goes to the poll thread.
    func serve(_ channel: GuestChannel) {
        switch channel.service(budget: Self.drainBudget) {
        case .idle:
            break
        case .more:
            guard !channel.backlogged.exchange(true, ordering: .sequentiallyConsistent) else { return }
            let queued = backlog.update { b -> Bool in
                guard !b.stopping else { return false }
                b.queue.append(channel)
                return true
            }
            if !queued { channel.backlogged.store(false, ordering: .sequentiallyConsistent) }
        case .failed(let error):
            channelBroke(channel, error)
        }
    }

    /// The host broke `channel`'s ring: from now on nothing of ours touches it (no drains, no sends), its
    /// requests fail, and the work thread tells the driver and closes it with the host, as a driver's close
    /// would (CLOSECHANNEL, then the ring GPADL torn down, each wait bounded).
    func channelBroke(_ channel: GuestChannel, _ error: ChannelError) {
        logger.error("channel \(channel.relID): \(error); closing it")
        channel.markClosed()
        channel.fail(.channel(error))
        if !work.push(.channelBroken(channel, .channel(error))) {
            // Disconnecting already: unbinding closes the channel.
            logger.warning("channel \(channel.relID): bus work queue closed")
        }
    }

    public func channelMessage(_ bytes: [UInt8]) {
        let message: ChannelMessage
        do {
            message = try ChannelMessage.parse(bytes)
        } catch {
            reject("\(error)")
            return
        }
        guard message.type.direction == .hostToGuest else {
            reject("\(message.type) sent by the host")
            return
        }
        // Before a version is agreed only VERSION_RESPONSE means anything; afterwards a message must exist in
        // the negotiated version.
        if message.type != .versionResponse {
            guard let v = version else {
                reject("\(message.type) before the version was negotiated")
                return
            }
            guard v.rawValue >= message.type.minimumVersion.rawValue else {
                reject("\(message.type) is not part of VMBus \(v)")
                return
            }
        }
        switch message {
        case .versionResponse(let m):
            responses.update { $0.versionResponse = m }
        case .offerChannel(let m):
            guard GuestBus.validRelIDs.contains(m.childRelID) else {
                reject("offer with relid \(m.childRelID) outside 1...2047")
                return
            }
            // A relid offered again (after RELID_RELEASED) is a new channel.
            responses.withLock { _ = $0.rescinded.remove(m.childRelID) }
            if !work.push(.offer(m)) { reject("offer queue full") }
        case .allOffersDelivered:
            responses.update { $0.allOffersDelivered = true }
        case .rescindChannelOffer(let m):
            guard GuestBus.validRelIDs.contains(m.childRelID) else {
                reject("RESCIND for relid \(m.childRelID) outside 1...2047")
                return
            }
            // Wake everything waiting on this channel now; the driver's remove runs on the work thread.
            if let channel = channels.withLock({ $0[m.childRelID] }) { channel.markRescinded() }
            responses.update { _ = $0.rescinded.insert(m.childRelID) }
            if !work.push(.rescind(m.childRelID)) { reject("rescind queue full") }
        case .openChannelResult(let m):
            // Matched on relid and openid (we send openid = relid), as Linux does.
            let expected = responses.update { r -> Bool in
                guard r.awaitedOpens.contains(m.childRelID), m.openID == m.childRelID else { return false }
                r.openResults[m.childRelID] = m
                return true
            }
            if !expected { reject("unsolicited OPENCHANNEL_RESULT for relid \(m.childRelID)") }
        case .gpadlCreated(let m):
            // Matched on (relid, handle).
            let expected = responses.update { r -> Bool in
                guard r.awaitedGPADLs[m.gpadl] == m.childRelID else { return false }
                r.gpadlCreated[m.gpadl] = m
                return true
            }
            if !expected { reject("unsolicited GPADL_CREATED for 0x\(String(m.gpadl, radix: 16)) relid \(m.childRelID)") }
        case .gpadlTorndown(let m):
            let expected = responses.update { r -> Bool in
                guard r.awaitedTeardowns.contains(m.gpadl) else { return false }
                r.gpadlTorndown.insert(m.gpadl)
                return true
            }
            if !expected { reject("unsolicited GPADL_TORNDOWN for 0x\(String(m.gpadl, radix: 16))") }
        case .unloadResponse:
            responses.update { $0.unloadResponse = true }
        case .modifyChannelResponse(let m):
            // The bus never sends MODIFYCHANNEL, so no answer is awaited: keeping one would only let a host
            // fill a table.
            reject("unsolicited MODIFYCHANNEL_RESPONSE for relid \(m.childRelID)")
        case .tlConnectResult:
            break  // Linux ignores it too
        default:
            reject("unexpected \(message.type)")
        }
    }

    public func hostLost() {
        logger.error("the host is gone; failing outstanding requests")
        responses.update { $0.hostLost = true }
        for channel in channels.withLock({ Array($0.values) }) {
            channel.markClosed()
            channel.fail(.hostLost)
        }
    }

    /// Relids the guest accepts (the SINT2 event-flag bitmap has 2048 bits; 0 is reserved).
    public static let validRelIDs: ClosedRange<UInt32> = 1...2047
}

