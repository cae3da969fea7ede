import Logging
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport

/// The host runtime for one guest partition: feeds guest messages to the ``Server`` state machine, performs
/// its actions (post messages, map rings, start and stop channel workers) and routes channels to device
/// providers.
///
/// Threads: guest messages arrive on the partition's control thread; each open channel has a worker thread
/// that calls its provider; device requests (sub-channels, rescind) may come from any thread. The server
/// state is guarded by one lock, and provider callbacks that may call back in are made outside it.
public final class VMBusHost: HostMessageSink, @unchecked Sendable {
    public let port: any HostPartitionPort
    public let logger: Logger

    struct Device {
        var provider: any VMBusDeviceProvider
        var offer: HostDeviceOffer
        var relIDs: [UInt32]  // primary first, then sub-channels in index order
        var rescinded = false
    }

    struct OpenChannel {
        var channel: HostChannel
        var worker: ChannelWorker
    }

    struct State {
        var server: Server
        var devices: [Device] = []
        /// relid → (device index, sub-channel index)
        var owners: [UInt32: (Int, UInt16)] = [:]
        var open: [UInt32: OpenChannel] = [:]
        var droppedMessages = 0
        var channelFailures = 0
        var lastChannelFailure: String?
        var workersNotJoined = 0
    }

    /// What one ``process(_:)`` call still has to do outside the lock, in order: open channels (provider
    /// callbacks), join the workers it stopped, then post the messages that had to wait for those joins.
    private struct Pending {
        var opens: [(UInt32, [GPARange], UInt32, [UInt8])] = []
        var stopping: [(UInt32, ChannelWorker)] = []
        var held: [ChannelMessage] = []
    }

    private let state: Condition<State>

    /// Longest ``process(_:)`` waits for a stopped worker before it answers anyway. Workers stop between two
    /// packets whatever the guest does, so only a device handler that does not return can use it up; that is
    /// logged and counted (``workersNotJoined``).
    public static let workerJoinTimeoutNanoseconds: UInt64 = 10_000_000_000

    public init(port: any HostPartitionPort, configuration: Server.Configuration,
                logger: Logger = Logger(label: "vmbus.host")) {
        self.port = port
        self.logger = logger
        var configuration = configuration
        // Pages the port reserved in guest memory (its event-flags page) are never part of a GPADL.
        for pfn in port.memory.reservedPFNs where !configuration.reservedPFNs.contains(pfn) {
            configuration.reservedPFNs.append(pfn)
        }
        self.state = Condition(State(server: Server(configuration: configuration)))
    }

    /// Channels the host rescinded because the guest broke them (a corrupt ring either way, or a packet over
    /// the device's maximum packet size), and why the last one was.
    public var channelFailures: Int { state.withLock { $0.channelFailures } }
    public var lastChannelFailure: String? { state.withLock { $0.lastChannelFailure } }
    /// Messages the port refused (guest queue full or guest gone).
    public var droppedMessages: Int { state.withLock { $0.droppedMessages } }
    /// Stopped workers that did not exit within ``workerJoinTimeoutNanoseconds``.
    public var workersNotJoined: Int { state.withLock { $0.workersNotJoined } }

    /// Starts serving the partition.
    public func start() { port.start(self) }

    /// Stops serving: every channel is closed and the control thread ends.
    public func stop() {
        process { $0.server.guestDisconnected() }
        port.stop()
    }

    /// Adds a device; its primary channel is offered (at once if the guest already asked for offers).
    @discardableResult
    public func addDevice(_ provider: any VMBusDeviceProvider) -> HostDeviceHandle? {
        let offer = provider.offer
        var handle: HostDeviceHandle?
        process { s -> [ServerAction] in
            guard let (relID, actions) = s.server.addOffer(offer, subchannelIndex: 0) else { return [] }
            let index = s.devices.count
            s.devices.append(Device(provider: provider, offer: offer, relIDs: [relID]))
            s.owners[relID] = (index, 0)
            // The provider has its handle before the offer is posted: a guest that opens the channel at once
            // must not reach a provider that cannot yet look up its GPADLs (a hot-added NIC refused its receive
            // buffer that way).
            let h = HostDeviceHandle(host: self, deviceIndex: index)
            provider.attached(h)
            handle = h
            return actions
        }
        guard let handle else {
            logger.error("no relid left for device \(offer.instanceID)")
            return nil
        }
        return handle
    }

