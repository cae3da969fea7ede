import Atomics
import Logging
import VMBusGuest
import VMBusICProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// One open IC channel in the guest: answers NEGOTIATE as Linux's `vmbus_prep_negotiate_resp` does, and
/// hands every other request to the service's ``ICResponder``, inline or on the service's own thread.
public final class ICGuestChannel: GuestChannelHandler, @unchecked Sendable {
    public let responder: any ICResponder
    let logger: Logger
    private let versionsState = Condition<ICNegotiatedVersions?>(nil)
    /// Requests waiting for a blocking responder. Small: the host sends one at a time; a host that floods us
    /// gets HV_E_FAIL for what does not fit instead of costing memory.
    private let queue = BlockingQueue<Pending>(capacity: 4)
    private let worker = Latch()

    public let requestsAnswered = ManagedAtomic<UInt64>(0)
    /// Packets dropped without an answer: shorter than an IC header, or not in-band.
    public let packetsDropped = ManagedAtomic<UInt64>(0)
    /// Requests answered with HV_E_FAIL because the service was still busy with earlier ones.
    public let requestsRefusedBusy = ManagedAtomic<UInt64>(0)

    private struct Pending: Sendable {
        var message: ICMessage
        var transactionID: UInt64
        var channel: GuestChannel
    }

    init(responder: any ICResponder, logger: Logger) {
        self.responder = responder
        self.logger = logger
    }

    public var versions: ICNegotiatedVersions? { versionsState.withLock { $0 } }

    /// Starts the service's thread, for a responder that may block. Before the channel opens: the host's
    /// first request may come before OPENCHANNEL_RESULT.
    func attachWorker() throws {
        guard responder.mayBlock else { return }
        let queue = self.queue
        let worker = self.worker
        let started = startThread(name: "ic-\(responder.service.messageType.rawValue)") { [weak self] in
            defer { worker.open() }
            while let item = queue.pop() {
                guard let self else { return }
                self.send(self.responder.respond(to: item.message, versions: self.versions),
                          transactionID: item.transactionID, on: item.channel)
            }
        }
        if !started { worker.open(); throw GuestError.invalidArgument("no thread for \(responder.service)") }
    }

    /// Stops the service's thread once it finished the request at hand (the channel is closed after).
    func detach() {
        queue.close()
        if responder.mayBlock { _ = worker.wait(timeoutNanoseconds: 35_000_000_000) }
    }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        guard packet.descriptor.type == .dataInband else {
            packetsDropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        let bytes = buffer.payloadArray(of: packet)
        let id = packet.descriptor.transactionID
        // Linux 6.12 drops what is shorter than ICMSG_HDR without an answer.
        guard let message = try? ICMessage(packet: bytes) else {
            packetsDropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        if message.header.icmsgtype == .negotiate {
            negotiate(bytes, transactionID: id, on: channel)
        } else if responder.mayBlock {
            if !queue.push(Pending(message: message, transactionID: id, channel: channel)) {
                requestsRefusedBusy.wrappingIncrement(ordering: .relaxed)
                send(ICReply.failure(message), transactionID: id, on: channel)
            }
        } else {
            send(responder.respond(to: message, versions: versions), transactionID: id, on: channel)
        }
    }

    private func negotiate(_ bytes: [UInt8], transactionID: UInt64, on channel: GuestChannel) {
        let service = responder.service
        let response: [UInt8]
        do throws(WireError) {
            let answer = try service.linuxAnswer(to: bytes)
            versionsState.withLock { $0 = answer.versions }
            if answer.versions == nil { logger.warning("\(service): no common version with the host") }
            response = answer.response
        } catch {
            guard let refusal = ICNegotiation.linuxRefusal(of: bytes) else { return }
            response = refusal
        }
        sendBytes(response, transactionID: transactionID, on: channel)
    }

    private func send(_ reply: ICReply, transactionID: UInt64, on channel: GuestChannel) {
        sendBytes(reply.message.wireBytes, transactionID: transactionID, on: channel)
        requestsAnswered.wrappingIncrement(ordering: .relaxed)
        reply.afterSend?()
    }

    private func sendBytes(_ bytes: [UInt8], transactionID: UInt64, on channel: GuestChannel) {
        let failure: GuestError? = bytes.withUnsafeBytes { p in
            do throws(GuestError) {
                try channel.sendInband(p, transactionID: transactionID)
                return nil
            } catch { return error }
        }
        if let failure { logger.debug("\(responder.service): answer not sent: \(failure)") }
    }
}
