import Atomics
import Synchronization
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// An open channel in the guest: send in-band and GPA-direct packets, match completions to requests, and
/// receive packets copied out of the ring.
public final class GuestChannel: @unchecked Sendable {
    public let offer: OfferChannel
    public var relID: UInt32 { offer.childRelID }
    public var subchannelIndex: UInt16 { offer.subchannelIndex }
    public let endpoint: ChannelEndpoint
    public let requestor: Requestor
    /// The ring GPADL and the pages behind both rings.
    let ringGPADL: UInt32
    let ringPages: [UInt64]
    weak var bus: GuestBus?
    private let handler: any GuestChannelHandler
    private let rescindedFlag = ManagedAtomic<Bool>(false)
    private let closedFlag = ManagedAtomic<Bool>(false)
    /// Synchronous requests (control path): context → response bytes.
    private let syncResponses = Condition<[UInt64: [UInt8]]>([:])
    private let nextSyncContext = ManagedAtomic<UInt64>(1 << 63)
    /// Why outstanding requests were first failed (rescind, close, host lost), for ``request(_:timeoutNanoseconds:)``.
    private let failure = Mutex<GuestError?>(nil)

    init(offer: OfferChannel, endpoint: ChannelEndpoint, requestor: Requestor, ringGPADL: UInt32,
         ringPages: [UInt64], bus: GuestBus, handler: any GuestChannelHandler) {
        self.offer = offer
        self.endpoint = endpoint
        self.requestor = requestor
        self.ringGPADL = ringGPADL
        self.ringPages = ringPages
        self.bus = bus
        self.handler = handler
    }

    public var isRescinded: Bool { rescindedFlag.load(ordering: .acquiring) }
    public var isClosed: Bool { closedFlag.load(ordering: .acquiring) }
    /// Completions refused because their transaction id was unknown or repeated.
    public var rejectedCompletions: UInt64 { requestor.rejectedCompletions }

    // MARK: - Sending

    /// Sends an in-band packet that needs no completion (transaction id 0 unless given).
    public func sendInband(_ payload: UnsafeRawBufferPointer, transactionID: UInt64 = 0) throws(GuestError) {
        do { try endpoint.send(type: .dataInband, flags: 0, transactionID: transactionID, payload: payload) }
        catch { throw .channel(error) }
    }

    /// Sends an in-band request with COMPLETION_REQUESTED; its completion reaches the handler with `context`.
    /// Returns the transaction id.
    @discardableResult
    public func sendRequest(_ payload: UnsafeRawBufferPointer, context: UInt64) throws(GuestError) -> UInt64 {
        try sendRequest(type: .dataInband, header: UnsafeRawBufferPointer(start: nil, count: 0), payload: payload,
                        context: context)
    }

    /// Sends a GPA-direct request: `rangeHeader` is the encoded `reserved, rangecount, ranges` block
    /// (a multiple of 8 bytes) that follows the descriptor.
    @discardableResult
    public func sendGPADirectRequest(rangeHeader: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                                     context: UInt64) throws(GuestError) -> UInt64 {
        try sendRequest(type: .dataUsingGPADirect, header: rangeHeader, payload: payload, context: context)
    }

    /// Sends a GPA-direct request naming `ranges` of guest memory, with `payload` after them (control-path
    /// convenience: encodes the range block into a new array).
    @discardableResult
    public func sendGPADirectRequest(ranges: [GPARange], payload: [UInt8], context: UInt64) throws(GuestError) -> UInt64 {
        guard !ranges.isEmpty else { throw .invalidArgument("a GPA-direct packet names at least one range") }
        var w = WireWriter(capacity: 8 + GPARange.encodedLength(of: ranges))
        w.writeUInt32(0)  // reserved
        w.writeUInt32(UInt32(ranges.count))
        GPARange.encodeList(ranges, into: &w)
        let header = w.bytes
        let r: Result<UInt64, GuestError> = header.withUnsafeBytes { h in
            payload.withUnsafeBytes { p in
                do throws(GuestError) { return .success(try sendGPADirectRequest(rangeHeader: h, payload: p, context: context)) }
                catch { return .failure(error) }
            }
        }
        return try r.get()
    }

