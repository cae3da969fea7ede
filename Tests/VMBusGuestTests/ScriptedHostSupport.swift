import Logging
import VMBusGuest
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// A host played by the test: it receives the guest's control messages over an ``InProcessPartition`` (no
/// ``VMBusHost`` runs) and answers as a well-behaved host would, unless the test's script says otherwise.
/// This is how the guest is tested against a malicious or broken host.
final class ScriptedHost: HostMessageSink, @unchecked Sendable {
    enum Reply {
        /// What a well-behaved host answers.
        case normal
        /// Nothing at all.
        case silence
        /// These messages instead.
        case messages([ChannelMessage])
        /// These raw bytes instead.
        case raw([[UInt8]])
    }

    let partition: InProcessPartition
    /// Every message the guest posted, parsed.
    let received = Condition<[ChannelMessage]>([])
    private let script: Condition<@Sendable (ChannelMessage) -> Reply>
    private let offers: Condition<[OfferChannel]>
    /// GPADLs being assembled (control thread only).
    private let assemblers = Condition<[UInt32: GPADLAssembler]>([:])
    /// Completed GPADLs (handle → pages) and open requests (relid → OPENCHANNEL), for ``rings(relID:)``.
    private let gpadlPages = Condition<[UInt32: [UInt64]]>([:])
    private let opens = Condition<[UInt32: OpenChannel]>([:])

    init(partition: InProcessPartition, offers: [OfferChannel]) {
        self.partition = partition
        self.offers = Condition(offers)
        self.script = Condition({ _ in .normal })
    }

    /// Replaces the script; `body` decides the reply to each guest message.
    func setScript(_ body: @escaping @Sendable (ChannelMessage) -> Reply) { script.withLock { $0 = body } }

    /// Posts a message to the guest.
    func send(_ message: ChannelMessage) { send(raw: message.bytes) }

    /// Posts raw bytes to the guest, as a malicious host may.
    func send(raw bytes: [UInt8]) {
        // The guest drains its queue concurrently; wait for room as a SynIC sender would.
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while !partition.host.postMessage(bytes) {
            precondition(monotonicNanoseconds() < deadline, "guest message queue stayed full")
            sleepNanoseconds(100_000)
        }
    }

    /// Waits until the guest has posted a message matching `predicate`.
    @discardableResult
    func waitForMessage(timeoutNanoseconds: UInt64 = 10_000_000_000,
                        _ predicate: @escaping (ChannelMessage) -> Bool) -> ChannelMessage? {
        received.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.first(where: predicate) }
    }

    func messages(ofType type: ChannelMessageType) -> [ChannelMessage] {
        received.withLock { $0.filter { $0.type == type } }
    }

    // MARK: - HostMessageSink

    func guestMessage(connectionID: UInt32, _ bytes: [UInt8]) {
        guard let message = try? ChannelMessage.parse(bytes) else {
            preconditionFailure("the guest posted a malformed message: \(bytes)")
        }
        received.update { $0.append(message) }
        if case .openChannel(let o) = message { opens.withLock { $0[o.childRelID] = o } }
        switch script.withLock({ $0 })(message) {
        case .silence: break
        case .messages(let replies): for r in replies { send(r) }
        case .raw(let replies): for r in replies { send(raw: r) }
        case .normal: for r in normalReplies(to: message) { send(r) }
        }
    }

    func guestDisconnected() {}

    /// What a correct host answers to `message`.
    func normalReplies(to message: ChannelMessage) -> [ChannelMessage] {
        switch message {
        case .initiateContact:
            return [.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))]
        case .requestOffers:
            return offers.withLock { $0 }.map { .offerChannel($0) } + [.allOffersDelivered(AllOffersDelivered())]
        case .gpadlHeader(let h):
            guard let a = try? GPADLAssembler(header: h) else {
                return [.gpadlCreated(GPADLCreated(childRelID: h.childRelID, gpadl: h.gpadl, creationStatus: 1))]
            }
            assemblers.withLock { $0[h.gpadl] = a }
            return completed(h.gpadl)
        case .gpadlBody(let b):
            assemblers.withLock { m in _ = try? m[b.gpadl]?.add(body: b) }
            return completed(b.gpadl)
        case .openChannel(let o):
            return [.openChannelResult(OpenChannelResult(childRelID: o.childRelID, openID: o.openID, status: 0))]
        case .gpadlTeardown(let t):
            return [.gpadlTorndown(GPADLTorndown(gpadl: t.gpadl))]
        case .unload:
            return [.unloadResponse(UnloadResponse())]
        default:
            return []
        }
    }

    private func completed(_ handle: UInt32) -> [ChannelMessage] {
        guard let a = assemblers.withLock({ $0[handle] }), a.isComplete else { return [] }
        assemblers.withLock { _ = $0.removeValue(forKey: handle) }
        if let ranges = try? a.ranges() { gpadlPages.withLock { $0[handle] = ranges.flatMap(\.pfns) } }
        return [.gpadlCreated(GPADLCreated(childRelID: a.childRelID, gpadl: handle, creationStatus: 0))]
    }
}

