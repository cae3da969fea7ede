import VMBusICProtocol
import VMBusTransport
import VMBusWire

/// The heartbeat service: a beat every ``interval``; the guest answers each with the sequence number plus
/// one. The guest is unresponsive once no correct answer came for ``unresponsiveAfter``.
public final class HostHeartbeat: Sendable {
    public let channel: ICHostChannel
    public let intervalNanoseconds: UInt64
    public let unresponsiveAfterNanoseconds: UInt64

    /// What the host knows of the guest's heartbeat.
    public struct Status: Equatable, Sendable {
        /// The sequence number of the last correct answer (the guest's, so ours plus one).
        public var lastSequence: UInt64?
        /// Nanoseconds since that answer (or since the channel opened, while none came).
        public var ageNanoseconds: UInt64?
        public var isAlive: Bool
        public var phase: ICHostChannel.Phase
        /// Answers with a wrong sequence number.
        public var wrongAnswers: UInt64
    }

    private struct State {
        var lastSequence: UInt64?
        var lastAnswer: UInt64?
        var openedAt: UInt64?
        var nextSequence: UInt64 = 0
        var wrongAnswers: UInt64 = 0
        var running = false
        /// Bumped per open, so a beat thread of a closed channel ends.
        var generation: UInt64 = 0
    }
    private let state = Condition(State())

    public init(channel: ICHostChannel, intervalNanoseconds: UInt64 = 1_000_000_000,
                unresponsiveAfterNanoseconds: UInt64 = 5_000_000_000) {
        self.channel = channel
        self.intervalNanoseconds = max(intervalNanoseconds, 10_000_000)
        self.unresponsiveAfterNanoseconds = unresponsiveAfterNanoseconds
        channel.onReady { [weak self] _ in self?.start() }
        channel.onClosed { [weak self] in self?.stop() }
    }

    public var status: Status {
        let now = monotonicNanoseconds()
        let phase = channel.phase
        return state.withLock { s in
            let since = s.lastAnswer ?? s.openedAt
            let age = since.map { now &- $0 }
            let alive = s.running && s.lastAnswer != nil && (age ?? .max) < unresponsiveAfterNanoseconds
            return Status(lastSequence: s.lastSequence, ageNanoseconds: age, isAlive: alive, phase: phase,
                          wrongAnswers: s.wrongAnswers)
        }
    }

    private func start() {
        let generation: UInt64? = state.update { s in
            guard !s.running else { return nil }
            s.running = true
            s.generation &+= 1
            s.openedAt = monotonicNanoseconds()
            s.lastAnswer = nil
            return s.generation
        }
        guard let generation else { return }
        // One thread per partition, for the channel's lifetime; it never holds the channel worker.
        if !startThread(name: "ic-heartbeat", { [self] in beat(generation) }) {
            state.update { $0.running = false }
        }
    }

    private func stop() {
        state.update { s in
            s.running = false
            s.generation &+= 1
        }
    }

    private func beat(_ generation: UInt64) {
        while true {
            let sequence: UInt64? = state.withLock { s in
                guard s.running, s.generation == generation else { return nil }
                defer { s.nextSequence &+= 2 }
                return s.nextSequence
            }
            guard let sequence else { return }
            let started = monotonicNanoseconds()
            let body = HeartbeatMessage(seqNum: sequence).wireBytes
            if let answer = try? channel.transact(.heartbeat, body: body, timeoutNanoseconds: intervalNanoseconds),
               answer.header.status == .ok, let hb = try? answer.decodeBody(HeartbeatMessage.self) {
                state.withLock { s in
                    if hb.seqNum == sequence &+ 1 {
                        s.lastSequence = hb.seqNum
                        s.lastAnswer = monotonicNanoseconds()
                    } else {
                        s.wrongAnswers += 1
                    }
                }
            }
            let elapsed = monotonicNanoseconds() &- started
            let stopped = state.wait(timeoutNanoseconds: intervalNanoseconds &- min(elapsed, intervalNanoseconds)) { s in
                s.running && s.generation == generation ? nil : true
            }
            if stopped != nil { return }
        }
    }
}