    func sendRequest(type: VMBusPacketType, header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                     context: UInt64) throws(GuestError) -> UInt64 {
        guard !isRescinded else { throw .rescinded(relID: relID) }
        guard let id = requestor.allocate(context: context) else {
            throw .channel(.tooManyOutstandingRequests)
        }
        do {
            try endpoint.send(type: type, flags: PacketDescriptor.flagCompletionRequested, transactionID: id,
                              header: header, payload: payload)
        } catch {
            _ = requestor.complete(id)
            throw .channel(error)
        }
        return id
    }

    /// Sends a completion for a host request.
    public func sendCompletion(transactionID: UInt64, _ payload: UnsafeRawBufferPointer) throws(GuestError) {
        do { try endpoint.send(type: .completion, flags: 0, transactionID: transactionID, payload: payload) }
        catch { throw .channel(error) }
    }

    /// Control path: sends a request and waits for its completion's payload.
    public func request(_ bytes: [UInt8], timeoutNanoseconds: UInt64 = 10_000_000_000) throws(GuestError) -> [UInt8] {
        let context = nextSyncContext.loadThenWrappingIncrement(ordering: .relaxed) | (1 << 63)
        let r: Result<UInt64, GuestError> = bytes.withUnsafeBytes { p in
            do throws(GuestError) { return .success(try sendRequest(p, context: context)) }
            catch { return .failure(error) }
        }
        let id = try r.get()
        let response = syncResponses.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.removeValue(forKey: context) }
        guard let response else {
            // Give the id back, or a host that never answers would use up the request table.
            requestor.cancel(id)
            syncResponses.withLock { _ = $0.removeValue(forKey: context) }
            throw isRescinded ? .rescinded(relID: relID) : .timedOut("completion on channel \(relID)")
        }
        // fail() answers waiting requests with an empty payload after recording why.
        if response.isEmpty, let error = failure.withLock({ $0 }) { throw error }
        if response.isEmpty && (isRescinded || isClosed) { throw .rescinded(relID: relID) }
        return response
    }

    // MARK: - Receiving (called by the bus on this channel's interrupt)

    func interrupt() {
        endpoint.peerSignalled()
        guard !isClosed else { return }
        do {
            try endpoint.drain { [self] packet, buffer in dispatch(packet, buffer) }
        } catch {
            bus?.logger.error("channel \(relID): \(error); closing it")
            fail(.channel(error))
        }
    }

    private func dispatch(_ packet: ReceivedPacket, _ buffer: PacketBuffer) {
        guard packet.descriptor.type == .completion else {
            handler.packetReceived(packet, buffer: buffer, on: self)
            return
        }
        guard let context = requestor.complete(packet.descriptor.transactionID) else {
            return  // unknown or repeated id: counted by the requestor, dropped
        }
        if context & (1 << 63) != 0 {
            let bytes = buffer.payloadArray(of: packet)
            syncResponses.update { $0[context] = bytes }
        } else {
            handler.completionReceived(context: context, packet: packet, buffer: buffer, on: self)
        }
    }

    /// Fails every outstanding request with `error`.
    func fail(_ error: GuestError) {
        failure.withLock { if $0 == nil { $0 = error } }
        let contexts = requestor.cancelAll()
        let async = contexts.filter { $0 & (1 << 63) == 0 }
        syncResponses.update { waiting in
            for c in contexts where c & (1 << 63) != 0 { waiting[c] = [] }
        }
        if !async.isEmpty { handler.requestsFailed(contexts: async, error: error, on: self) }
    }

    func markRescinded() {
        rescindedFlag.store(true, ordering: .releasing)
        endpoint.close()
        fail(.rescinded(relID: relID))
    }

    func markClosed() {
        closedFlag.store(true, ordering: .releasing)
        endpoint.close()
    }

    /// Closes the channel: CLOSECHANNEL, then the ring GPADL is torn down and its pages freed.
    public func close() {
        bus?.close(self)
    }
}
