import Testing
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport
import VMBusTransport

/// Issue 9 §6: a million frames of random sizes from 60 to 9018 bytes through the rings each way, every
/// byte verified and the order kept. Frames are sent and checked in chunks, so memory stays bounded.
///
/// Batches of random length (frames sent and delivered with `more`, each chunk's last without) cross
/// batching's every edge: full sections and packets, frames too large to batch, busy in the middle of a batch.
///
/// The full million runs in release builds (`.ci/run` tests with `-c release`); a debug build moves a
/// hundredth of it, and sanitizers scale that down further (``Sanitizer``), so the debug suite stays quick.
@Suite(.serialized)
struct NetMillionFramesTests {
#if DEBUG
    static let frameCount = Sanitizer.scaled(10_000, minimum: 1000)
#else
    static let frameCount = Sanitizer.scaled(1_000_000, minimum: 1000)
#endif
    static let chunk = 500

    /// Deterministic frames: sizes from a SplitMix64 stream, contents a window of a random pool that moves
    /// with the sequence number (cheap to make and to check a million times, and no two neighbours alike).
    struct Frames {
        static let pool: [UInt8] = {
            var seed = SplitMix64(seed: 0x9018)
            return (0..<(64 * 1024)).map { _ in UInt8(truncatingIfNeeded: seed.next()) }
        }()
        var sizes: SplitMix64
        var sequence = 0

        init(seed: UInt64) { sizes = SplitMix64(seed: seed) }

        mutating func next() -> [UInt8] {
            let length = Int(sizes.next() % (9018 - 60 + 1)) + 60
            var f = [UInt8](repeating: 0, count: length)
            for i in 0..<6 { f[i] = 0xFF }
            for i in 0..<6 { f[6 + i] = NetRig.mac[i] }
            f[12] = 0x88
            f[13] = 0xB5
            for i in 0..<4 { f[14 + i] = UInt8(truncatingIfNeeded: sequence >> (8 * i)) }
            let start = (sequence &* 7919) % (Self.pool.count - 9018)
            f.replaceSubrange(18..<length, with: Self.pool[start..<(start + length - 18)])
            sequence += 1
            return f
        }
    }

    /// Compares what arrived with what was sent, frame by frame; records the first mismatch only.
    static func verify(_ got: [[UInt8]], _ expected: inout Frames, count: Int) -> Bool {
        guard got.count == count else {
            Issue.record("\(got.count) of \(count) frames arrived (from frame \(expected.sequence))")
            return false
        }
        for frame in got {
            let want = expected.next()
            if let d = firstDifference(frame, want) {
                Issue.record("frame \(expected.sequence - 1) (\(want.count) bytes, got \(frame.count)) differs at \(d)")
                return false
            }
        }
        return true
    }

    /// Whether frame `k` of a chunk of `n` says more follow: runs of 0 to 15 frames end a batch, and the
    /// chunk's last always does (the check that follows waits for every frame).
    static func more(_ k: Int, _ n: Int, _ sequence: Int) -> Bool {
        k < n - 1 && (sequence &* 2_654_435_761) >> 7 & 15 != 0
    }

    @Test func aMillionFramesGuestToHostArriveIntactAndInOrder() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        var sending = Frames(seed: 11), checking = Frames(seed: 11)
        var left = Self.frameCount
        while left > 0 {
            let n = min(Self.chunk, left)
            for k in 0..<n {
                guard NetDataPathTests.sendRetrying(rig.nic, sending.next(), more: Self.more(k, n, sending.sequence)) == .sent else {
                    Issue.record("frame \(sending.sequence - 1) not sent")
                    return
                }
            }
            guard Self.verify(rig.backend.take(n), &checking, count: n) else { return }
            left -= n
        }
        #expect(rig.nic.counterSnapshot.txPackets == Self.frameCount)
        #expect(rig.nic.counterSnapshot.txBatched > 0, "some frames went several to a section")
        #expect(rig.vsp.counterSnapshot.protocolErrors == 0, "\(rig.vsp.counterSnapshot.lastError ?? "")")
    }

    @Test func aMillionFramesHostToGuestArriveIntactAndInOrder() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        let port = try #require(rig.backend.waitForPort())
        var sending = Frames(seed: 12), checking = Frames(seed: 12)
        var left = Self.frameCount
        while left > 0 {
            let n = min(Self.chunk, left)
            for k in 0..<n {
                guard NetDataPathTests.deliverRetrying(port, rig.backend, sending.next(), more: Self.more(k, n, sending.sequence)) == .accepted else {
                    Issue.record("frame \(sending.sequence - 1) not accepted")
                    return
                }
            }
            guard Self.verify(rig.takeReceived(n), &checking, count: n) else { return }
            left -= n
        }
        #expect(rig.nic.counterSnapshot.rxPackets == Self.frameCount)
        #expect(rig.nic.counterSnapshot.malformed == 0)
        #expect(eventually { rig.vsp.outstandingReceiveSlots == 0 }, "every slot came back")
    }
}
