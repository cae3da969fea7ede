import Atomics
import Logging
import VMBusGuest
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusSCSI
import VMBusStorageProtocol
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

/// The guest's storage client for one SCSI controller or IDE disk (Linux's `storvsc_drv.c` for one
/// `hv_device`): the initialization, the channels, a pool of requests with bounce pages in guest memory, and
/// LUN discovery. ``StorVSCDisk`` is the disk API on top.
///
/// Threads: a caller's thread takes a request slot, fills its bounce pages, sends, and sleeps on the slot; the
/// bus's interrupt thread parses the completion and wakes it. No heap allocation on that path. Rescans (after
/// ENUMERATE_BUS or REMOVE_DEVICE from the host) run on the controller's own rescan thread, never on the
/// interrupt thread, because they send requests and wait for them.
public final class StorVSCController: GuestChannelHandler, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Protocol versions to offer, in order (Linux: 6.2, 6.0, 5.1).
        public var versions: [StorageProtocolVersion] = StorageProtocolVersion.linuxTryOrder
        /// Sub-channels to ask for (Linux: one per CPU beyond the first), capped at the host's maximum.
        public var subchannels: Int = max(0, activeProcessorCount() - 1)
        /// Requests outstanding per channel at most.
        public var queueDepthPerChannel: Int = 32
        /// Largest transfer per request; the host's `max_transfer_bytes` lowers it.
        public var maxTransferBytes: Int = 1 << 20
        /// Each ring, control page included (Linux: 128 KiB).
        public var ringSize: Int = StorageLimits.linuxRingSize
        /// Per request, from send to completion.
        public var requestTimeoutNanoseconds: UInt64 = 30_000_000_000
        /// Per initialization step (Linux waits 180 s; a host that answers nothing is found sooner here).
        public var controlTimeoutNanoseconds: UInt64 = 10_000_000_000
        /// Attempts for BUSY and UNIT ATTENTION before ``StorVSCError/busy``.
        public var retries: Int = 6
        public init() {}
    }

    public let device: GuestDevice
    public let kind: StorageControllerKind
    public let configuration: Configuration
    let logger: Logger
    /// Set by ``start()`` before any request is made; read-only after.
    public private(set) var version: StorageProtocolVersion?
    public private(set) var hostProperties: StorageChannelProperties?
    public private(set) var maxTransferBytes = 0
    /// The IDE disk's target id (from the instance GUID, as Linux reads it); 0 on SCSI.
    public let ideTarget: UInt8

    private let channels = Condition<[GuestChannel]>([])
    private var slots: [RequestSlot] = []
    private let freeSlots = Condition<[Int]>([])
    private let gone = Condition<String?>(nil)
    private let diskTable = Condition<[UInt8: StorVSCDisk]>([:])
    private let rescanState = Condition<(requested: Bool, stopped: Bool)>((false, false))
    private let rescanDone = Latch()
    private let subchannelsSettled = Latch()
    private let observers = Condition<[@Sendable (_ added: [StorVSCDisk], _ removed: [StorVSCDisk]) -> Void]>([])
    private var bouncePages: [UInt64] = []
    private var rescanStarted = false

    public let unsolicitedPackets = ManagedAtomic<UInt64>(0)
    public let malformedCompletions = ManagedAtomic<UInt64>(0)
    public let requestsSent = ManagedAtomic<UInt64>(0)
    public let bytesRead = ManagedAtomic<UInt64>(0)
    public let bytesWritten = ManagedAtomic<UInt64>(0)

    public init(device: GuestDevice, configuration: Configuration = Configuration(), logger: Logger? = nil) throws(StorVSCError) {
        guard let kind = StorageControllerKind(classID: device.classID) else {
            throw .invalidArgument("device \(device.instanceID) is not a SCSI or IDE controller")
        }
        self.device = device
        self.kind = kind
        self.configuration = configuration
        self.logger = logger ?? Logger(label: "vmbus.storvsc")
        ideTarget = kind == .ide ? UInt8(truncatingIfNeeded: IDELocation.targetID(fromInstance: device.instanceID)) : 0
    }

    public var channelCount: Int { channels.withLock { $0.count } }
    public var disks: [StorVSCDisk] { diskTable.withLock { t in t.keys.sorted().compactMap { t[$0] } } }
    public func disk(lun: UInt8) -> StorVSCDisk? { diskTable.withLock { $0[lun] } }
    public var isGone: Bool { gone.withLock { $0 != nil } }
    /// Slots reserved by requests that timed out and whose completion has not come.
    public var abandonedRequests: Int { slots.reduce(0) { $0 + ($1.state.withLock { $0.phase == .abandoned } ? 1 : 0) } }

    /// Calls `body` (on the rescan thread) whenever disks appear or go.
    public func observe(_ body: @escaping @Sendable (_ added: [StorVSCDisk], _ removed: [StorVSCDisk]) -> Void) {
        observers.withLock { $0.append(body) }
    }

    // MARK: Start and stop

    /// Opens the primary channel, runs the initialization, opens the sub-channels, reserves the request pool
    /// and discovers the LUNs.
    public func start() throws(StorVSCError) {
        let primary: GuestChannel
        do { primary = try open(nil) } catch { throw .channel(error) }
        channels.withLock { $0 = [primary] }
        let subchannels: Int
        do {
            try initialize(primary)
            subchannels = try requestSubchannels(primary)
            try reservePool(channels: 1 + subchannels)
        } catch {
            stop()
            throw error
        }
        // The sub-channel offers arrive on the bus's work thread, which runs this probe: they are waited for
        // and opened on the controller's own thread, as Linux opens them from its offer callback.
        guard startThread(name: "storvsc", { [self] in
            openSubchannels(subchannels)
            rescanLoop()
        }) else {
            stop()
            throw .negotiation("cannot start the controller thread")
        }
        rescanStarted = true
        do { try scan() } catch {
            stop()
            throw error
        }
    }

    /// Opens the primary channel (`offer` nil) or a sub-channel as Linux's storvsc does: its ring size, 24 zero
    /// bytes of user data, and room in the request table for every slot.
    private func open(_ offer: OfferChannel?) throws(GuestError) -> GuestChannel {
        // Host packets are at most a VSTOR packet behind its descriptor (80 bytes); leave room for a careless host.
        try device.open(offer, outgoingRingSize: configuration.ringSize, incomingRingSize: configuration.ringSize,
                        maxPacketSize: 512, requestSlots: requestSlotsPerChannel,
                        userData: [UInt8](repeating: 0, count: StorageLimits.openUserDataLength), handler: self)
    }

    /// Waits until the sub-channels asked for are open (or given up on); returns the channel count.
    @discardableResult
    public func waitForSubchannels(timeoutNanoseconds: UInt64 = 30_000_000_000) -> Int {
        _ = subchannelsSettled.wait(timeoutNanoseconds: timeoutNanoseconds)
        return channelCount
    }

    /// Closes every channel (sub-channels first), fails what is outstanding, stops the rescan thread and gives
    /// the bounce pages back (unless a request is still owned by the host).
    public func stop() {
        gone.withLock { if $0 == nil { $0 = "stopped" } }
        let stopped = rescanState.update { s -> Bool in
            defer { s.stopped = true }
            return s.stopped
        }
        let open = channels.withLock { c -> [GuestChannel] in defer { c.removeAll() }; return c }
        for c in open.reversed() { c.close() }
        freeSlots.update { _ in }  // wake slot waiters so they see `gone`
        if !stopped && rescanStarted { _ = rescanDone.wait(timeoutNanoseconds: 30_000_000_000) }
        let removed = diskTable.update { t -> [StorVSCDisk] in defer { t.removeAll() }; return Array(t.values) }
        for d in removed { d.markRemoved() }
        let busy = slots.contains { $0.state.withLock { $0.phase != .idle } }
        if !bouncePages.isEmpty, let allocator = device.pageAllocator {
            if busy { logger.warning("storvsc \(device.instanceID): leaking bounce pages of requests the host still owns") }
            else { allocator.release(bouncePages) }
            bouncePages = []
        }
    }

    // MARK: Initialization

    private func control(_ channel: GuestChannel, _ packet: VStorPacket, _ what: String) throws(StorVSCError) -> VStorPacket {
        let reply: [UInt8]
        do { reply = try channel.request(packet.wireBytes, timeoutNanoseconds: configuration.controlTimeoutNanoseconds) }
        catch {
            if case .timedOut = error { throw .timedOut("\(what): no answer from the host") }
            throw .channel(error)
        }
        guard reply.count >= SRBCompletion.minimumLength else {
            throw .malformedCompletion("\(what): a completion of \(reply.count) bytes")
        }
        guard let p = try? VStorPacket(wireBytes: reply) else { throw .malformedCompletion(what) }
        guard p.operation == .completeIO else { throw .malformedCompletion("\(what) answered with \(p.operation)") }
        return p
    }

    private func step(_ channel: GuestChannel, _ op: VStorOperation) throws(StorVSCError) -> VStorPacket {
        let p = try control(channel, VStorPacket(operation: op), "\(op)")
        guard p.status.isSuccess else { throw .negotiation("\(op) refused with status \(p.status)") }
        return p
    }

    private func initialize(_ channel: GuestChannel) throws(StorVSCError) {
        _ = try step(channel, .beginInitialization)
        var agreed: StorageProtocolVersion?
        for v in configuration.versions {
            var q = VStorPacket(operation: .queryProtocolVersion)
            q.version = StorageVersionBody(v)
            if try control(channel, q, "QUERY_PROTOCOL_VERSION \(v)").status.isSuccess { agreed = v; break }
        }
        guard let agreed else {
            throw .negotiation("the host accepted none of the versions \(configuration.versions.map(\.description).joined(separator: ", "))")
        }
        version = agreed
        let props = try step(channel, .queryProperties).properties
        hostProperties = props
        // Linux rounds the host's limit down to whole pages.
        let hostMax = Int(props.maxTransferBytes) / GuestMemory.pageSize * GuestMemory.pageSize
        guard hostMax >= GuestMemory.pageSize else {
            throw .negotiation("the host's maximum transfer is \(props.maxTransferBytes) bytes")
        }
        maxTransferBytes = min(hostMax, max(GuestMemory.pageSize, configuration.maxTransferBytes / GuestMemory.pageSize * GuestMemory.pageSize))
        _ = try step(channel, .endInitialization)
    }

    /// CREATE_SUB_CHANNELS for as many as we want and the host allows; returns how many it will offer.
    private func requestSubchannels(_ primary: GuestChannel) throws(StorVSCError) -> Int {
        guard kind == .scsi, let version, version.supportsMultiChannel, let props = hostProperties,
              props.supportsMultiChannel, props.maxChannelCount > 0, configuration.subchannels > 0 else { return 0 }
        let n = min(configuration.subchannels, Int(props.maxChannelCount), StorageControllerKind.scsi.maxChannels - 1)
        var request = VStorPacket(operation: .createSubChannels)
        request.subChannelCount = UInt16(n)
        let reply = try control(primary, request, "CREATE_SUB_CHANNELS")
        guard reply.status.isSuccess else {
            // Linux carries on with the primary alone.
            logger.warning("the host refused \(n) sub-channels (status \(reply.status)); using the primary only")
            return 0
        }
        return n
    }

    /// Opens the `count` sub-channels the host offers; I/O spreads over them as they open.
    private func openSubchannels(_ count: Int) {
        defer { subchannelsSettled.open() }
        guard count > 0 else { return }
        let offers: [OfferChannel]
        do { offers = try device.waitForSubchannels(count, timeoutNanoseconds: configuration.controlTimeoutNanoseconds) }
        catch {
            logger.warning("storvsc \(device.instanceID): \(error); using \(channelCount) channel(s)")
            return
        }
        for offer in offers where !isGone {
            do {
                let c = try open(offer)
                let kept = channels.withLock { c2 -> Bool in
                    guard !isGone else { return false }
                    c2.append(c)
                    return true
                }
                if !kept { c.close() }
            } catch {
                logger.warning("storvsc \(device.instanceID): sub-channel \(offer.subchannelIndex): \(error)")
            }
        }
    }

    /// Any slot may be sent on any channel (the spread changes as sub-channels open), so each channel's
    /// request table holds them all, plus the control requests.
    private var requestSlotsPerChannel: Int {
        configuration.queueDepthPerChannel * StorageControllerKind.scsi.maxChannels + 4
    }

    private func reservePool(channels: Int) throws(StorVSCError) {
        guard let allocator = device.pageAllocator else { throw .controllerGone("the bus is gone") }
        let perSlot = maxTransferBytes / GuestMemory.pageSize
        // At most a quarter of guest memory goes to bounce pages, whatever the CPU count asks for.
        let affordable = allocator.memory.size / 4 / maxTransferBytes
        let count = max(channels, min(max(1, configuration.queueDepthPerChannel) * channels, affordable))
        do {
            let all = try allocator.allocate(pages: perSlot * count)
            bouncePages = all
            for i in 0..<count {
                slots.append(try RequestSlot(index: i, pages: Array(all[(i * perSlot)..<((i + 1) * perSlot)]), memory: allocator.memory))
            }
        } catch {
            throw .invalidArgument("guest memory for \(count) requests of \(maxTransferBytes) bytes: \(error)")
        }
        freeSlots.withLock { $0 = Array((0..<count).reversed()) }
    }

    // MARK: Executing SRBs

    /// Runs one SCSI command on `lun`: takes a request slot, lets `prepare` fill the bounce pages (data out),
    /// sends EXECUTE_SRB (GPA-direct when data moves), waits for the completion and lets `finish` copy data in
    /// from the bounce pages on success. No retries: see ``StorVSCDisk``.
    ///
    /// `cdb` holds `cdbLength` bytes; `length` is the data transfer length (≤ ``maxTransferBytes``). With
    /// `lending`, the data moves through that buffer from byte `lentOffset` instead of the bounce pages
    /// (checked by the caller to hold `length` bytes there).
    func execute(lun: UInt8, cdb: InlineArray<16, UInt8>, cdbLength: Int, direction: VMSCSIRequest.DataDirection,
                 length: Int, lending: StorVSCBuffer? = nil, lentOffset: Int = 0, prepare: (RequestSlot) -> Void = { _ in },
                 finish: (RequestSlot, SRBCompletion) -> Void = { _, _ in }) throws(StorVSCError) -> SRBCompletion {
        let deadline = monotonicNanoseconds() &+ configuration.requestTimeoutNanoseconds
        let index = try takeSlot(length: length, cdbLength: cdbLength, direction: direction)
        let slot = slots[index]
        var release = true
        defer { if release { freeSlots.update { $0.append(index) } } }
        prepare(slot)
        try send(slot, lun: lun, cdb: cdb, cdbLength: cdbLength, direction: direction, length: length, async: nil,
                 lent: lending, lentOffset: lentOffset)
        requestsSent.wrappingIncrement(ordering: .relaxed)
        // Everything is decided under the slot's lock, so the slot cannot change hands meanwhile.
        // Returns the outcome and whether the slot is ours to give back (the host is done with it).
        func take(_ s: inout RequestSlot.State) -> (Result<SRBCompletion, StorVSCError>, Bool)? {
            let free: Bool
            switch s.phase {
            case .completed:
                s.phase = .idle
                s.lent = nil
                free = true
            case .failedEarly:
                s.phase = .abandoned  // the host still owns the pages
                free = false
            default:
                return nil
            }
            defer { s.outcome = nil }
            return (s.outcome ?? .failure(.controllerGone("no outcome")), free)
        }
        let now = monotonicNanoseconds()
        var taken = slot.state.wait(timeoutNanoseconds: deadline > now ? deadline - now : 0) { take(&$0) }
        if taken == nil {
            taken = slot.state.withLock { s in
                if let r = take(&s) { return r }
                s.phase = .abandoned
                return (.failure(.timedOut("LUN \(lun): no completion within \(configuration.requestTimeoutNanoseconds / 1_000_000) ms")), false)
            }
        }
        release = taken?.1 ?? false
        let result = taken?.0
        switch result {
        case .success(let completion)?:
            if completion.srbStatus == .success { finish(slot, completion) }
            return completion
        case .failure(let e)?:
            throw e
        case nil:
            throw .controllerGone("no outcome")
        }
    }

    /// A free slot for a request of this shape, waiting up to the request timeout for one.
    private func takeSlot(length: Int, cdbLength: Int, direction: VMSCSIRequest.DataDirection) throws(StorVSCError) -> Int {
        guard length >= 0, length <= maxTransferBytes, cdbLength >= 1, cdbLength <= 16,
              (length == 0) == (direction == .none) else {
            throw .invalidArgument("an SRB of \(length) bytes, \(direction), CDB \(cdbLength) bytes")
        }
        if let why = gone.withLock({ $0 }) { throw .controllerGone(why) }
        guard let index = freeSlots.wait(timeoutNanoseconds: configuration.requestTimeoutNanoseconds, until: { f in
            f.popLast() ?? (gone.withLock({ $0 }) != nil ? -1 : nil)
        }) else {
            throw .timedOut("no request slot came free: the host holds every one")
        }
        guard index >= 0 else { throw .controllerGone(gone.withLock { $0 } ?? "stopped") }
        return index
    }

    /// Encodes the SRB into `slot`'s buffers and sends it on the slot's channel. On failure the slot is idle
    /// again and still the caller's.
    private func send(_ slot: RequestSlot, lun: UInt8, cdb: InlineArray<16, UInt8>, cdbLength: Int,
                      direction: VMSCSIRequest.DataDirection, length: Int, async: AsyncRequest?,
                      lent: StorVSCBuffer? = nil, lentOffset: Int = 0) throws(StorVSCError) {
        let index = slot.index
        var srb = VMSCSIRequest()
        srb.lun = lun
        srb.targetID = ideTarget
        srb.cdbLength = UInt8(cdbLength)
        for i in 0..<16 { srb.dataArea[i] = i < cdbLength ? cdb[i] : 0 }
        srb.senseInfoLength = UInt8(VMSCSIRequest.senseBufferSize)
        srb.dataIn = direction.rawValue
        srb.dataTransferLength = UInt32(length)
        srb.srbFlags = VMSCSIRequest.flagDisableSynchTransfer
            | (direction == .read ? VMSCSIRequest.flagDataIn : direction == .write ? VMSCSIRequest.flagDataOut : 0)
        srb.queueTag = VMSCSIRequest.untagged
        srb.queueAction = VMSCSIRequest.simpleTagRequest
        srb.timeOutValue = UInt32(min(configuration.requestTimeoutNanoseconds / 1_000_000_000, UInt64(UInt32.max)))
        slot.packet.reset()
        VStorPacket(operation: .executeSRB, srb: srb).encode(into: &slot.packet)
        slot.state.withLock { s in
            s.phase = .inFlight
            s.outcome = nil
            s.requestedLength = length
            s.lun = lun
            s.async = async
            s.lent = lent
        }
        let channel = channels.withLock { c -> GuestChannel? in c.isEmpty ? nil : c[index % c.count] }
        guard let channel else {
            slot.state.withLock { $0.phase = .idle; $0.async = nil; $0.lent = nil }
            throw .controllerGone(gone.withLock { $0 } ?? "no channel")
        }
        if let lent { slot.encodeRange(lent, offset: lentOffset, length: length) }
        else if length > 0 { slot.encodeRange(length: length) }
        let sent: GuestError? = slot.packet.bytes.withUnsafeBytes { p in
            do throws(GuestError) {
                if length > 0 {
                    try slot.rangeBlock.bytes.withUnsafeBytes { h in
                        Result { () throws(GuestError) in
                            _ = try channel.sendGPADirectRequest(rangeHeader: h, payload: p, context: UInt64(index))
                        }
                    }.get()
                } else {
                    _ = try channel.sendRequest(p, context: UInt64(index))
                }
                return nil
            } catch { return error }
        }
        if let error = sent {
            slot.state.withLock { $0.phase = .idle; $0.async = nil; $0.lent = nil }
            if case .rescinded = error { throw .controllerGone("channel \(channel.relID) was rescinded") }
            throw .channel(error)
        }
        requestsSent.wrappingIncrement(ordering: .relaxed)
    }

    // MARK: Requests that do not wait

    /// Sends one SRB without waiting for it: `handler` hears of it on the interrupt thread. A read's data is
    /// copied to `readInto` first (it must stay valid until then). No retries and no timeout: BUSY and UNIT
    /// ATTENTION come back as ``StorVSCError/busy``, for the caller to send again. Takes a slot like any
    /// request, waiting for one up to the request timeout.
    func submit(lun: UInt8, cdb: InlineArray<16, UInt8>, cdbLength: Int, direction: VMSCSIRequest.DataDirection,
                length: Int, writeFrom: UnsafeRawBufferPointer?, readInto: UnsafeMutableRawBufferPointer?,
                tag: UInt64, handler: any StorVSCRequestHandler) throws(StorVSCError) {
        let index = try takeSlot(length: length, cdbLength: cdbLength, direction: direction)
        let slot = slots[index]
        if let writeFrom { slot.copyIn(writeFrom, at: 0) }
        do {
            try send(slot, lun: lun, cdb: cdb, cdbLength: cdbLength, direction: direction, length: length,
                     async: AsyncRequest(handler: handler, tag: tag, readInto: readInto))
        } catch {
            freeSlots.update { $0.append(index) }
            throw error
        }
    }

    /// A buffer of `byteCount` bytes (rounded up to whole pages) in guest memory, for reads and writes that
    /// move data without a bounce copy (see ``StorVSCBuffer``).
    public func makeBuffer(byteCount: Int) throws(StorVSCError) -> StorVSCBuffer {
        guard byteCount > 0 else { throw .invalidArgument("a buffer of \(byteCount) bytes") }
        guard let allocator = device.pageAllocator else { throw .controllerGone("the bus is gone") }
        do { return try StorVSCBuffer(allocator: allocator, pageCount: (byteCount + GuestMemory.pageSize - 1) / GuestMemory.pageSize) }
        catch { throw .invalidArgument("guest memory for a buffer of \(byteCount) bytes: \(error)") }
    }

    /// Polling mode for a thread that keeps requests in flight (see ``StorVSCCompletionPoller``).
    public func beginPolling() -> StorVSCCompletionPoller {
        StorVSCCompletionPoller(channels: channels.withLock { $0 })
    }

    // MARK: GuestChannelHandler (the interrupt thread, or a poller)

    public func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        guard context < UInt64(slots.count) else { return }
        let slot = slots[Int(context)]
        let requested = slot.state.withLock { $0.requestedLength }
        let parsed: Result<SRBCompletion, StorVSCError> = buffer.withUnsafeBytes(of: packet) { raw in
            do throws(StorVSCError) {
                return .success(try SRBCompletion.parse(UnsafeRawBufferPointer(rebasing: raw[packet.payloadRange]),
                                                        requestedLength: requested))
            } catch { return .failure(error) }
        }
        if case .failure = parsed { malformedCompletions.wrappingIncrement(ordering: .relaxed) }
        settle(slot, parsed)
    }

    /// The host is done with `slot`'s request: wake its waiter, or, if it gave up, give the slot back; for a
    /// request that does not wait, tell its handler.
    private func settle(_ slot: RequestSlot, _ outcome: Result<SRBCompletion, StorVSCError>) {
        let finished: (AsyncRequest, UInt8, Int)? = slot.state.withLock { s in
            guard s.phase == .inFlight, let a = s.async else { return nil }
            s.async = nil
            return (a, s.lun, s.requestedLength)
        }
        if let (request, lun, length) = finished {
            let result: Result<Int, StorVSCError>
            switch outcome {
            case .success(let c):
                switch c.disposition(lun: lun) {
                case .success where c.transferred == length:
                    if let into = request.readInto { slot.copyOut(into, from: 0) }
                    result = .success(c.transferred)
                case .success: result = .failure(.shortTransfer(expected: length, transferred: c.transferred))
                case .retry: result = .failure(.busy)
                case .failure(let e):
                    if case .lunRemoved = e { requestRescan() }
                    result = .failure(e)
                }
            case .failure(let e):
                result = .failure(e)
            }
            slot.state.withLock { $0.phase = .idle; $0.lent = nil }
            freeSlots.update { $0.append(slot.index) }
            request.handler.requestFinished(tag: request.tag, result: result)
            return
        }
        let recycle = slot.state.update { s -> Bool in
            switch s.phase {
            case .inFlight:
                s.outcome = outcome
                s.phase = .completed
                return false
            case .failedEarly:
                s.phase = .completed  // the waiter still gets the early failure, then frees the slot itself
                return false
            case .abandoned:
                s.phase = .idle
                s.outcome = nil
                s.lent = nil
                return true
            case .idle, .completed:
                return false
            }
        }
        if recycle { freeSlots.update { $0.append(slot.index) } }
    }

    public func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {
        let why: StorVSCError = {
            if case .rescinded = error { return .controllerGone("channel \(channel.relID) was rescinded") }
            return .controllerGone(error.description)
        }()
        for c in contexts where c < UInt64(slots.count) { settle(slots[Int(c)], .failure(why)) }
    }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        unsolicitedPackets.wrappingIncrement(ordering: .relaxed)
        var r = buffer.wireReader(for: packet)
        guard packet.descriptor.type == .dataInband, let p = try? VStorPacket(from: &r) else { return }
        switch p.operation {
        case .enumerateBus, .removeDevice:
            requestRescan()
        default:
            break  // EVENT_NOTIFICATION (FC) and anything else: nothing for a disk to do
        }
    }

    public func channelClosed(_ channel: GuestChannel, error: GuestError) {
        logger.error("storvsc \(device.instanceID): channel \(channel.relID) broken by the host: \(error)")
        if channel.subchannelIndex == 0 { gone.update { if $0 == nil { $0 = "the host broke the primary channel" } } }
        channels.withLock { $0.removeAll { $0 === channel } }
        freeSlots.update { _ in }  // wake slot waiters so they see `gone`
    }

    /// Marks in-flight requests to `lun` failed (hot remove): their callers return at once; the slots stay
    /// reserved until the host completes them.
    func failOutstanding(lun: UInt8) {
        for slot in slots {
            let async: AsyncRequest? = slot.state.update { s in
                guard s.phase == .inFlight, s.lun == lun else { return nil }
                if let a = s.async {
                    // Nobody waits on the slot: it stays the host's until the host answers.
                    s.async = nil
                    s.phase = .abandoned
                    return a
                }
                s.outcome = .failure(.lunRemoved(lun: lun))
                s.phase = .failedEarly
                return nil
            }
            async?.handler.requestFinished(tag: async?.tag ?? 0, result: .failure(.lunRemoved(lun: lun)))
        }
    }

    // MARK: Discovery

    public func requestRescan() {
        rescanState.update { $0.requested = true }
    }

    private func rescanLoop() {
        defer { rescanDone.open() }
        while true {
            let go = rescanState.wait { s -> Bool? in
                if s.stopped { return false }
                if s.requested { s.requested = false; return true }
                return nil
            }
            guard go == true else { return }
            do { try scan() } catch { logger.warning("storvsc \(device.instanceID): rescan failed: \(error)") }
        }
    }

    /// REPORT LUNS (SCSI) or the one IDE disk, then INQUIRY and READ CAPACITY for each new LUN; LUNs that
    /// vanished are removed and their I/O failed.
    func scan() throws(StorVSCError) {
        let present: [UInt8]
        if kind == .ide {
            present = [0]
        } else {
            var cdb = InlineArray<16, UInt8>(repeating: 0)
            cdb[0] = SCSIOpcode.REPORT_LUNS
            let allocation = 8 + 8 * 256
            cdb[6] = UInt8(allocation >> 24); cdb[7] = UInt8((allocation >> 16) & 0xFF)
            cdb[8] = UInt8((allocation >> 8) & 0xFF); cdb[9] = UInt8(allocation & 0xFF)
            present = try LUNIdentity.parseReportLUNs(try command(lun: 0, cdb, 12, dataIn: allocation))
        }
        let known = Set(diskTable.withLock { Array($0.keys) })
        var added: [StorVSCDisk] = []
        for lun in present where !known.contains(lun) {
            do {
                guard let identity = try identify(lun: lun) else { continue }
                let disk = StorVSCDisk(controller: self, identity: identity)
                diskTable.withLock { $0[lun] = disk }
                added.append(disk)
            } catch .lunRemoved {
                continue
            }
        }
        var removed: [StorVSCDisk] = []
        for lun in known.subtracting(present) {
            if let d = diskTable.withLock({ $0.removeValue(forKey: lun) }) { removed.append(d) }
        }
        for d in removed {
            d.markRemoved()
            failOutstanding(lun: d.lun)
        }
        if !added.isEmpty || !removed.isEmpty {
            for o in observers.withLock({ $0 }) { o(added, removed) }
        }
    }

    /// INQUIRY (standard, VPD 0x80 and 0xB0), READ CAPACITY(16) and MODE SENSE(6) for `lun`; nil if the LUN is
    /// not a disk.
    private func identify(lun: UInt8) throws(StorVSCError) -> LUNIdentity? {
        var cdb = InlineArray<16, UInt8>(repeating: 0)
        cdb[0] = SCSIOpcode.INQUIRY
        cdb[4] = 96
        guard let inquiry = try LUNIdentity.parseInquiry(try command(lun: lun, cdb, 6, dataIn: 96)),
              inquiry.type == 0 else { return nil }
        cdb = .init(repeating: 0)
        cdb[0] = SCSIOpcode.SERVICE_ACTION_IN_16
        cdb[1] = SCSIOpcode.SAI_READ_CAPACITY_16
        cdb[13] = 32
        let capacity = try LUNIdentity.parseReadCapacity16(try command(lun: lun, cdb, 16, dataIn: 32))
        cdb = .init(repeating: 0)
        cdb[0] = SCSIOpcode.MODE_SENSE
        cdb[2] = 0x3F
        cdb[4] = 192
        let readOnly = try LUNIdentity.parseWriteProtect(modeSense6: try command(lun: lun, cdb, 6, dataIn: 192))
        func vpd(_ page: UInt8) throws(StorVSCError) -> [UInt8] {
            var c = InlineArray<16, UInt8>(repeating: 0)
            c[0] = SCSIOpcode.INQUIRY
            c[1] = 0x01
            c[2] = page
            c[4] = 252
            return try command(lun: lun, c, 6, dataIn: 252)
        }
        let maxUnmap = capacity.thin ? LUNIdentity.parseMaxUnmapBlocks(blockLimits: try vpd(0xB0)) : 0
        let serial = LUNIdentity.parseSerialNumber(try vpd(0x80))
        return LUNIdentity(lun: lun, deviceType: inquiry.type, vendor: inquiry.vendor, product: inquiry.product,
                           revision: inquiry.revision, blockSize: capacity.blockSize, blockCount: capacity.blocks,
                           readOnly: readOnly, thinProvisioned: capacity.thin && maxUnmap > 0,
                           maxUnmapBlocks: maxUnmap, serialNumber: serial)
    }

    /// A data-in command on the control path (discovery): retried like disk I/O, the data returned as an array.
    func command(lun: UInt8, _ cdb: InlineArray<16, UInt8>, _ cdbLength: Int, dataIn: Int) throws(StorVSCError) -> [UInt8] {
        var out: [UInt8] = []
        try withRetries(lun: lun) { () throws(StorVSCError) -> SRBCompletion in
            try execute(lun: lun, cdb: cdb, cdbLength: cdbLength, direction: .read, length: dataIn, finish: { slot, c in
                out = [UInt8](repeating: 0, count: c.transferred)
                out.withUnsafeMutableBytes { slot.copyOut($0, from: 0) }
            })
        }
        return out
    }

    /// Runs `attempt` until it succeeds, retrying BUSY and UNIT ATTENTION with a short back-off.
    func withRetries(lun: UInt8, _ attempt: () throws(StorVSCError) -> SRBCompletion) throws(StorVSCError) {
        var tries = 0
        while true {
            let c = try attempt()
            switch c.disposition(lun: lun) {
            case .success:
                return
            case .retry:
                tries += 1
                guard tries < configuration.retries else { throw .busy }
                sleepNanoseconds(UInt64(tries) * 1_000_000)
            case .failure(let e):
                if case .lunRemoved = e { requestRescan() }
                throw e
            }
        }
    }
}

/// Online CPUs (Linux: `num_online_cpus()`).
func activeProcessorCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
