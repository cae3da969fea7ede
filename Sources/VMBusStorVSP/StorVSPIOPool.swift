import VMBusDiskBackend
import VMBusHost
import VMBusStorageProtocol
import VMBusTransport
import VMBusWire

/// The I/O threads of a StorVSP: a fixed number of threads and a fixed set of jobs, each with its own
/// scatter-gather list and completion buffer, so a request allocates nothing. A channel worker maps a
/// request's range into a free job and submits it; when every job is busy the worker waits, which stops it
/// draining the ring: the guest's queue depth is bounded by ring space, not by host memory.
final class StorVSPIOPool: @unchecked Sendable {
    final class Job: @unchecked Sendable {
        let index: Int
        let vector: IOVector
        var writer = WireWriter(capacity: 128)
        var request = VStorPacket(operation: .executeSRB)
        var transactionID: UInt64 = 0
        var completionLength = VStorPacket.wireSize
        var channel: HostChannel?
        var context: StorVSP.ChannelContext?
        init(index: Int, pages: Int) {
            self.index = index
            vector = IOVector(capacity: pages)
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