extension ScriptedHost {
    /// The host's ends of the rings of the channel the guest last opened on `relID`.
    func rings(relID: UInt32) throws -> ScriptedRings {
        guard let open = opens.withLock({ $0[relID] }),
              let pages = gpadlPages.withLock({ $0[open.ringBufferGPADLHandle] }) else {
            throw GuestError.invalidArgument("relid \(relID) was not opened")
        }
        let split = Int(open.downstreamRingBufferPageOffset)
        return ScriptedRings(relID: relID, partition: partition, toGuestControlPFN: pages[split],
                             toGuest: OutgoingRing(memory: try partition.memory.ringMemory(pfns: pages[split...])),
                             fromGuest: IncomingRing(memory: try partition.memory.ringMemory(pfns: pages[..<split])))
    }
}

/// The host's side of one channel's data path, played by the test: writes packets into the guest's incoming
/// ring and raises its interrupt, reads what the guest sent, all without a ``ChannelEndpoint``.
final class ScriptedRings: @unchecked Sendable {
    let relID: UInt32
    let partition: InProcessPartition
    let toGuest: OutgoingRing
    let fromGuest: IncomingRing
    /// The control page of the guest's incoming ring, which a hostile host may scribble on.
    let toGuestControlPFN: UInt64
    private let buffer = PacketBuffer(capacity: 1 << 16)

    init(relID: UInt32, partition: InProcessPartition, toGuestControlPFN: UInt64, toGuest: OutgoingRing,
         fromGuest: IncomingRing) {
        self.relID = relID; self.partition = partition; self.toGuestControlPFN = toGuestControlPFN
        self.toGuest = toGuest; self.fromGuest = fromGuest
    }

    /// Stores `value` as the guest's incoming `write_index`, bypassing the ring.
    func corruptWriteIndex(_ value: UInt32) throws {
        let gpa = toGuestControlPFN * UInt64(GuestMemory.pageSize) + UInt64(RingControlLayout.writeIndexOffset)
        try partition.memory.writeBytes(gpa: gpa, withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }

    /// Writes one packet; false if the ring is full. Does not interrupt the guest.
    @discardableResult
    func write(type: VMBusPacketType = .dataInband, flags: UInt16 = 0, transactionID: UInt64 = 0,
               _ payload: [UInt8]) throws -> Bool {
        var batch = try toGuest.beginWrite()
        let appended: Result<Void, RingError> = payload.withUnsafeBytes { p in
            do throws(RingError) {
                try toGuest.append(&batch, type: type, flags: flags, transactionID: transactionID, payload: p)
                return .success(())
            } catch { return .failure(error) }
        }
        switch appended {
        case .success: break
        case .failure(.full): return false
        case .failure(let e): throw e
        }
        _ = toGuest.commit(batch)
        return true
    }

    /// Sets the channel's event flag and raises the guest's SINT.
    func interrupt() { partition.host.interruptGuest(relID: relID) }

    /// Writes a completion for `transactionID` and interrupts the guest.
    func complete(_ transactionID: UInt64, _ payload: [UInt8]) throws {
        guard try write(type: .completion, transactionID: transactionID, payload) else {
            throw GuestError.invalidArgument("the guest's incoming ring is full")
        }
        interrupt()
    }

    /// Every packet the guest has sent and the host not yet read: (transaction id, payload).
    func read() throws -> [(UInt64, [UInt8])] {
        var out: [(UInt64, [UInt8])] = []
        var batch = try fromGuest.beginRead()
        while let p = try fromGuest.next(&batch, into: buffer) {
            out.append((p.descriptor.transactionID, buffer.payloadArray(of: p)))
        }
        _ = fromGuest.commit(batch)
        return out
    }

    /// Polls until the guest has sent at least one packet (for up to ten seconds).
    func waitForPackets() throws -> [(UInt64, [UInt8])] {
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while true {
            let got = try read()
            if !got.isEmpty { return got }
            guard monotonicNanoseconds() < deadline else { throw GuestError.timedOut("a packet from the guest") }
            sleepNanoseconds(200_000)
        }
    }
}

/// A guest bus wired to a ``ScriptedHost``.
final class ScriptedSystem: @unchecked Sendable {
    let partition: InProcessPartition
    let host: ScriptedHost
    let guest: GuestBus
    private var connectAttempted = false

