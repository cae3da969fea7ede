import Testing
import VMBusICGuest
import VMBusICHost
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// The host's services against a raw guest answering badly: they time out, refuse or report a malformed
/// answer, count what they dropped, and never crash or hang.
@Suite(.serialized)
struct ICHostHostileGuestTests {
    func rig(_ service: ICService, _ answer: @escaping @Sendable ([UInt8], UInt64) -> [([UInt8], UInt64)]) throws -> (ICRig, ICHostChannel) {
        let config = ICHostServices.Configuration(services: [service], heartbeatIntervalNanoseconds: 20_000_000,
                                                  unresponsiveAfterNanoseconds: 300_000_000)
        let rig = try ICRig(configuration: config, responders: [])
        rig.system.guest.register(RawICGuest(service: service, answer: answer))
        rig.system.guest.flushWork()
        return (rig, rig.host.channels[0])
    }

    @Test func aNegotiationAnswerWithAVersionNeverOfferedIsARefusal() throws {
        let (rig, channel) = try rig(.kvp) { bytes, id in
            guard var out = RawICGuest.linuxNegotiation(.kvp, bytes) else { return [] }
            // Claim service version 7.7.
            let at = ICMessage.headerSize + 8 + 4
            out[at] = 7
            out[at + 2] = 7
            return [(out, id)]
        }
        defer { rig.stop() }
        #expect(eventually(5) { channel.phase == .refused })
    }

    @Test func answersThatMatchNoRequestAreCountedAndTheRequestTimesOut() throws {
        let (rig, channel) = try rig(.shutdown) { bytes, id in
            if let n = RawICGuest.linuxNegotiation(.shutdown, bytes) { return [(n, id)] }
            guard let m = try? ICMessage(packet: bytes) else { return [] }
            let reply = m.linuxResponse(status: .ok).wireBytes
            // A wrong transaction id, a short packet, an answer without the response flag, a flood.
            var notAResponse = m
            notAResponse.header.icflags = .hostRequest
            return [(reply, id &+ 1), (Array(reply.prefix(12)), id), (notAResponse.wireBytes, id)]
                + Array(repeating: (reply, 999), count: 40)
        }
        defer { rig.stop() }
        #expect(eventually(5) { channel.versions != nil })
        #expect(throws: ICHostError.timedOut("shutdown")) {
            _ = try rig.host.shutdown?.request([], timeoutNanoseconds: 300_000_000)
        }
        #expect(eventually(5) { channel.strayAnswers >= 41 && channel.malformedAnswers >= 2 })
        // The service is free again for the next request (which times out the same way).
        #expect(throws: ICHostError.timedOut("shutdown")) {
            _ = try rig.host.shutdown?.request([], timeoutNanoseconds: 200_000_000)
        }
    }

    @Test func anAnswerOfAnotherTypeIsMalformed() throws {
        let (rig, _) = try rig(.vss) { bytes, id in
            if let n = RawICGuest.linuxNegotiation(.vss, bytes) { return [(n, id)] }
            guard var m = try? ICMessage(packet: bytes) else { return [] }
            m.header.icmsgtype = .heartbeat
            return [(m.linuxResponse(status: .ok).wireBytes, id)]
        }
        defer { rig.stop() }
        let vss = try #require(rig.host.vss)
        #expect(eventually(5) { vss.channel.versions != nil })
        #expect(throws: ICHostError.self) { _ = try vss.freeze() }
    }

    @Test func aTruncatedKVPAnswerIsMalformedNotACrash() throws {
        let (rig, _) = try rig(.kvp) { bytes, id in
            if let n = RawICGuest.linuxNegotiation(.kvp, bytes) { return [(n, id)] }
            guard let m = try? ICMessage(packet: bytes) else { return [] }
            var short = m.linuxResponse(status: .ok)
            short.body = Array(short.body.prefix(20))
            return [(short.wireBytes, id)]
        }
        defer { rig.stop() }
        let kvp = try #require(rig.host.kvp)
        #expect(eventually(5) { kvp.channel.versions != nil })
        #expect(throws: ICHostError.self) { _ = try kvp.get(pool: .external, key: "k", timeoutNanoseconds: 2_000_000_000) }
        // A list from a guest that never says HV_S_CONT stops at the limit.
        #expect(throws: ICHostError.self) { _ = try kvp.list(pool: .external, limit: 3) }
    }

    @Test func aKVPGuestThatNeverEndsItsListIsCut() throws {
        let (rig, _) = try rig(.kvp) { bytes, id in
            if let n = RawICGuest.linuxNegotiation(.kvp, bytes) { return [(n, id)] }
            guard let m = try? ICMessage(packet: bytes) else { return [] }
            return [(m.linuxResponse(status: .ok).wireBytes, id)]
        }
        defer { rig.stop() }
        let kvp = try #require(rig.host.kvp)
        #expect(eventually(5) { kvp.channel.versions != nil })
        let list = try kvp.list(pool: .external, limit: 5)
        #expect(list.pairs.count == 5)
    }

    @Test func wrongHeartbeatSequencesAreNotAlive() throws {
        let (rig, _) = try rig(.heartbeat) { bytes, id in
            if let n = RawICGuest.linuxNegotiation(.heartbeat, bytes) { return [(n, id)] }
            guard let m = try? ICMessage(packet: bytes) else { return [] }
            // The sequence number back unchanged, not plus one.
            return [(m.linuxResponse(status: .ok).wireBytes, id)]
        }
        defer { rig.stop() }
        let hb = try #require(rig.host.heartbeat)
        #expect(eventually(5) { hb.status.wrongAnswers >= 3 })
        #expect(!hb.status.isAlive)
        #expect(hb.status.lastSequence == nil)
    }

    @Test func aSilentGuestNeverNegotiates() throws {
        let (rig, channel) = try rig(.fcopy) { _, _ in [] }
        defer { rig.stop() }
        #expect(eventually(5) { channel.phase == .negotiating })
        #expect(throws: ICHostError.negotiating("file copy")) {
            _ = try rig.host.fileCopy?.copy(source: "/etc/hostname", destination: "/tmp/x", flags: [],
                                            timeoutNanoseconds: 200_000_000)
        }
    }
}