    func offerSubchannels(deviceIndex: Int, count: Int) -> Int {
        var offered = 0
        process { s -> [ServerAction] in
            guard deviceIndex < s.devices.count, !s.devices[deviceIndex].rescinded else { return [] }
            var actions: [ServerAction] = []
            let device = s.devices[deviceIndex]
            let existing = device.relIDs.count - 1
            let allowed = max(0, min(count, device.offer.maxSubchannels - existing))
            for i in 0..<allowed {
                let index = UInt16(existing + i + 1)
                guard let (relID, a) = s.server.addOffer(device.offer, subchannelIndex: index) else { break }
                s.devices[deviceIndex].relIDs.append(relID)
                s.owners[relID] = (deviceIndex, index)
                actions += a
                offered += 1
            }
            return actions
        }
        return offered
    }

    func rescindDevice(deviceIndex: Int) {
        process { s -> [ServerAction] in
            guard deviceIndex < s.devices.count, !s.devices[deviceIndex].rescinded else { return [] }
            s.devices[deviceIndex].rescinded = true
            var actions: [ServerAction] = []
            // Sub-channels go first, then the primary, as Hyper-V removes them.
            for relID in s.devices[deviceIndex].relIDs.reversed() {
                actions += s.server.rescind(relID: relID)
            }
            return actions
        }
    }

    /// A snapshot of the server state (tests, `vmbus list`).
    public var server: Server { state.withLock { $0.server } }

    /// A complete GPADL of channel `relID` that no teardown was asked for (see ``HostDeviceHandle/gpadlRanges``).
    func gpadlRanges(_ handle: UInt32, relID: UInt32) -> [GPARange]? {
        state.withLock { s -> [GPARange]? in
            guard let g = s.server.gpadls[handle], g.relID == relID, !g.teardownPending,
                  case .ready(let ranges) = g.state else { return nil }
            return ranges
        }
    }

    /// Open channels, for status lines.
    public var openChannels: [HostChannel] { state.withLock { s in s.open.keys.sorted().compactMap { s.open[$0]?.channel } } }

    // MARK: - HostMessageSink

    public func guestMessage(connectionID: UInt32, _ bytes: [UInt8]) {
        process { $0.server.handle(bytes) }
    }

    public func guestDisconnected() {
        logger.info("guest disconnected; releasing its channels and GPADLs")
        process { $0.server.guestDisconnected() }
    }

    // MARK: - Performing actions

    /// Runs `body` under the lock, then performs the actions it returned, in order, with one rule on top:
    /// a message that follows the stop of a channel is posted only once that channel's worker has exited.
    /// UNLOAD_RESPONSE, VERSION_RESPONSE on a reconnect, RESCIND and a deferred GPADL_TORNDOWN all announce
    /// that the host is done with guest memory, so no worker may touch it after the guest reads them.
    ///
    /// Opening a channel calls the provider outside the lock and feeds the outcome back to the server;
    /// workers are joined outside the lock (their exit calls the provider, which may call back in), before
    /// this returns.
    func process(_ body: (inout State) -> [ServerAction]) {
        var pending = Pending()
        state.withLock { s in perform(body(&s), in: &s, pending: &pending) }
        while true {
            if !pending.stopping.isEmpty {
                let stopping = pending.stopping
                pending.stopping = []
                // A device handler that stopped its own channel (a rescind from packetReceived) runs on the
                // worker: the messages wait for the end of that worker's loop instead of a join.
                var ownWorker: ChannelWorker?
                for (relID, worker) in stopping {
                    if worker.isCurrentThread { ownWorker = worker; continue }
                    guard !worker.join(timeoutNanoseconds: Self.workerJoinTimeoutNanoseconds) else { continue }
                    logger.error("channel \(relID): worker still running \(Self.workerJoinTimeoutNanoseconds / 1_000_000_000) s after stop")
                    state.withLock { $0.workersNotJoined += 1 }
                }
                let held = pending.held
                pending.held = []
                if let ownWorker {
                    ownWorker.whenFinished { [self] in state.withLock { s in for m in held { post(m, in: &s) } } }
                } else {
                    state.withLock { s in for m in held { post(m, in: &s) } }
                }
                continue
            }
            guard !pending.opens.isEmpty else { return }
            let (relID, ranges, downstream, userData) = pending.opens.removeFirst()
            let status = openChannel(relID: relID, ranges: ranges, downstream: downstream, userData: userData)
            state.withLock { s in
                perform(s.server.channelOpenCompleted(relID: relID, status: status), in: &s, pending: &pending)
            }
        }
    }

    private func post(_ message: ChannelMessage, in s: inout State) {
        if !port.postMessage(message.bytes) {
            s.droppedMessages += 1
            logger.warning("guest message queue full; dropped \(message.type)")
        }
    }

