import VMBusDiskBackend
import VMBusHost
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusTransport
import VMBusWire

/// The I/O threads of a StorVSP: a fixed number of threads and a fixed set of jobs, each with its own
/// scatter-gather list and completion buffer, so a request allocates nothing. A channel worker maps a
/// request's range into a free job and submits it; when every job is busy the worker waits, which stops it
/// draining the ring: the guest's queue depth is bounded by ring space, not by host memory.
final class StorVSPIOPool: @unchecked Sendable {
    /// One request: on an I/O thread, or in flight at an asynchronous backend (then it is the backend's
    /// completion, and moves the data through its own bounce buffer, so a late completion after a close has
    /// guest pages to leave alone rather than to write).
    final class Job: BlockIOCompletion, @unchecked Sendable {
        let index: Int
        /// Over the request's guest pages.
        let vector: IOVector
        var writer = WireWriter(capacity: 128)
        var request = VStorPacket(operation: .executeSRB)
        var transactionID: UInt64 = 0
        var completionLength = VStorPacket.wireSize
        var channel: HostChannel?
        var context: StorVSP.ChannelContext?
        /// An asynchronous request's disk and transfer, and its pool (held while in flight: the job goes back
        /// there when the backend completes it, even after the pool was shut down).
        var disk: SCSIDisk?
        var transfer = SCSIDiskTransfer(lba: 0, offset: 0, bytes: 0, isWrite: false, fua: false)
        var pool: StorVSPIOPool?
        /// Grown to the largest asynchronous transfer this job carried, then reused.
        private var bounceBytes = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        private let bounceVector = IOVector(capacity: 1)

        init(index: Int, pages: Int) {
            self.index = index
            vector = IOVector(capacity: pages)
        }

        deinit { bounceBytes.deallocate() }

        /// A one-segment vector over the first `count` bytes of the bounce buffer.
        func bounce(_ count: Int) -> IOVector {
            if bounceBytes.count < count {
                bounceBytes.deallocate()
                bounceBytes = .allocate(byteCount: max(count, 64 << 10), alignment: 4096)
            }
            bounceVector.reset()
            if let base = bounceBytes.baseAddress { try? bounceVector.append(base: base, length: count) }
            return bounceVector
        }

        /// Guest pages → bounce buffer (a write's data).
        func copyToBounce(_ count: Int) {
            _ = vector.copy(toBuffer: UnsafeMutableRawBufferPointer(rebasing: bounceBytes[0..<min(count, bounceBytes.count)]),
                            fromOffset: 0)
        }

        /// Bounce buffer → guest pages (a read's data).
        func copyFromBounce(_ count: Int) {
            _ = vector.copy(from: UnsafeRawBufferPointer(rebasing: bounceBytes[0..<min(count, bounceBytes.count)]), toOffset: 0)
        }

        func blockIOCompleted(_ error: BackendError?) {
            guard let pool else { return }
            self.pool = nil
            pool.owner?.finishAsync(self, error)
            pool.giveBack(self)
        }
    }

    private let jobs: [Job]
    private let free: Condition<[Int]>
    private let queue: BlockingQueue<Int>
    private let threadsDone: Condition<Int>
    weak var owner: StorVSP?

    init(threads: Int, jobs count: Int, pages: Int) {
        jobs = (0..<count).map { Job(index: $0, pages: pages) }
        free = Condition(Array(0..<count))
        queue = BlockingQueue(capacity: count)
        threadsDone = Condition(0)
        for _ in 0..<threads {
            _ = startThread(name: "storvsp-io") { [self] in
                while let i = queue.pop() {
                    owner?.run(jobs[i])
                    giveBack(jobs[i])
                }
                threadsDone.update { $0 += 1 }
            }
        }
    }

    /// A free job, waiting for one if all are in flight.
    func take() -> Job {
        let i = free.wait { f in f.popLast() } ?? 0
        return jobs[i]
    }

    func giveBack(_ job: Job) { free.update { $0.append(job.index) } }

    func submit(_ job: Job) { _ = queue.push(job.index) }

    /// Ends the threads once the queue is empty.
    func shutdown() { queue.close() }
}
