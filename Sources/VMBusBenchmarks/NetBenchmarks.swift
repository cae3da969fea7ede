import Atomics
import VMBusGuest
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// NetVSC ↔ NetVSP in one process through the real rings: frames per second each way at 64 and 1500 bytes,
/// and heap allocations per frame (process-wide, so every thread of the path is counted).
enum NetBenchmarks {
    /// A backend that only counts what the guest sends.
    final class CountingBackend: NetBackend, @unchecked Sendable {
        let frames = ManagedAtomic<Int>(0)
        let port = ManagedAtomic<Bool>(false)
        private let lock = Condition<(any NetPort)?>(nil)
        func attached(_ port: any NetPort) { lock.update { $0 = port } }
        func transmit(_ frame: UnsafeRawBufferPointer, from port: any NetPort) { frames.wrappingIncrement(ordering: .relaxed) }
        var netPort: (any NetPort)? { lock.wait(timeoutNanoseconds: 5_000_000_000) { $0 } }
    }

    struct Rig {
        let system: InProcessSystem
        let backend = CountingBackend()
        let nic: NetVSC
        let received = ManagedAtomic<Int>(0)

        init(sintSpinNanoseconds: UInt64) throws {
            system = try InProcessSystem(memoryPages: 32768, sintSpinNanoseconds: sintSpinNanoseconds)
            var hc = NetVSP.Configuration(macAddress: [0, 0x15, 0x5D, 1, 2, 3])
            hc.mtu = 1500
            system.host.addDevice(NetVSP(instanceID: InProcessSystem.instanceID(30), configuration: hc, backend: backend))
            try system.start()
            guard let device = system.guest.devices.first else { throw NetVSCError.stopped }
            var gc = NetVSC.Configuration()
            gc.receiveBufferBytes = 16 << 20
            gc.ringSize = 512 * 1024
            let received = self.received
            nic = try NetVSC(device: device, configuration: gc,
                             onReceive: { _ in received.wrappingIncrement(ordering: .relaxed) })
            try nic.start()
        }

        func stop() {
            nic.stop()
            system.stop()
        }
    }

    static var sections: [BenchmarkSection] {
        [BenchmarkSection(name: "net-frames", summary: "NetVSC <-> NetVSP frames/s at 64 B and 1500 B each way, mallocs per frame") { context in
            try frames(&context, sintSpinNanoseconds: ProcessEnv.sintSpin)
        },
         // On 2 vCPUs the guest's spinning interrupt thread takes a core from the sender and the host's
         // worker (as in channel-echo-nospin).
         BenchmarkSection(name: "net-frames-nospin", summary: "net-frames with the guest's interrupt thread blocking at once") { context in
            try frames(&context, sintSpinNanoseconds: 0)
        }]
    }

    static func frames(_ context: inout BenchmarkContext, sintSpinNanoseconds: UInt64) throws {
        let rig = try Rig(sintSpinNanoseconds: sintSpinNanoseconds)
        defer { rig.stop() }
        guard let port = rig.backend.netPort else { throw NetVSCError.stopped }
        for size in [64, 1500] {
            let frame = [UInt8](repeating: 0xA5, count: size)
            let n = context.count(200_000)
            // The same-run baseline: one copy of the frame, the least a frame through a ring costs.
            let copy = memcpyNanosecondsPerCopy(size: size, count: n, window: 4 << 20)
            context.row("memcpy-\(size)B", "\(format(1e3 / copy, 1)) M copies/s")
            for batched in [false, true] {
                let suffix = batched ? "-batched" : ""
                // Guest → host; batched: every frame but each 64th says `more`, as a TAP reader's does.
                let before = rig.backend.frames.load(ordering: .relaxed)
                var m = mallocCount()
                var t = now()
                frame.withUnsafeBytes { p in
                    var sent = 0
                    // On busy the CPU goes to the threads that free sections (the host's worker, the guest's
                    // interrupt thread): on 2 vCPUs a sender that spins on busy starves them for a whole
                    // time slice. The TAP edge sleeps on busy for the same reason.
                    while sent < n {
                        switch rig.nic.send(p, more: batched && sent % 64 != 63 && sent < n - 1) {
                        case .sent: sent += 1
                        case .busy: sched_yield()
                        case .dropped: return
                        }
                    }
                }
                while rig.backend.frames.load(ordering: .relaxed) - before < n { sleepNanoseconds(1000) }
                var dt = Double(now() - t) / 1e9
                context.row("tx-\(size)B\(suffix)", "\(format(Double(n) / dt / 1e6, 3)) M frames/s (\(format(Double(n) / dt / 1e9 * copy, 4)) of memcpy), \(format(Double(mallocCount() - m) / Double(n), 3)) mallocs/frame")
                // Host → guest.
                let received = rig.received.load(ordering: .relaxed)
                m = mallocCount()
                t = now()
                frame.withUnsafeBytes { p in
                    var delivered = 0
                    while delivered < n {
                        switch port.deliver(p, more: batched && delivered % 64 != 63 && delivered < n - 1) {
                        case .accepted: delivered += 1
                        case .busy: sleepNanoseconds(1000)
                        case .dropped: return
                        }
                    }
                }
                while rig.received.load(ordering: .relaxed) - received < n { sleepNanoseconds(1000) }
                dt = Double(now() - t) / 1e9
                context.row("rx-\(size)B\(suffix)", "\(format(Double(n) / dt / 1e6, 3)) M frames/s (\(format(Double(n) / dt / 1e9 * copy, 4)) of memcpy), \(format(Double(mallocCount() - m) / Double(n), 3)) mallocs/frame")
            }
        }
    }
}
