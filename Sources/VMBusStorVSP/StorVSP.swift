import VMBusDiskBackend
import VMBusHost
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusSCSI
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusSync
import VMBusTransport
import VMBusWire

/// The host's storage VSP: a SCSI controller (or one IDE disk) whose LUNs are ``SCSIDisk``s.
///
/// Control packets on the primary channel go through ``StorVSPNegotiation``. EXECUTE_SRB is served on the
/// channel's worker thread: the GPA-direct range is checked against `data_transfer_length` and guest memory,
/// turned into an ``IOVector`` over the mapped guest pages, and the backend reads or writes those pages
/// directly. Each channel keeps its own vector and completion buffer, so a request allocates nothing; I/O on
/// different channels (sub-channels) runs in parallel.
public final class StorVSP: VMBusDeviceProvider, @unchecked Sendable {
    public let offer: HostDeviceOffer
    public let kind: StorageControllerKind
    public let luns: SCSILUNTable
    public let maxTransferBytes: Int
    private let negotiation: Lock<StorVSPNegotiation>
    private let device = Lock<HostDeviceHandle?>(nil)
    private let contexts = Lock<[UInt32: ChannelContext]>([:])
    private let counters = Lock(Counters())
    /// The open primary channel: bus change notifications go there.
    private let primary = Lock<HostChannel?>(nil)

    public struct Counters: Sendable, Equatable {
        /// Packets refused as malformed (answered with an error status where a completion was asked for).
        public var protocolErrors = 0
        public var requests = 0
        public var lastError: String?
    }

    /// Per channel: the scatter-gather list over guest pages and the completion being built (inline
    /// requests), and the requests of this channel on the I/O threads.
    final class ChannelContext: @unchecked Sendable {
        let vector: IOVector
        var writer = WireWriter(capacity: 128)
        let inflight = Condition(0)
        /// True once the channel closed: a backend's late completion then leaves the guest's pages alone and
        /// sends nothing. Held while a completion writes into those pages.
        let gate = Lock(false)
        init(pages: Int) { vector = IOVector(capacity: pages) }
    }

    /// Runs EXECUTE_SRBs off the channel workers while a channel is open; nil: inline on the worker.
    private let pool = Lock<StorVSPIOPool?>(nil)
    private let ioThreads: Int
    private let queueDepth: Int
    /// How long a close waits for the channel's requests in flight before it abandons them.
    private let closeTimeoutNanoseconds: UInt64

    public init(kind: StorageControllerKind, instanceID: GUID, luns: SCSILUNTable = SCSILUNTable(),
                maxSubchannels: Int = 0, maxTransferBytes: Int = 1 << 20,
                acceptedVersions: Set<StorageProtocolVersion> = Set(StorageProtocolVersion.all),
                ioThreads: Int = 4, queueDepth: Int = 64, closeTimeoutNanoseconds: UInt64 = 60_000_000_000) {
        let transfer = max(4096, maxTransferBytes / 4096 * 4096)
        let subchannels = kind == .ide ? 0 : maxSubchannels
        self.kind = kind
        self.luns = luns
        self.maxTransferBytes = transfer
        self.ioThreads = max(0, ioThreads)
        self.queueDepth = max(queueDepth, ioThreads, 1)
        self.closeTimeoutNanoseconds = closeTimeoutNanoseconds
        var userDefined: [UInt8] = []
        if kind == .ide { userDefined = IDELocation.userDefined(pathID: 0, targetID: UInt8(truncatingIfNeeded: IDELocation.targetID(fromInstance: instanceID))) }
        offer = HostDeviceOffer(classID: kind.classID, instanceID: instanceID, userDefined: userDefined,
                                maxSubchannels: subchannels,
                                maxPacketSize: StorageLimits.maxRequestPacketSize(maxTransferBytes: transfer))
        negotiation = Lock(StorVSPNegotiation(configuration: .init(acceptedVersions: acceptedVersions,
                                                                   maxSubchannels: subchannels,
                                                                   maxTransferBytes: UInt32(transfer))))
    }

