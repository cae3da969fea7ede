import ArgumentParser
import Logging
import VMBusGuest
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// `vmbus guest`: the guest components in their own process, attached to a host daemon.
struct GuestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Run the guest components (bus driver and drivers) in their own process, attached to `vmbus host`.",
        discussion: """
            The guest creates its memory (a sealed memfd), hands it and its SINT signal socket to a host it trusts, \
            negotiates a VMBus version, binds drivers to the offered devices and runs until Ctrl-C or \
            SIGTERM (then it unloads cleanly). NICs the host adds or removes later are bound or stopped, and \
            link changes printed, as they happen; SIGUSR1 prints every NIC's counters (ethtool -S names), as \
            does the exit. If the host dies, outstanding requests fail and the guest \
            exits with status 2, or with --reconnect waits for the host and attaches again.
            """)

    @Option(name: .long, help: "Path of the host's Unix socket.")
    var socket: String

    @Flag(name: .long, help: "When the host goes away, wait for it and attach again (new handshake, channels re-opened). Not with --selftest-echo, which exits with status 2.")
    var reconnect = false

    @Option(name: .long, help: "Also trust a host running as this uid (repeatable; by default only ours and root's). The guest checks the host with SO_PEERCRED before handing it its memory.")
    var hostUid: [UInt32] = []

    @Option(name: .long, help: "Guest memory in MiB (rings, and the bounce pages of disk I/O).")
    var memory: Int = 256

    @Option(name: .long, help: "Expose every guest disk as a file in this directory (FUSE): DIR/sda, DIR/sdb, …")
    var fuse: String?

    @Option(name: .long, help: "Send this many echo requests over every echo channel, verify them, unload and exit.")
    var selftestEcho: Int = 0

    @Option(name: .long, help: "With --selftest-echo: give up (exit status 1) when the host has not completed every request within this many seconds.")
    var selftestTimeout: Int = 120

    @Option(name: .long, help: "Echo sub-channels to open per echo device (0...8).")
    var subchannels: Int = 0

    @Option(name: .long, help: "Present the guest's NICs, in order, as TAP interfaces with these names (repeatable); a NIC added later takes the first name no NIC holds.")
    var tap: [String] = []

    @OptionGroup var services: GuestServiceOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        for t in tap where t.isEmpty || t.utf8.count > 15 { throw ValidationError("--tap \(t): a name of 1...15 bytes") }
        guard memory >= 4 && memory <= 65536 else { throw ValidationError("--memory must be 4...65536 MiB") }
        guard selftestEcho >= 0 else { throw ValidationError("--selftest-echo must not be negative") }
        guard subchannels >= 0 && subchannels <= 8 else { throw ValidationError("--subchannels must be 0...8") }
        guard selftestTimeout >= 1 && selftestTimeout <= 86_400 else { throw ValidationError("--selftest-timeout must be 1...86400 s") }
    }

    func run() throws {
        logging.bootstrap()
        let signals = SignalWaiter([SIGINT, SIGTERM, SIGUSR1])
        let logger = logging.logger("vmbus.guest")
        var attached = false
        // Once per process: the daemons' devices stay mounted across reconnects.
        let integration: GuestIntegration
        do { integration = try GuestIntegration(services, logger: logging.logger("vmbus.ic")) } catch { fail("\(error)") }
        defer { integration.stop() }
        if let dir = services.devVmbus { print("daemon devices in \(dir): hv_kvp, hv_vss, hv_fcopy") }
        while true {
            let synic: SocketGuestSynIC
            do {
                synic = try SocketGuestSynIC(path: socket, memoryPages: memory * 256,
                                             allowedHostUIDs: Set([getuid(), 0] + hostUid))
            } catch {
                // A refusal (permission, version, memory) or an untrusted host will not change by retrying.
                guard reconnect, !(error is TransportRefused), !(error is HostNotTrusted) else { fail("cannot attach to the host at \(socket): \(describe(error))") }
                if Self.stops(signals.wait(timeoutNanoseconds: 200_000_000)) { return }
                continue
            }
            let bus = GuestBus(synic: synic, logger: logger)
            do {
                try bus.connect()
            } catch {
                bus.disconnect()
                guard reconnect else { fail("VMBus handshake with \(socket) failed: \(describe(error))") }
                logger.warning("VMBus handshake with \(socket) failed: \(error); retrying")
                if Self.stops(signals.wait(timeoutNanoseconds: 200_000_000)) { return }
                continue
            }
            print("\(attached ? "reconnected" : "attached"): partition \(synic.partitionID), VMBus \(bus.version.map { "\($0)" } ?? "?")")
            attached = true
            let driver = EchoDriver()
            bus.register(driver)
            let storage = GuestStorage(logger: logging.logger("vmbus.storvsc"))
            bus.register(storage.driver)
            bus.register(integration.driver)
            bus.flushWork()
            let network = GuestNetwork(bus: bus, taps: tap, logger: logging.logger("vmbus.netvsc"))
            if let fuse, storage.mount == nil {
                do { try storage.mount(at: fuse) } catch { fail("--fuse \(fuse): \(error)") }
            }
            do {
                for client in driver.clients where subchannels > 0 { try client.openSubchannels(subchannels) }
            } catch {
                print("sub-channels: \(error)")
            }
            let open = driver.clients.reduce(0) { $0 + $1.channels.count }
            print(bus.lsvmbusListing(verbosity: 1), terminator: "")
            print(storage.listing, terminator: "")
            print(network.listing, terminator: "")
            if let fuse, storage.mount != nil { print("disks exposed as files in \(fuse)") }
            print("channels: \(open) open")
            fflush(nil)

            if selftestEcho > 0 {
                let (ok, unloadedEarly, firstError) = runSelftest(bus: bus, driver: driver, count: selftestEcho, signals: signals)
                let hostLost = bus.isHostLost
                print(network.counterListing, terminator: "")
                storage.stop()
                network.stop()
                let unloaded = unloadedEarly ?? bus.disconnect()
                if unloaded { print("unloaded cleanly") }
                fflush(nil)
                if hostLost { fail("the host is gone: outstanding requests failed", code: 2) }
                if !ok { fail("echo self-test failed: \(firstError ?? "not every request was verified")") }
                if !unloaded { fail("no UNLOAD_RESPONSE from the host") }
                return
            }
            while !bus.isHostLost {
                let signal = signals.wait(timeoutNanoseconds: 100_000_000)
                for event in network.takeEvents() { print(event) }
                if signal == SIGUSR1 { print(network.counterListing, terminator: "") }
                fflush(nil)
                if Self.stops(signal) {
                    print(network.counterListing, terminator: "")
                    storage.stop()
                    network.stop()
                    if bus.disconnect() {
                        print("unloaded cleanly")
                        return
                    }
                    fail("no UNLOAD_RESPONSE from the host")
                }
            }
            print("the host is gone: outstanding requests failed")
            fflush(nil)
            storage.stop()
            network.stop()
            bus.disconnect()
            guard reconnect else { fail("the host is gone: outstanding requests failed", code: 2) }
        }
    }

    /// SIGINT and SIGTERM stop the guest; SIGUSR1 only asks for the counters.
    private static func stops(_ signal: Int32?) -> Bool { signal != nil && signal != SIGUSR1 }

    /// Pumps `count` echo requests over every echo channel at once and verifies them.
    /// Returns whether every request was verified, and whether a signal made it unload already (and how
    /// that went).
    private func runSelftest(bus: GuestBus, driver: EchoDriver, count: Int,
                             signals: SignalWaiter) -> (passed: Bool, unloaded: Bool?, firstError: String?) {
        let start = monotonicNanoseconds()
        let errors = Condition<[String]>([])
        let left = Condition(0)
        var total = 0
        var unloaded: Bool?
        // Kept here: unbinding (on a signal) removes the clients from the driver.
        let clients = driver.clients
        let timeout = UInt64(selftestTimeout) * 1_000_000_000
        for client in clients {
            for channel in client.channels {
                total += count
                left.update { $0 += 1 }
                startThread(name: "selftest") {
                    do {
                        try client.pump(channel: channel, count: count, size: 64, window: 128,
                                        timeoutNanoseconds: timeout)
                    }
                    catch { errors.update { $0.append("channel \(channel.relID): \(error)") } }
                    left.update { $0 -= 1 }
                }
            }
        }
        // Ctrl-C or SIGTERM stops the test: unbinding closes the channels, which fails the pumps at once.
        while left.wait(timeoutNanoseconds: 100_000_000, until: { $0 == 0 ? true : nil }) == nil {
            if Self.stops(signals.wait(timeoutNanoseconds: 0)) {
                print("interrupted: stopping the self-test")
                fflush(nil)
                unloaded = bus.disconnect()
                _ = left.wait(timeoutNanoseconds: 30_000_000_000) { $0 == 0 ? true : nil }
                break
            }
        }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let completed = clients.reduce(UInt64(0)) { $0 + $1.completions.load(ordering: .relaxed) }
        let mismatched = clients.reduce(UInt64(0)) { $0 + $1.mismatches.load(ordering: .relaxed) }
        let failed = clients.reduce(UInt64(0)) { $0 + $1.failedRequests.load(ordering: .relaxed) }
        for e in errors.withLock({ $0 }) { print("echo error: \(bus.isHostLost ? "the host is gone: " : "")\(e)") }
        print("echo: \(completed) of \(total) verified, \(mismatched) mismatched, \(failed) failed, in \(Int(seconds * 1000)) ms")
        fflush(nil)
        let passed = completed == UInt64(total) && mismatched == 0 && failed == 0 && errors.withLock({ $0.isEmpty })
        return (passed, unloaded, errors.withLock { $0.first })
    }
}
