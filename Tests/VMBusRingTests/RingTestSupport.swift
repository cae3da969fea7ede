import CVMBusShims
import VMBusMemory
import VMBusProtocol
import Synchronization
import VMBusSync
@testable import VMBusRing

#if canImport(Glibc)
import Glibc
#endif

/// A ring in fresh memfd-backed memory, with its writer and reader ends (both ends of the SAME ring).
struct TestRing {
    let guest: GuestMemory
    let memory: RingMemory
    let writer: OutgoingRing
    let reader: IncomingRing

    /// A contiguous ring with `dataPages` data pages, control page initialised as Linux does.
    init(dataPages: Int = 4) throws {
        guest = try GuestMemory(pages: dataPages + 1)
        memory = try RingMemory(contiguous: guest.base, totalSize: (dataPages + 1) * 4096, owner: guest)
        OutgoingRing.initializeControl(memory)
        writer = OutgoingRing(memory: memory)
        reader = IncomingRing(memory: memory)
    }

    /// A ring over pages from a `PageAllocator`, deliberately scattered when `scattered` is true.
    init(dataPages: Int, scattered: Bool) throws {
        guest = try GuestMemory(pages: 4 * (dataPages + 1) + 8)
        let pfns = try PageAllocator(memory: guest).allocate(pages: dataPages + 1, scattered: scattered)
        memory = try guest.ringMemory(pfns: pfns[...])
        OutgoingRing.initializeControl(memory)
        writer = OutgoingRing(memory: memory)
        reader = IncomingRing(memory: memory)
    }

    var dataSize: Int { memory.dataSize }

    /// Raw little-endian u32 of the control page.
    func controlWord(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: memory.controlPage.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Writes a raw control word, as a misbehaving peer would.
    func setControlWord(_ offset: Int, _ value: UInt32) {
        memory.controlPage.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// The logical data area (offset 0 ... dataSize-1), gathered across pages.
    func dataBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: dataSize)
        out.withUnsafeMutableBytes { memory.copyOut(from: 0, into: $0.baseAddress!, count: dataSize) }
        return out
    }

    /// Writes raw bytes into the data area at `offset` (wrapping), as a misbehaving peer would.
    func pokeData(_ offset: Int, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { memory.copyIn(to: offset, from: $0.baseAddress!, count: bytes.count) }
    }

    /// Sets both indices to `offset` (an empty ring positioned elsewhere, to exercise the wrap early).
    func position(at offset: Int) {
        setControlWord(0, UInt32(offset))
        setControlWord(4, UInt32(offset))
    }
}

/// SplitMix64: small, fast, deterministic.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix64(state)
    }
}

/// The SplitMix64 finaliser (also used by Scripts/foreign-ring/harness.c).
@inline(__always)
func mix64(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A fixed pseudo-random byte pattern; packets carry slices of it so that contents can be checked with memcmp.
final class Pattern: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    /// Slices start below this offset.
    let startRange: Int

    init(seed: UInt64, words: Int = 1280, startRange: Int = 8192) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: words * 8, alignment: 16)
        self.startRange = startRange
        for w in 0..<words {
            bytes.storeBytes(of: mix64(seed &+ UInt64(w)).littleEndian, toByteOffset: w * 8, as: UInt64.self)
        }
    }
    deinit { bytes.deallocate() }

    func slice(_ start: Int, _ count: Int) -> UnsafeRawBufferPointer {
        precondition(start + count <= bytes.count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count)])
    }

    /// Whether `count` bytes at `pointer` equal the slice at `start`.
    func matches(_ pointer: UnsafeRawPointer, start: Int, count: Int) -> Bool {
        count == 0 || memcmp(pointer, bytes.baseAddress! + start, count) == 0
    }
}

