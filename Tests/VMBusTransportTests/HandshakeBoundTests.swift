#if canImport(Glibc)
import Glibc
#endif
import VMBusSync
import Testing
import VMBusGuest
import VMBusHost
import VMBusTestSupport
@testable import VMBusTransport

/// Issue 6 §2 and §5: handshakes are bounded in number and time, a thread that cannot start fails only its
/// connection, and stop() ends the handshakes in progress.
@Suite(.serialized)
struct HandshakeBoundTests {
    /// Thread names (prefixes) whose start is made to fail.
    final class FailingThreads: Sendable {
        let prefixes = Lock<Set<String>>([])
        let failures = Lock(0)
        func configure(_ c: inout SocketHostListener.Configuration) {
            c.spawn = { [self] name, body throws(TransportError) in
                if prefixes.withLock({ p in p.contains { name.hasPrefix($0) } }) {
                    failures.withLock { $0 += 1 }
                    throw .system(call: "pthread_create(\(name))", errno: EAGAIN)
                }
                try spawnThread(name: name, body)
            }
        }
    }

    @Test func silentConnectionsBeyondTheCapAreClosedAtOnceAndARealGuestIsStillServed() throws {
        let fixture = try HostFixture(configuration: .init(helloTimeoutMilliseconds: 20_000, maxHandshakes: 4))
        defer { fixture.stop() }
        var silent: [RogueGuest] = []
        for _ in 0..<12 { silent.append(try RogueGuest(path: fixture.socket)) }
        try eventually("8 connections closed at once", seconds: 5) {
            fixture.listener.droppedConnections.load(ordering: .relaxed) == 8
        }
        #expect(fixture.listener.handshakesInFlight == 4)
        var closed = 0, waiting = 0
        for s in silent {
            switch s.receive(timeoutMilliseconds: 200) {
            case .closed: closed += 1
            case .timedOut: waiting += 1
            default: break
            }
        }
        #expect(closed == 8)
        #expect(waiting == 4)
        // While 4 silent peers hold every slot a new guest is closed too (the cost of the cap); once they go,
        // their slots are free at once and a real guest is served.
        silent.removeAll()
        try eventually("handshake slots free", seconds: 5) { fixture.listener.handshakesInFlight == 0 }
        let (bus, completions) = try realGuestEchoes(100, through: fixture.socket)
        #expect(completions == 100)
        #expect(bus.disconnect())
    }

    @Test func aThreadThatCannotStartFailsItsConnectionNotTheHost() throws {
        let failing = FailingThreads()
        var configuration = SocketHostListener.Configuration()
        failing.configure(&configuration)
        let fixture = try HostFixture(configuration: configuration)
        defer { fixture.stop() }

        // No handshake thread: the connection is closed, counted, and the host goes on.
        failing.prefixes.withLock { $0 = ["vmbus-hello"] }
        let a = try RogueGuest(path: fixture.socket)
        #expect(a.waitForHangUp())
        #expect(fixture.listener.refusedConnections.load(ordering: .relaxed) == 1)
        #expect(fixture.listener.handshakesInFlight == 0)

        // No thread to release the partition: the guest is disconnected and the partition released at once.
        failing.prefixes.withLock { $0 = ["vmbus-part"] }
        let b = try RogueGuest(path: fixture.socket)
        #expect(try b.hello().status == .ok)
        #expect(b.waitForHangUp())
        try eventually("partition released") { fixture.listener.releasedPartitions.load(ordering: .relaxed) == 1 }
        #expect(fixture.listener.partitionCount == 0)
        #expect(failing.failures.withLock { $0 } == 2)

        // Threads again: the host serves a guest.
        failing.prefixes.withLock { $0 = [] }
        let c = try RogueGuest(path: fixture.socket)
        #expect(try c.hello().status == .ok)
        _ = try c.connectVMBus()

        // A listener whose accepting thread cannot start throws from start().
        let directory = try SocketDirectory()
        var broken = SocketHostListener.Configuration()
        failing.configure(&broken)
        failing.prefixes.withLock { $0 = ["vmbus-listen"] }
        let listener = try SocketHostListener(path: directory.socket, configuration: broken,
                                              logger: quietLogger("test.listener")) { _ in throw FixtureError("unused") }
        #expect(throws: TransportError.self) { try listener.start() }
        listener.stop()
    }

    @Test func stopEndsHandshakesInProgressAtOnce() throws {
        let fixture = try HostFixture(configuration: .init(helloTimeoutMilliseconds: 20_000))
        let silent = try RogueGuest(path: fixture.socket)
        try eventually("handshake under way") { fixture.listener.handshakesInFlight == 1 }
        let start = monotonicNanoseconds()
        fixture.stop()
        #expect(monotonicNanoseconds() - start < 5_000_000_000)
        #expect(fixture.listener.handshakesInFlight == 0)
        #expect(silent.waitForHangUp(timeoutMilliseconds: 2_000))
    }

    @Test func theSocketIsCreated0600WhateverTheUmaskAndTheUmaskIsLeftAlone() throws {
        let old = umask(0)
        defer { umask(old) }
        let directory = try SocketDirectory()
        let listening = try UnixSeqpacketSocket.listen(path: directory.socket)
        defer { listening.close() }
        var st = stat()
        #expect(stat(directory.socket, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(umask(0) == 0)
    }
}
