import Atomics
import VMBusGuest
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// The guest half of the echo device: a VSC that binds to ``EchoProtocol/classID``, opens the primary channel
/// on probe, can open sub-channels and pump echo requests with contents verified.
public final class EchoDriver: VMBusDriver {
    public let name = "echo_vsc"
    public var classIDs: [GUID] { [EchoProtocol.classID] }
    public let ringSize: Int
    private let bound = Condition<[GUID: EchoClient]>([:])

    public init(ringSize: Int = 64 * 1024) { self.ringSize = ringSize }

    public func probe(_ device: GuestDevice) throws {
        let client = EchoClient(device: device)
        try client.openPrimary(ringSize: ringSize)
        bound.withLock { $0[device.instanceID] = client }
    }

    public func remove(_ device: GuestDevice) {
        let client = bound.withLock { $0.removeValue(forKey: device.instanceID) }
        client?.closeAll()
    }

    public var clients: [EchoClient] { bound.withLock { b in b.keys.sorted().compactMap { b[$0] } } }
    public func client(for instance: GUID) -> EchoClient? { bound.withLock { $0[instance] } }
}

/// One bound echo device in the guest.
public final class EchoClient: GuestChannelHandler, @unchecked Sendable {
    public let device: GuestDevice
    private let channelsLock = Condition<[GuestChannel]>([])
    public let completions = ManagedAtomic<UInt64>(0)
    public let mismatches = ManagedAtomic<UInt64>(0)
    public let failedRequests = ManagedAtomic<UInt64>(0)
    public let unsolicited = ManagedAtomic<UInt64>(0)
    /// Completions per channel slot, to wake senders waiting for their window.
    private let progress = Condition<UInt64>(0)
    private let senderWaiting = ManagedAtomic<Int>(0)
    /// Completions and failures per channel (relid), so each pump keeps its own window.
    private let finishedByRelID = Condition<[UInt32: ManagedAtomic<UInt64>]>([:])

    init(device: GuestDevice) { self.device = device }

    public var channels: [GuestChannel] { channelsLock.withLock { $0 } }

    func openPrimary(ringSize: Int) throws {
        let c = try device.open(outgoingRingSize: ringSize, incomingRingSize: ringSize, handler: self)
        channelsLock.withLock { $0.append(c) }
    }

    /// Asks the host for `count` sub-channels (the device protocol's request) and opens them.
    public func openSubchannels(_ count: Int, ringSize: Int = 64 * 1024, scatteredPages: Bool = false) throws {
        guard let primary = channels.first else { throw GuestError.notConnected }
        let reply = try primary.request(EchoProtocol.createSubchannelsRequest(count: UInt32(count)))
        var r = WireReader(reply)
        let status = try r.readUInt32()
        let offered = try r.readUInt32()
        guard status == 0, offered == UInt32(count) else {
            throw GuestError.refused("\(count) sub-channels (host offered \(offered))", status: status)
        }
        for offer in try device.waitForSubchannels(count) {
            let c = try device.open(offer, outgoingRingSize: ringSize, incomingRingSize: ringSize,
                                    scatteredPages: scatteredPages, handler: self)
            channelsLock.withLock { $0.append(c) }
        }
    }

    func closeAll() {
        let all = channelsLock.withLock { c -> [GuestChannel] in defer { c.removeAll() }; return c }
        // Sub-channels before the primary, as Linux closes them.
        for c in all.reversed() { c.close() }
    }

