import Atomics
import VMBusGuest
import VMBusHost
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

/// The whole channel stack in one process: a guest driver sending echo requests with completions through
/// `GuestChannel`, the host's channel worker echoing them through `HostChannel`, doorbells and interrupts
/// included. Proves the send/receive paths above the ring do not allocate per packet.
enum ChannelBenchmarks {
    static var sections: [BenchmarkSection] {
        [
            BenchmarkSection(name: "channel-echo", summary: "64-byte echo requests with completions through GuestBus/VMBusHost (in-process), window 128") { context in
                try echo(&context, requests: context.count(1_000_000))
            },
            BenchmarkSection(name: "channel-echo-nospin", summary: "as channel-echo with the guest interrupt thread blocking at once (no spin)") { context in
                try echo(&context, requests: context.count(1_000_000), sintSpin: 0)
            },
        ]
    }

    /// A started in-process system with the echo device bound (also `vmbus-bench --loop channel`'s); stop it
    /// when done. Nil if the device was not bound.
    static func echoSystem(sintSpin: UInt64 = ChannelWorker.spinNanoseconds) throws
        -> (system: InProcessSystem, client: EchoClient, channel: GuestChannel)?
    {
        let system = try InProcessSystem(memoryPages: 4096, sintSpinNanoseconds: sintSpin)
        system.host.addDevice(EchoDevice(instanceID: InProcessSystem.instanceID(1)))
        try system.start()
        let driver = EchoDriver(ringSize: 256 * 1024)
        system.guest.register(driver)
        guard let client = driver.clients.first, let channel = client.channels.first else {
            system.stop()
            return nil
        }
        return (system, client, channel)
    }

    static func echo(_ context: inout BenchmarkContext, requests: Int,
                     sintSpin: UInt64 = ChannelWorker.spinNanoseconds) throws {
        guard let (system, client, channel) = try echoSystem(sintSpin: sintSpin) else {
            context.require(false, "the echo device was not bound")
            return
        }
        defer { system.stop() }
        // Warm-up: first-use costs (thread start-up, lazily created counters) stay out of the window.
        try client.pump(channel: channel, count: 10_000, size: 64, window: 128)
        let mallocsBefore = mallocCount()
        let start = now()
        try client.pump(channel: channel, count: requests, size: 64, window: 128)
        let seconds = Double(now() - start) / 1e9
        let mallocs = mallocCount() - mallocsBefore
        let rate = Double(requests) / seconds
        let copyNs = memcpyNanosecondsPerCopy(size: 64, count: 1_000_000, window: 1 << 20)
        context.row("channel", "\(format(rate / 1e6, 3)) M requests/s with completions   (\(requests) in \(format(seconds, 3)) s)")
        context.row("memcpy", "\(format(1e3 / copyNs, 1)) M copies/s of 64 B (same run)")
        context.row("ratio", "requests/memcpy \(format(rate * copyNs / 1e9, 4))   (each request: 2 ring writes, 2 copies out, signals)")
        // `pump` allocates its one payload buffer per call; everything else must be allocation-free.
        context.row("mallocs", "\(mallocs) during \(requests) requests (1 is pump's payload buffer; per packet: 0)")
        context.row("verified", "\(client.mismatches.load(ordering: .relaxed)) mismatched payloads")
        context.record("channel stack", rate / 1e6, unit: "M requests/s")
        context.record("allocations per request", Double(max(0, Int(mallocs) - 1)) / Double(requests), unit: "allocations")
        context.require(mallocs <= 1, "\(mallocs) allocations in the channel echo loop")
        context.require(client.mismatches.load(ordering: .relaxed) == 0, "echo payloads mismatched")
    }
}
