import Logging
import VMBusHost
import VMBusICProtocol
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// The host end of one integration service: its offer, version negotiation, and one transaction at a time.
///
/// Hyper-V's ICs are host-driven: the host sends NEGOTIATE as soon as the guest opens the channel, then
/// requests, each answered by the guest with the request's own bytes patched (Linux's util drivers echo
/// the VMBus transaction id of the request in their in-band answer; we match on it). Nothing here blocks a
/// channel worker: requests are made on the caller's thread and wait on a condition that the worker's
/// ``packetReceived(_:buffer:on:)`` fulfils.
public final class ICHostChannel: VMBusDeviceProvider, @unchecked Sendable {
    public let service: ICService
    public let offer: HostDeviceOffer
    /// What the host lists in NEGOTIATE, in order.
    public let frameworkVersions: [ICVersion]
    public let serviceVersions: [ICVersion]
    let logger: Logger

    /// Where the service stands with the guest.
    public enum Phase: Equatable, Sendable, CustomStringConvertible {
        /// No open channel.
        case closed
        /// NEGOTIATE sent, no answer yet.
        case negotiating
        case ready(ICNegotiatedVersions)
        /// The guest answered with no common version (or an answer we could not read).
        case refused

        public var description: String {
            switch self {
            case .closed: return "not connected"
            case .negotiating: return "negotiating"
            case .ready(let v): return "ready (\(v))"
            case .refused: return "refused"
            }
        }
    }

    private struct InFlight {
        var id: UInt64
        /// A caller waits for the answer; when false (a posted request), the answer is dropped.
        var awaited: Bool
        var deadline: UInt64
    }

    private struct State {
        var channel: HostChannel?
        var phase: Phase = .closed
        var negotiationID: UInt64 = 0
        var inFlight: InFlight?
        var nextID: UInt64 = 1
        /// Bumped on every open and close, so a waiter sees that its channel went away.
        var generation: UInt64 = 0
        /// The answer to the awaited request, kept apart from ``inFlight`` so that a close right after it
        /// (a guest that shuts down once it answered) does not take it from its waiter.
        var answered: (id: UInt64, message: ICMessage)?
        var strayAnswers: UInt64 = 0
        var malformedAnswers: UInt64 = 0
    }
    private let state = Condition(State())
    private let readyHandlers = Condition<[@Sendable (ICNegotiatedVersions) -> Void]>([])
    private let closedHandlers = Condition<[@Sendable () -> Void]>([])

    /// Every IC channel gets one buffer of this size: KVP messages (7.5 KiB) and file-copy fragments
    /// (6.2 KiB) do not fit the 4 KiB default.
    public static let maxPacketSize = 16 << 10

    public init(service: ICService, instanceID: GUID, frameworkVersions: [ICVersion]? = nil,
                serviceVersions: [ICVersion]? = nil, logger: Logger = Logger(label: "vmbus.ic.host")) {
        self.service = service
        self.frameworkVersions = frameworkVersions ?? [.utilFWVersion, .utilWS2K8FWVersion]
        self.serviceVersions = serviceVersions ?? service.serviceVersions
        self.logger = logger
        offer = HostDeviceOffer(classID: service.classID, instanceID: instanceID, maxPacketSize: Self.maxPacketSize)
    }

    /// Runs `body` each time a negotiation succeeds (on the channel's worker thread: do not wait there).
    public func onReady(_ body: @escaping @Sendable (ICNegotiatedVersions) -> Void) {
        readyHandlers.withLock { $0.append(body) }
    }

    /// Runs `body` each time the channel closes.
    public func onClosed(_ body: @escaping @Sendable () -> Void) {
        closedHandlers.withLock { $0.append(body) }
    }

    public var phase: Phase { state.withLock { $0.phase } }
    public var versions: ICNegotiatedVersions? {
        if case .ready(let v) = phase { return v }
        return nil
    }
    /// The negotiated versions, or why there are none yet.
    public func readyVersions() throws(ICHostError) -> ICNegotiatedVersions {
        switch phase {
        case .ready(let v): return v
        case .negotiating: throw .negotiating(service.description)
        case .refused: throw .refused(service.description)
        case .closed: throw .notConnected(service.description)
        }
    }

    /// Answers that matched no request in flight (late after a timeout, or unsolicited).
    public var strayAnswers: UInt64 { state.withLock { $0.strayAnswers } }
    /// Packets from the guest that were not IC answers at all.
    public var malformedAnswers: UInt64 { state.withLock { $0.malformedAnswers } }

    // MARK: VMBusDeviceProvider

    public func channelOpened(_ channel: HostChannel) throws {
        guard channel.subchannelIndex == 0 else { throw ICHostError.invalidRequest("ICs have no sub-channels") }
        let id: UInt64 = state.update { s in
            s.channel = channel
            s.phase = .negotiating
            s.generation &+= 1
            s.inFlight = nil
            let id = s.nextID
            s.nextID &+= 1
            s.negotiationID = id
            return id
        }
        let request = ICNegotiation.request(frameworkVersions: frameworkVersions, serviceVersions: serviceVersions)
        do {
            try channel.sendInband(bytes: request, transactionID: id)
        } catch {
            logger.warning("\(service): NEGOTIATE not sent: \(error)")
        }
    }