    /// The payload of echo request `sequence` of `size` bytes (≥ 16): header, sequence, then a pattern.
    @inline(__always)
    static func fill(_ p: UnsafeMutableRawBufferPointer, sequence: UInt64) {
        p.storeBytes(of: EchoProtocol.Operation.echo.rawValue.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
        var i = 16
        while i < p.count { p[i] = UInt8(truncatingIfNeeded: sequence &+ UInt64(i)); i += 1 }
    }

    /// Sends `count` echo requests of `size` bytes on `channel`, keeping up to `window` outstanding, and
    /// waits for all completions. Every completion's payload is checked against what was sent.
    ///
    /// - Throws: ``EchoPumpError/timedOut(completed:of:)`` when the completions stop coming for
    ///   `timeoutNanoseconds` in all (a silent host), or a ``GuestError`` from sending.
    public func pump(channel: GuestChannel, count: Int, size: Int = 64, window: Int = 128,
                     timeoutNanoseconds: UInt64 = 120_000_000_000) throws {
        guard size >= 16, size <= 1 << 20, window > 0 else {
            throw GuestError.invalidArgument("echo requests are 16 B...1 MiB with a window of at least one")
        }
        let finished = counter(for: channel.relID)
        let start = finished.load(ordering: .acquiring)
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer { payload.deallocate() }
        var sent = 0
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        func done() -> Int { Int(finished.load(ordering: .acquiring) - start) }
        while sent < count {
            while sent - done() >= window {
                try waitForProgress(deadline: deadline, completed: done(), of: count)
            }
            let seq = UInt64(sent)
            Self.fill(payload, sequence: seq)
            // context = sequence | size << 40, so the completion can be verified without a table.
            try channel.sendRequest(UnsafeRawBufferPointer(payload), context: seq | UInt64(size) << 40)
            sent += 1
        }
        while done() < count { try waitForProgress(deadline: deadline, completed: done(), of: count) }
    }

    private func counter(for relID: UInt32) -> ManagedAtomic<UInt64> {
        finishedByRelID.withLock { m in
            if let c = m[relID] { return c }
            let c = ManagedAtomic<UInt64>(0)
            m[relID] = c
            return c
        }
    }

    private func waitForProgress(deadline: UInt64, completed: Int, of count: Int) throws(EchoPumpError) {
        let seen = progress.withLock { $0 }
        senderWaiting.wrappingIncrement(ordering: .acquiringAndReleasing)
        _ = progress.wait(timeoutNanoseconds: 1_000_000) { $0 != seen ? true : nil }
        senderWaiting.wrappingDecrement(ordering: .acquiringAndReleasing)
        // A host that stops answering is a failure of the test, not of the process.
        guard monotonicNanoseconds() < deadline else { throw .timedOut(completed: completed, of: count) }
    }

    private func noteProgress() {
        if senderWaiting.load(ordering: .acquiring) > 0 { progress.update { $0 &+= 1 } }
    }

    public func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        let seq = context & 0xFF_FFFF_FFFF
        let size = Int(context >> 40)
        let ok = buffer.withUnsafeBytes(of: packet) { raw -> Bool in
            let p = UnsafeRawBufferPointer(rebasing: raw[packet.payloadRange])
            guard p.count >= size, size >= 16 else { return false }
            guard p.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == seq.littleEndian else { return false }
            var i = 16
            while i < size {
                if p[i] != UInt8(truncatingIfNeeded: seq &+ UInt64(i)) { return false }
                i += 1
            }
            return true
        }
        if !ok { mismatches.wrappingIncrement(ordering: .relaxed) }
        completions.wrappingIncrement(ordering: .releasing)
        counter(for: channel.relID).wrappingIncrement(ordering: .releasing)
        noteProgress()
    }

    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        unsolicited.wrappingIncrement(ordering: .relaxed)
    }

    public func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {
        failedRequests.wrappingIncrement(by: UInt64(contexts.count), ordering: .releasing)
        counter(for: channel.relID).wrappingIncrement(by: UInt64(contexts.count), ordering: .releasing)
        progress.update { $0 &+= 1 }
    }
}

/// Why ``EchoClient/pump(channel:count:size:window:timeoutNanoseconds:)`` gave up.
public enum EchoPumpError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The host stopped completing echo requests.
    case timedOut(completed: Int, of: Int)

    public var description: String {
        switch self {
        case .timedOut(let completed, let count):
            return "echo pump timed out: the host answered \(completed) of \(count) requests"
        }
    }
}