    private func perform(_ actions: [ServerAction], in s: inout State, pending: inout Pending) {
        for action in actions {
            switch action {
            case .send(let message):
                if pending.stopping.isEmpty && pending.held.isEmpty {
                    post(message, in: &s)
                } else {
                    pending.held.append(message)
                }
            case .openChannel(let relID, let ranges, let downstream, _, let userData):
                pending.opens.append((relID, ranges, downstream, userData))
            case .closeChannel(let relID):
                if let c = s.open.removeValue(forKey: relID) {
                    c.worker.stop()
                    pending.stopping.append((relID, c.worker))
                }
            case .releaseChannel(let relID):
                port.removeDoorbell(connectionID: Server.connectionIDBase + relID)
                if let (device, _) = s.owners.removeValue(forKey: relID) {
                    s.devices[device].relIDs.removeAll { $0 == relID }
                }
            case .connectionReset:
                break
            }
        }
    }

    /// The worker of `relID` ended on a guest fault: log, count, and rescind the channel so the guest learns
    /// of it (unless the channel was closed meanwhile, or reopened with another endpoint).
    private func channelFailed(relID: UInt32, endpoint: ChannelEndpoint, error: ChannelError) {
        process { s -> [ServerAction] in
            guard let c = s.open[relID], c.channel.endpoint === endpoint else { return [] }
            s.channelFailures += 1
            s.lastChannelFailure = "channel \(relID): \(error)"
            logger.error("channel \(relID): \(error); rescinding it")
            return s.server.channelFailed(relID: relID)
        }
    }

    /// Maps the rings of a channel the guest opened and starts its worker. Returns the OPENCHANNEL_RESULT
    /// status.
    private func openChannel(relID: UInt32, ranges: [GPARange], downstream: UInt32, userData: [UInt8]) -> UInt32 {
        guard let (device, subIndex) = state.withLock({ s in s.owners[relID].map { ($0.0, $0.1) } }) else {
            return Server.statusFailure
        }
        let (provider, offer) = state.withLock { s in (s.devices[device].provider, s.devices[device].offer) }
        let pfns = ranges[0].pfns
        let d = Int(downstream)
        let endpoint: ChannelEndpoint
        do {
            // The guest→host ring comes first in the GPADL; the host reads it.
            let incoming = IncomingRing(memory: try port.memory.ringMemory(pfns: pfns[0..<d]))
            let outgoing = OutgoingRing(memory: try port.memory.ringMemory(pfns: pfns[d...]))
            let port = self.port
            // The packet buffer is the device's maximum packet, never the ring: a ring of aliased pages costs
            // the guest one page and would cost us its whole size.
            endpoint = ChannelEndpoint(outgoing: outgoing, incoming: incoming, maxPacketSize: offer.maxPacketSize,
                                       signalPeer: { port.interruptGuest(relID: relID) })
        } catch {
            logger.warning("channel \(relID): cannot map rings: \(error)")
            return Server.statusFailure
        }
        // The doorbell first: a channel the guest cannot signal is a failed open, never a half-open channel
        // (over the socket the port has then disconnected the guest already).
        let doorbell: Doorbell
        do {
            doorbell = try port.openDoorbell(connectionID: Server.connectionIDBase + relID)
        } catch {
            logger.warning("channel \(relID): no doorbell: \(error)")
            return Server.statusFailure
        }
        let channel = HostChannel(relID: relID, subchannelIndex: subIndex, offer: offer, userData: userData,
                                  memory: port.memory, endpoint: endpoint)
        do {
            try provider.channelOpened(channel)
        } catch {
            logger.info("channel \(relID): device refused the open: \(error)")
            return Server.statusFailure
        }
        let logger = self.logger
        let worker = ChannelWorker(
            endpoint: endpoint, doorbell: doorbell,
            name: "vmbus-ch\(relID)",
            handler: { packet, buffer in provider.packetReceived(packet, buffer: buffer, on: channel) },
            onExit: { [weak self] error in
                // Past the last ring access: the loop has ended and the endpoint is closed.
                if let error {
                    if let self { self.channelFailed(relID: relID, endpoint: endpoint, error: error) }
                    else { logger.warning("channel \(relID) stopped: \(error)") }
                }
                provider.channelClosed(channel)
            })
        state.withLock { $0.open[relID] = OpenChannel(channel: channel, worker: worker) }
        do {
            try worker.start()
        } catch {
            // Out of threads: this open fails, the partition and the host go on.
            state.withLock { _ = $0.open.removeValue(forKey: relID) }
            logger.warning("channel \(relID): cannot start its worker: \(error)")
            provider.channelClosed(channel)
            return Server.statusFailure
        }
        return 0
    }
}