    public func channelClosed(_ channel: HostChannel) {
        let closed: Bool = state.update { s in
            guard s.channel === channel else { return false }
            s.channel = nil
            s.phase = .closed
            s.generation &+= 1
            s.inFlight = nil
            return true
        }
        if closed { for h in closedHandlers.withLock({ $0 }) { h() } }
    }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel) {
        guard packet.descriptor.type == .dataInband,
              let message = try? ICMessage(packet: buffer.payloadArray(of: packet)),
              message.header.icflags.contains(.response) else {
            state.withLock { $0.malformedAnswers += 1 }
            return
        }
        let id = packet.descriptor.transactionID
        if message.header.icmsgtype == .negotiate {
            negotiated(message, id: id, on: channel)
            return
        }
        state.update { s in
            guard s.channel === channel, let f = s.inFlight, f.id == id, s.answered?.id != id else {
                s.strayAnswers += 1
                return
            }
            if f.awaited {
                s.answered = (id, message)
            } else {
                s.inFlight = nil
            }
        }
    }

    private func negotiated(_ message: ICMessage, id: UInt64, on channel: HostChannel) {
        let result: ICNegotiatedVersions?? = state.update { s in
            guard s.channel === channel, s.phase == .negotiating, id == s.negotiationID else {
                s.strayAnswers += 1
                return .none
            }
            // Read the answer's counts and entries ourselves: the guest may also pick a version we never offered.
            guard let v = try? ICNegotiation.parseAnswer(message.wireBytes),
                  frameworkVersions.contains(v.framework), serviceVersions.contains(v.service) else {
                s.phase = .refused
                return .some(nil)
            }
            s.phase = .ready(v)
            return .some(v)
        }
        switch result {
        case .some(.some(let v)):
            logger.debug("\(service): \(v)")
            for h in readyHandlers.withLock({ $0 }) { h(v) }
        case .some(.none):
            logger.warning("\(service): the guest refused NEGOTIATE")
        case .none:
            break
        }
    }

    // MARK: Requests

    /// Sends a request of `type` with `body` and waits for the guest's answer. Waits first, within the same
    /// `timeoutNanoseconds`, for a request already in flight to finish.
    public func transact(_ type: ICMessageType, body: [UInt8],
                         timeoutNanoseconds: UInt64) throws(ICHostError) -> ICMessage {
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        let (id, channel, generation, message) = try begin(type, body: body, awaited: true, deadline: deadline)
        do {
            try channel.sendInband(bytes: message.wireBytes, transactionID: id)
        } catch {
            finish(id)
            throw .channel("\(error)")
        }
        let outcome: Result<ICMessage, ICHostError>? = state.wait(timeoutNanoseconds: timeoutNanoseconds) { s in
            if let a = s.answered, a.id == id {
                s.answered = nil
                if s.inFlight?.id == id { s.inFlight = nil }
                return .success(a.message)
            }
            guard s.generation == generation, let f = s.inFlight, f.id == id else {
                return .failure(.notConnected(service.description))
            }
            return nil
        }
        guard let outcome else {
            finish(id)
            throw .timedOut(service.description)
        }
        let answer = try outcome.get()
        guard answer.header.icmsgtype == type else {
            throw .malformedAnswer("\(service): answer of type \(answer.header.icmsgtype) to \(type)")
        }
        return answer
    }

    /// Sends a request without waiting for its answer (which is dropped when it comes). It still holds the
    /// service until then, or until `timeoutNanoseconds` pass. For requests made from a channel worker.
    public func post(_ type: ICMessageType, body: [UInt8], timeoutNanoseconds: UInt64) throws(ICHostError) {
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        let (id, channel, _, message) = try begin(type, body: body, awaited: false, deadline: deadline, waitForSlot: false)
        do {
            try channel.sendInband(bytes: message.wireBytes, transactionID: id)
        } catch {
            finish(id)
            throw .channel("\(error)")
        }
    }

    private func begin(_ type: ICMessageType, body: [UInt8], awaited: Bool, deadline: UInt64,
                       waitForSlot: Bool = true) throws(ICHostError) -> (UInt64, HostChannel, UInt64, ICMessage) {
        let name = service.description
        let wait: UInt64 = waitForSlot ? deadline &- min(deadline, monotonicNanoseconds()) : 0
        let r: Result<(UInt64, HostChannel, UInt64, ICMessage), ICHostError>? = state.wait(timeoutNanoseconds: wait) { s in
            guard let channel = s.channel else { return .failure(.notConnected(name)) }
            let versions: ICNegotiatedVersions
            switch s.phase {
            case .ready(let v): versions = v
            case .refused: return .failure(.refused(name))
            case .negotiating: return waitForSlot ? nil : .failure(.negotiating(name))
            case .closed: return .failure(.notConnected(name))
            }
            // A posted request whose answer never came frees the service at its deadline.
            if let f = s.inFlight, monotonicNanoseconds() < f.deadline { return nil }
            let id = s.nextID
            s.nextID &+= 1
            s.inFlight = InFlight(id: id, awaited: awaited, deadline: deadline)
            let header = ICMessageHeader(icverframe: versions.framework, icmsgtype: type,
                                         icvermsg: versions.service, icmsgsize: 0)
            return .success((id, channel, s.generation, ICMessage(header: header, body: body)))
        }
        guard let r else {
            throw state.withLock({ $0.phase == .negotiating }) ? .negotiating(name) : .busy(name)
        }
        return try r.get()
    }

    private func finish(_ id: UInt64) {
        state.update { s in if s.inFlight?.id == id { s.inFlight = nil } }
    }
}
