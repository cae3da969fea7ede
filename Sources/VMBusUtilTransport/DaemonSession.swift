import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

/// Linux's HV_UTIL_TIMEOUT (drivers/hv/hyperv_vmbus.h): how long a daemon has to answer, in seconds.
public let HV_UTIL_TIMEOUT: UInt64 = 30

/// What became of one request handed to a daemon.
public enum DaemonOutcome: Equatable, Sendable {
    /// The daemon's answer: its whole message.
    case answered([UInt8])
    /// No daemon is registered (none opened the device, or it has not written its registration yet): the
    /// service answers itself.
    case noDaemon
    /// Another request is in flight: the services send one at a time, so this is a caller's bug.
    case busy
    /// The daemon did not answer in time (Linux answers the host HV_E_FAIL then, after HV_UTIL_TIMEOUT).
    case timedOut
    /// The daemon closed the device before it answered.
    case gone
}

/// The kernel side of one util device, shared by the three services: the daemon's registration, then one
/// request at a time, each with a timeout. The service says how a registration looks and what it answers,
/// and how long an answer must be.
final class DaemonSession: @unchecked Sendable {
    let device: UtilTransportDevice

    private enum Phase { case closed, awaitingRegistration, ready }
    private struct State {
        var phase = Phase.closed
        var waiting = false
        var answer: [UInt8]?
        /// Bumped when the daemon goes, so a waiter sees it even if another opened meanwhile.
        var session = 0
        var registered: UInt32 = 0
    }
    private let state = Condition(State())

    /// - Parameters:
    ///   - register: checks the daemon's first message; returns the version it registered and the message to
    ///     send back (if the protocol has one), or nil to refuse it.
    ///   - answerSizeIsValid: whether a later message has an answer's length.
    init(device: UtilTransportDevice,
         register: @escaping @Sendable ([UInt8]) -> (version: UInt32, reply: [UInt8]?)?,
         answerSizeIsValid: @escaping @Sendable (Int) -> Bool) {
        self.device = device
        device.setHandlers(open: { [state] in
            state.update { $0.phase = .awaitingRegistration; $0.registered = 0 }
        }, release: { [state] in
            state.update { s in
                s.phase = .closed
                s.session += 1
                s.answer = nil
            }
        }, message: { [state, device] bytes in
            enum Step { case register, answer, refuse }
            let step: Step = state.withLock { s in
                switch s.phase {
                case .closed: return .refuse
                case .awaitingRegistration: return .register
                case .ready: return s.waiting && s.answer == nil && answerSizeIsValid(bytes.count) ? .answer : .refuse
                }
            }
            switch step {
            case .refuse:
                // A message nobody asked for, or of the wrong size: refused as Linux does.
                return -EINVAL
            case .register:
                guard let (version, reply) = register(bytes) else { return -EINVAL }
                if let reply, device.send(reply) != 0 { return -EFAULT }
                state.update { s in
                    if s.phase == .awaitingRegistration { s.phase = .ready; s.registered = version }
                }
                return 0
            case .answer:
                let taken = state.update { s -> Bool in
                    guard s.waiting, s.answer == nil else { return false }
                    s.answer = bytes
                    return true
                }
                return taken ? 0 : -EINVAL
            }
        })
    }

    /// Whether a daemon has registered.
    var isRegistered: Bool { state.withLock { $0.phase == .ready } }
    /// The version the daemon registered with (0 before it did).
    var registeredVersion: UInt32 { state.withLock { $0.registered } }

    /// Hands `message` to the daemon and waits for its answer.
    func exchange(_ message: [UInt8], timeoutNanoseconds: UInt64) -> DaemonOutcome {
        let start: (DaemonOutcome?, Int) = state.update { s in
            guard s.phase == .ready else { return (.noDaemon, 0) }
            guard !s.waiting else { return (.busy, 0) }
            s.waiting = true
            s.answer = nil
            return (nil, s.session)
        }
        if let refused = start.0 { return refused }
        let session = start.1
        defer { state.update { $0.waiting = false; $0.answer = nil } }
        // The registration's answer may still be unread: give the daemon the request's own time to read it.
        guard device.send(message, waitingNanoseconds: timeoutNanoseconds) == 0 else { return .noDaemon }
        let outcome = state.wait(timeoutNanoseconds: timeoutNanoseconds) { s -> DaemonOutcome? in
            if s.session != session { return .gone }
            return s.answer.map { .answered($0) }
        }
        guard let outcome else {
            // The daemon may not even have read it: take it back, so it does not answer a request we gave up.
            device.withdraw()
            return .timedOut
        }
        return outcome
    }
}

/// The 32-bit messages of the VSS and file-copy handshakes and of file-copy answers.
enum Word32 {
    static func bytes(_ v: UInt32) -> [UInt8] {
        var w = WireWriter(capacity: 4)
        w.writeUInt32(v)
        return w.bytes
    }

    /// The value of a message that is exactly 4 bytes long.
    static func value(_ b: [UInt8]) -> UInt32? {
        guard b.count == 4 else { return nil }
        return try? WireReader(b).getUInt32(at: 0)
    }
}