    public var counterSnapshot: Counters { counters.withLock { $0 } }
    public var stage: StorVSPNegotiation.Stage { negotiation.withLock { $0.stage } }

    public func attached(_ device: HostDeviceHandle) { self.device.withLock { $0 = device } }

    public func channelOpened(_ channel: HostChannel) throws {
        let context = ChannelContext(pages: maxTransferBytes / 4096 + 1)
        contexts.withLock { $0[channel.relID] = context }
        if channel.subchannelIndex == 0 { primary.withLock { $0 = channel } }
        if ioThreads > 0 {
            pool.withLock { p in
                guard p == nil else { return }
                let created = StorVSPIOPool(threads: ioThreads, jobs: queueDepth, pages: maxTransferBytes / 4096 + 1)
                created.owner = self
                p = created
            }
        }
    }

    public func channelClosed(_ channel: HostChannel) {
        let context = contexts.withLock { $0.removeValue(forKey: channel.relID) }
        // Nothing may touch this channel's guest pages once the host tells the guest the channel is gone:
        // wait for its requests on the I/O threads (each is bounded by the backend's own I/O).
        if let context {
            if context.inflight.wait(timeoutNanoseconds: closeTimeoutNanoseconds, until: { $0 == 0 ? true : nil }) == nil {
                counters.withLock { $0.lastError = "channel \(channel.relID) closed with I/O still running" }
            }
            // A backend request that outlived the wait (a server that does not answer) completes into nothing.
            context.gate.withLock { $0 = true }
        }
        // The last channel gone: the I/O threads end (a new open starts them again).
        if contexts.withLock({ $0.isEmpty }) { pool.withLock { p in p?.shutdown(); p = nil } }
        if channel.subchannelIndex == 0 {
            primary.withLock { if $0 === channel { $0 = nil } }
            // A guest that closes the primary starts over (Linux re-initializes after a reload).
            negotiation.withLock { n in n = StorVSPNegotiation(configuration: n.configuration) }
        }
    }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        guard let context = contexts.withLock({ $0[channel.relID] }) else { return }
        let id = packet.descriptor.transactionID
        let wantsCompletion = packet.descriptor.completionRequested
        var range: GPARangeView?
        var reader: WireReader
        switch packet.descriptor.type {
        case .dataInband:
            reader = buffer.wireReader(for: packet)
        case .dataUsingGPADirect:
            reader = buffer.wireReader(wholePacket: packet)
            do {
                let view = try GPADirectPacketView(from: &reader)
                guard view.rangeCount == 1 else {
                    return refuse(context, channel, id, wantsCompletion, length: packet.payloadLength,
                                  "GPA-direct request with \(view.rangeCount) ranges")
                }
                range = try view.firstRange
            } catch {
                return refuse(context, channel, id, wantsCompletion, length: packet.payloadLength, "GPA-direct header: \(error)")
            }
        default:
            return refuse(context, channel, id, false, length: 0, "unexpected packet type \(packet.descriptor.type)")
        }
        guard let request = try? VStorPacket(from: &reader) else {
            return refuse(context, channel, id, wantsCompletion, length: packet.payloadLength, "VSTOR packet shorter than its header")
        }
        let length = StorVSPNegotiation.completionLength(forRequestPayload: packet.payloadLength)
        if request.operation == .executeSRB {
            if let refusal = negotiation.withLock({ $0.refusal(for: request) }) {
                return send(refusal, context, channel, id, length: length)
            }
            counters.withLock { $0.requests += 1 }
            guard let pool = pool.withLock({ $0 }) else {
                let reply = prepareSRB(request, range: range, vector: context.vector, memory: channel.memory)
                    ?? runSRB(request, vector: context.vector)
                return send(reply, context, channel, id, length: length)
            }
            // Mapped here (the range lives in this worker's packet buffer), run on an I/O thread, so that a
            // channel's queue depth is not serialised through its worker.
            let job = pool.take()
            if let refusal = prepareSRB(request, range: range, vector: job.vector, memory: channel.memory) {
                pool.giveBack(job)
                return send(refusal, context, channel, id, length: length)
            }
            // A read the page cache can answer is answered here: no I/O thread, no wake-up, the completion on
            // its way before the worker drains the next request.
            if let reply = runCached(request, vector: job.vector) {
                pool.giveBack(job)
                return send(reply, context, channel, id, length: length)
            }
            job.request = request
            job.transactionID = id
            job.completionLength = length
            job.channel = channel
            job.context = context
            context.inflight.update { $0 += 1 }
            if !startAsync(job, pool) { pool.submit(job) }
            return
        }
        guard channel.subchannelIndex == 0 else {
            return refuse(context, channel, id, wantsCompletion, length: length, "\(request.operation) on a sub-channel")
        }
        let outcome = negotiation.withLock { $0.handle(request) }
        send(outcome.completion, context, channel, id, length: length)
        if case .offerSubchannels(let n) = outcome.action {
            _ = device.withLock { $0 }?.offerSubchannels(n)
        }
    }

    // MARK: Hot add and remove

    /// Attaches `disk` at `lun` while the guest runs and tells it (ENUMERATE_BUS). False if the LUN is taken
    /// or out of range (IDE carries LUN 0 only).
    @discardableResult
    public func attach(_ disk: SCSIDisk, at lun: Int) -> Bool {
        guard kind == .scsi || lun == 0, luns.attach(disk, at: lun) else { return false }
        notifyBusChanged()
        return true
    }

    /// Detaches the disk at `lun` and tells the guest (ENUMERATE_BUS); I/O to it from then on gets INVALID_LUN.
    @discardableResult
    public func detach(lun: Int) -> SCSIDisk? {
        guard let disk = luns.detach(lun) else { return nil }
        notifyBusChanged()
        return disk
    }

    /// ENUMERATE_BUS on the primary channel (transaction id 0, no completion), sized to the negotiated
    /// version as Hyper-V sizes unsolicited packets. Nothing is sent before initialization finished: the guest
    /// scans then anyway.
    public func notifyBusChanged() {
        let (ready, size) = negotiation.withLock { n in (n.stage == .ready, n.version?.packetSize ?? VStorPacket.wireSize) }
        guard ready, let channel = primary.withLock({ $0 }) else { return }
        var w = WireWriter(capacity: VStorPacket.wireSize)
        VStorPacket(operation: .enumerateBus, flags: 0).encode(into: &w, size: size)
        do { try channel.sendInband(bytes: w.bytes) }
        catch { counters.withLock { $0.lastError = "ENUMERATE_BUS: \(error)" } }
    }

    // MARK: EXECUTE_SRB

    /// The COMPLETE_IO for `request` with `status` and the bytes moved (sense cleared).
    private static func completion(_ request: VStorPacket, _ status: SRBStatus, transferred: Int = 0) -> VStorPacket {
        var srb = request.srb
        srb.srbStatus = status
        srb.scsiStatus = 0
        srb.senseInfoLength = 0
        srb.dataTransferLength = UInt32(transferred)
        return VStorPacket(operation: .completeIO, flags: 0, status: status.ntStatus, srb: srb)
    }

    /// Checks an EXECUTE_SRB against its range and guest memory and maps the range into `vector`. Returns the
    /// error completion to send, or nil when the request is ready to run. Runs on the channel worker: `range`
    /// points into the worker's packet buffer.
    private func prepareSRB(_ request: VStorPacket, range: GPARangeView?, vector: IOVector, memory: GuestMemory) -> VStorPacket? {
        let srb = request.srb
        guard Int(srb.cdbLength) >= 1, Int(srb.cdbLength) <= VMSCSIRequest.maxCDBLength,
              let direction = srb.dataDirection else {
            return Self.completion(request, .invalidRequest)
        }
        let dataLength = direction == .none ? 0 : Int(srb.dataTransferLength)
        guard dataLength <= maxTransferBytes else { return Self.completion(request, .invalidRequest) }
        vector.reset()
        if dataLength > 0 {
            guard let range, Int(range.byteCount) >= dataLength else { return Self.completion(request, .invalidRequest) }
            do { try map(range, length: dataLength, memory: memory, into: vector) }
            catch { return Self.completion(request, .invalidRequest) }
        }
        return nil
    }

    /// What an EXECUTE_SRB addresses: its LUN (nil when the path or target names no disk of ours), its CDB and
    /// the bytes of data it moves.
    private func addressee(_ request: VStorPacket) -> (lun: Int?, cdb: SCSICDB, dataLength: Int) {
        let srb = request.srb
        let dataLength = srb.dataDirection == VMSCSIRequest.DataDirection.none ? 0 : Int(srb.dataTransferLength)
        // IDE channels carry one disk: the path and target a guest fills in are not to be trusted.
        let lun = kind == .ide ? 0 : Int(srb.lun)
        let addressed = kind == .ide || (srb.pathID == 0 && srb.targetID == 0)
        var cdbBytes = InlineArray<16, UInt8>(repeating: 0)
        for i in 0..<16 { cdbBytes[i] = srb.dataArea[i] }
        return (addressed ? lun : nil, SCSICDB(raw: cdbBytes, length: Int(srb.cdbLength)), dataLength)
    }

    /// Runs a prepared EXECUTE_SRB on its LUN, moving data through `vector`; returns its completion.
    private func runSRB(_ request: VStorPacket, vector: IOVector) -> VStorPacket {
        let (lun, cdb, dataLength) = addressee(request)
        let outcome = lun.map { luns.execute(lun: $0, cdb, data: vector, dataLength: dataLength) } ?? .lunAbsent
        return Self.reply(request, outcome)
    }

    /// The completion of a prepared READ whose data the LUN's backend has in memory, moved into `vector` on the
    /// calling thread; nil when it must go to an I/O thread.
    private func runCached(_ request: VStorPacket, vector: IOVector) -> VStorPacket? {
        let (lun, cdb, dataLength) = addressee(request)
        guard let lun, let disk = luns.disk(at: lun),
              let result = disk.executeIfCached(cdb, data: vector, dataLength: dataLength) else { return nil }
        return Self.reply(request, .completed(result))
    }

    /// The COMPLETE_IO for `request` that ended with `outcome`: status, bytes moved, and the sense the guest
    /// asked room for.
    private static func reply(_ request: VStorPacket, _ outcome: SCSIOutcome) -> VStorPacket {
        var srb: VMSCSIRequest
        switch outcome {
        case .lunAbsent:
            return Self.completion(request, .invalidLUN)
        case .completed(let result) where result.status == SAMStatus.GOOD:
            return Self.completion(request, .success, transferred: result.transferred)
        case .completed(let result):
            var reply = Self.completion(request, SRBStatus.error, transferred: result.transferred)
            srb = reply.srb
            srb.scsiStatus = result.status
            if let sense = result.sense {
                let room = min(Int(request.srb.senseInfoLength), VMSCSIRequest.senseBufferSize, FixedSenseData.length)
                for i in 0..<VMSCSIRequest.senseBufferSize { srb.dataArea[i] = i < room ? sense.byte(i) : 0 }
                srb.senseInfoLength = UInt8(room)
                if room > 0 { srb.srbStatus = SRBStatus.error.withAutosense() }
            }
            reply.srb = srb
            return reply
        }
    }

    /// Builds the vector over the guest pages `range` names: the first page from `byte_offset`, the middle
    /// ones whole; every PFN checked against guest memory.
    private func map(_ range: GPARangeView, length: Int, memory: GuestMemory, into vector: IOVector) throws {
        var left = length
        var offset = Int(range.byteOffset)
        var i = 0
        while left > 0 {
            let page = try memory.pagePointer(try range.pfn(i))
            let n = min(GuestMemory.pageSize - offset, left)
            try vector.append(base: page + offset, length: n)
            left -= n
            offset = 0
            i += 1
        }
    }

    // MARK: Asynchronous READ and WRITE

    /// On the channel worker: hands a prepared READ or WRITE for a disk whose backend completes on its own
    /// threads (NBD) to the backend, through the job's bounce buffer, so that the guest's queue depth reaches
    /// the backend without an I/O thread per request. False: the job is for the I/O threads.
    private func startAsync(_ job: StorVSPIOPool.Job, _ pool: StorVSPIOPool) -> Bool {
        let (lun, cdb, dataLength) = addressee(job.request)
        guard let lun, let disk = luns.disk(at: lun), disk.completesAsynchronously,
              case .transfer(let transfer) = disk.prepareTransfer(cdb, data: job.vector, dataLength: dataLength) else {
            return false
        }
        let bounce = job.bounce(transfer.bytes)
        // The guest's data is copied here, on the worker, while the channel is certainly open.
        if transfer.isWrite { job.copyToBounce(transfer.bytes) }
        job.disk = disk
        job.transfer = transfer
        job.pool = pool
        disk.start(transfer, data: bounce, completion: job)
        return true
    }

    /// On the backend's thread: the job's backend request ended. Unless the channel was closed meanwhile, the
    /// data read goes into the guest's pages and the completion to the guest; the channel's gate makes both
    /// happen before a close returns or not at all.
    func finishAsync(_ job: StorVSPIOPool.Job, _ error: BackendError?) {
        guard let channel = job.channel, let context = job.context, let disk = job.disk else { return }
        let result = disk.result(of: job.transfer, error)
        context.gate.withLock { closed in
            guard !closed else { return }
            if !job.transfer.isWrite, result.transferred > 0 { job.copyFromBounce(result.transferred) }
            send(Self.reply(job.request, .completed(result)), using: &job.writer, channel, job.transactionID,
                 length: job.completionLength)
        }
        job.channel = nil
        job.context = nil
        job.disk = nil
        context.inflight.update { $0 -= 1 }
    }

    /// On an I/O thread: runs `job` and sends its completion.
    func run(_ job: StorVSPIOPool.Job) {
        guard let channel = job.channel, let context = job.context else { return }
        send(runSRB(job.request, vector: job.vector), using: &job.writer, channel, job.transactionID, length: job.completionLength)
        job.channel = nil
        job.context = nil
        context.inflight.update { $0 -= 1 }
    }

    // MARK: Sending

    private func send(_ reply: VStorPacket, _ context: ChannelContext, _ channel: HostChannel, _ id: UInt64, length: Int) {
        send(reply, using: &context.writer, channel, id, length: length)
    }

    /// Encodes `reply` as long as its request into `writer` (reused: no allocation) and sends it as the
    /// completion of `id`.
    private func send(_ reply: VStorPacket, using writer: inout WireWriter, _ channel: HostChannel, _ id: UInt64, length: Int) {
        writer.reset()
        reply.encode(into: &writer, size: length)
        let sent: Bool = writer.bytes.withUnsafeBytes { p in
            (try? channel.sendCompletion(transactionID: id, p)) != nil
        }
        if !sent { counters.withLock { $0.lastError = "completion for \(id) could not be sent" } }
    }

    private func refuse(_ context: ChannelContext, _ channel: HostChannel, _ id: UInt64, _ wantsCompletion: Bool,
                        length: Int, _ why: String) {
        counters.withLock {
            $0.protocolErrors += 1
            $0.lastError = why
        }
        guard wantsCompletion else { return }
        send(VStorPacket(operation: .completeIO, flags: 0, status: .invalidParameter), context, channel, id,
             length: StorVSPNegotiation.completionLength(forRequestPayload: length))
    }
}