    /// - Parameter timeoutMilliseconds: how long the guest waits for each host response. Tests that expect a
    ///   timeout shorten it; the rest keep it long so a loaded machine cannot fail them.
    init(offers: [OfferChannel] = [], timeoutMilliseconds: UInt64 = 5_000, tryOrder: [VMBusVersion] = [.copper],
         memoryPages: Int = 512) throws {
        partition = try InProcessPartition(memoryPages: memoryPages)
        host = ScriptedHost(partition: partition, offers: offers)
        var logger = Logger(label: "vmbus.guest.test")
        logger.logLevel = .critical
        guest = GuestBus(synic: partition.guest,
                         configuration: GuestBus.Configuration(tryOrder: tryOrder,
                                                               responseTimeoutNanoseconds: timeoutMilliseconds * 1_000_000),
                         logger: logger)
        partition.host.start(host)
    }

    func connect() throws(GuestError) {
        connectAttempted = true
        try guest.connect()
    }

    /// Disconnects the guest (if it ever tried to connect) and stops the host side.
    func stop() {
        if connectAttempted { guest.disconnect() }
        partition.host.stop()
    }
}

/// An offer of class `classID` on `relID` for device instance `n`.
func offer(relID: UInt32, instance n: UInt32, subchannelIndex: UInt16 = 0,
           classID: GUID = EchoProtocol.classID) -> OfferChannel {
    OfferChannel(interfaceType: classID, interfaceInstance: InProcessSystem.instanceID(n),
                 subchannelIndex: subchannelIndex, childRelID: relID, monitorID: 0xFF, monitorAllocated: false,
                 isDedicatedInterrupt: true, connectionID: 0x2000 &+ relID)
}

/// Records what a channel delivers to its driver.
final class RecordingHandler: GuestChannelHandler, @unchecked Sendable {
    let failed = Condition<[(UInt64, GuestError)]>([])
    func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {
        failed.update { f in for c in contexts { f.append((c, error)) } }
    }
}

/// Polls `condition` for up to ten seconds.
func waitUntil(_ condition: () -> Bool) throws {
    let deadline = monotonicNanoseconds() + 10_000_000_000
    while !condition() {
        guard monotonicNanoseconds() < deadline else { throw GuestError.timedOut("test condition") }
        sleepNanoseconds(1_000_000)
    }
}

/// Runs `body` on a new thread; the result can be waited for.
final class Background<T: Sendable>: @unchecked Sendable {
    private let result = Condition<Result<T, GuestError>?>(nil)
    init(_ body: @escaping @Sendable () throws(GuestError) -> T) {
        startThread(name: "test-background") { [result] in
            let r: Result<T, GuestError>
            do throws(GuestError) { r = .success(try body()) } catch { r = .failure(error) }
            result.update { $0 = r }
        }
    }

    /// The outcome, or nil if `body` has not finished within the timeout.
    func wait(timeoutNanoseconds: UInt64 = 10_000_000_000) -> Result<T, GuestError>? {
        result.wait(timeoutNanoseconds: timeoutNanoseconds) { $0 }
    }
}