/// Appends a packet whose payload is `payload`.
func append(_ ring: OutgoingRing, _ batch: inout OutgoingBatch, _ payload: [UInt8], type: VMBusPacketType = .dataInband,
            flags: UInt16 = 0, transactionID: UInt64 = 0, header: [UInt8] = []) throws(RingError) {
    let r: Result<Void, RingError> = header.withUnsafeBytes { h in
        payload.withUnsafeBytes { p in
            Result { () throws(RingError) in
                try ring.append(&batch, type: type, flags: flags, transactionID: transactionID, header: h, payload: p)
            }
        }
    }
    try r.get()
}

/// Appends a packet; returns false if the ring is full (other errors are thrown).
func appendUnlessFull(_ ring: OutgoingRing, _ batch: inout OutgoingBatch, _ payload: [UInt8]) throws(RingError) -> Bool {
    do {
        try append(ring, &batch, payload)
        return true
    } catch {
        if case .full = error { return false }
        throw error
    }
}

/// Writes one packet in its own batch and commits it; returns the commit's signal decision.
@discardableResult
func send(_ ring: OutgoingRing, _ payload: [UInt8], type: VMBusPacketType = .dataInband, flags: UInt16 = 0,
          transactionID: UInt64 = 0, header: [UInt8] = []) throws(RingError) -> Bool {
    var batch = try ring.beginWrite()
    try append(ring, &batch, payload, type: type, flags: flags, transactionID: transactionID, header: header)
    return ring.commit(batch)
}

/// Reads every available packet in one batch, commits, and returns (descriptor, payload) pairs and the signal.
func receiveAll(_ ring: IncomingRing, buffer: PacketBuffer = PacketBuffer())
    throws(RingError) -> (packets: [(PacketDescriptor, [UInt8])], signal: Bool)
{
    var batch = try ring.beginRead()
    var out: [(PacketDescriptor, [UInt8])] = []
    while let p = try ring.next(&batch, into: buffer) {
        out.append((p.descriptor, buffer.payloadArray(of: p)))
        // More packets than can fit means the ring is broken: stop instead of looping.
        if out.count > ring.dataSize / 24 { break }
    }
    return (out, ring.commit(batch))
}

/// Spin briefly, then yield the CPU: the waits of the threaded tests (2 vCPUs, debug builds).
struct Backoff {
    private var spins = 0
    mutating func pause() {
        spins += 1
        if spins >= 64 { spins = 0; sched_yield() }
    }
    mutating func reset() { spins = 0 }
}

/// Runs `bodies` on their own POSIX threads and waits for all of them.
func runOnThreads(_ bodies: [@Sendable () -> Void]) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var threads: [pthread_t] = []
    for body in bodies {
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            b.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
}

/// The k-th random number of packet i of stream `seed` (same function as Scripts/foreign-ring/harness.c).
@inline(__always)
func streamRandom(_ seed: UInt64, _ i: UInt64, _ k: UInt64) -> UInt64 {
    mix64(seed &* 0x9E37_79B9_7F4A_7C15 &+ i &* 0xD1B5_4A32_D192_ED03 &+ k)
}

/// A doorbell between two test threads: `ring()` bumps a counter, `wait(after:)` spins then yields until it moves.
final class Doorbell: Sendable {
    private let count = Atomic<Int>(0)
    func ring() { count.add(1, ordering: .releasing) }
    var current: Int { count.load(ordering: .acquiring) }
    /// Waits until the count differs from `seen`; false after `timeoutNanoseconds`.
    func wait(after seen: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) -> Bool {
        let deadline = vmbus_shim_monotonic_ns() + timeoutNanoseconds
        var backoff = Backoff()
        while current == seen {
            if vmbus_shim_monotonic_ns() > deadline { return false }
            backoff.pause()
        }
        return true
    }
}

/// Failures seen on helper threads, reported by the test afterwards.
final class ThreadIssues: Sendable {
    private let list = Lock<[String]>([])
    func record(_ s: String) { list.withLock { if $0.count < 20 { $0.append(s) } } }
    var all: [String] { list.withLock { $0 } }
}
