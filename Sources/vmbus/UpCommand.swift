import ArgumentParser
import Logging
import VMBusGuest
import VMBusControl
import VMBusHost
import VMBusStorVSP
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// `vmbus up`: host and guest components in one process on the embedded default configuration.
struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run a VMBus host and the guest components in one process.",
        discussion: """
            With no flags it uses the embedded default: data directory ./vmbus-data, a SCSI disk on \
            vmbus-data/disk0.vhdx (a dynamic VHDX of 8 GiB, created once; an existing disk0.raw is used instead) and the echo test device. It prints the device \
            tree, the disks and the NICs, then one live status line (channels, packets/s, bytes/s, disk IOPS and \
            MB/s, NIC packets/s), \
            and stops cleanly on Ctrl-C or SIGTERM: FUSE unmounted, channels closed, GPADLs torn down, UNLOAD \
            exchanged. With --fuse DIR the guest's disks are files there (DIR/sda, …) for losetup. With no --nic \
            the guest gets one NIC on the internal switch; --tap NAME presents the guest's NICs (in order) as TAP \
            interfaces of this machine.
            """)

    @Option(name: .long, help: "Data directory (disk images and state).")
    var dataDir: String = "./vmbus-data"

    @Option(name: .long, help: "Guest memory in MiB.")
    var memory: Int = 256

    @Option(name: .long, help: "Stop by itself after this many seconds (0: run until stopped).")
    var duration: Double = 0

    @Option(name: .long, help: "Expose every guest disk as a file in this directory (FUSE): DIR/sda, DIR/sdb, …")
    var fuse: String?

    @Option(name: .long, help: "Present the guest's NICs, in order, as TAP interfaces with these names (repeatable); a NIC added later takes the first name no NIC holds.")
    var tap: [String] = []

    @OptionGroup var devices: DeviceOptions
    @OptionGroup var guestServices: GuestServiceOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        for t in tap where t.isEmpty || t.utf8.count > 15 { throw ValidationError("--tap \(t): a name of 1...15 bytes") }
        guard memory >= 16 && memory <= 65536 else { throw ValidationError("--memory must be 16...65536 MiB") }
        guard duration >= 0 else { throw ValidationError("--duration must not be negative") }
    }

    func run() throws {
        logging.bootstrap()
        let signals = SignalWaiter()
        if mkdir(dataDir, 0o755) != 0 && errno != EEXIST { fail("cannot create data directory \(dataDir): \(String(cString: strerror(errno)))") }
        var specs = devices.disk
        if specs.isEmpty {
            // disk0.raw from an older version is still used; new data directories get a dynamic VHDX.
            let legacy = "\(dataDir)/disk0.raw"
            let path = access(legacy, F_OK) == 0 ? legacy : "\(dataDir)/disk0.vhdx"
            if let d = DiskSpec(argument: "\(path),size=8G") { specs = [d] }
        }
        let disks: HostDiskSet
        do { disks = try HostDiskSet(specs) } catch { fail("\(error)") }
        var devices = self.devices
        if devices.nic.isEmpty, let nic = NICSpec(argument: "switch") { devices.nic = [nic] }
        do { try HostNetworks.shared.open(devices.nic) } catch { fail("\(error)") }
        let system = try InProcessSystem(memoryPages: memory * 256, logLevel: logging.level)
        for d in disks.providers() { system.host.addDevice(d) }
        for d in HostDevices.make(devices) { system.host.addDevice(d) }
        let nics = HostNICSet(devices.nic)
        nics.attach(partition: 0, host: system.host)
        let ics = HostICSet(devices)
        for d in ics.services(partition: 0).providers { system.host.addDevice(d) }
        try system.start()
        let control = HostDevices.startControl(path: dataDir + "/vmbus.ctl", allowed: [getuid(), 0], disks: disks,
                                               nics: nics, ics: ics, logger: logging.logger("vmbus.control"))
        let driver = EchoDriver()
        system.guest.register(driver)
        let storage = GuestStorage(logger: logging.logger("vmbus.storvsc"))
        system.guest.register(storage.driver)
        let integration: GuestIntegration
        do { integration = try GuestIntegration(guestServices, logger: logging.logger("vmbus.ic")) } catch { fail("\(error)") }
        system.guest.register(integration.driver)
        system.guest.flushWork()
        let network = GuestNetwork(bus: system.guest, taps: tap, logger: logging.logger("vmbus.netvsc"))
        if let fuse {
            do { try storage.mount(at: fuse) } catch { fail("--fuse \(fuse): \(error)") }
        }
        print("VMBus \(system.guest.version.map { "\($0)" } ?? "?") connected; device tree:")
        print(system.guest.lsvmbusListing(verbosity: 1), terminator: "")
        print(storage.backendListing(disks), terminator: "")
        print(network.listing, terminator: "")
        if let fuse { print("disks exposed as files in \(fuse)") }
        let traffic = EchoTraffic(driver: driver)
        traffic.start()

        let stopSignal = StatusLine.run(host: system.host, storage: storage, network: network, signals: signals,
                                        duration: duration)
        traffic.stop()
        print(network.counterListing, terminator: "")
        print("\(stopSignal.map { "signal \($0): " } ?? "")stopping: closing channels, tearing down GPADLs, unloading")
        storage.stop()
        network.stop()
        control.stop()
        let unloaded = system.guest.disconnect()
        integration.stop()
        system.host.stop()
        HostNetworks.shared.stop()
        for failure in disks.close() { print("closing \(failure)") }
        guard unloaded else { fail("stopped, but the host never answered UNLOAD") }
        print("stopped cleanly")
    }
}

/// Builds the device providers one partition gets from the device flags.
enum HostDevices {
    /// The echo devices; NICs come from ``HostNICSet``, disks from ``HostDiskSet``.
    static func make(_ options: DeviceOptions) -> [any VMBusDeviceProvider] {
        let echo: [any VMBusDeviceProvider] = (0..<options.echo).map {
            EchoDevice(instanceID: InProcessSystem.instanceID(UInt32($0 + 1)), maxSubchannels: 8)
        }
        return echo
    }

    /// The host's one control interface (docs/CONTROL.md): `disk …`, `nic …` and `ic …`.
    static func controlHandler(disks: HostDiskSet, nics: HostNICSet, ics: HostICSet) -> ControlServer.Handler {
        { words in
            switch words.first {
            case "disk": return disks.handle(words)
            case "nic": return nics.handle(words)
            case "ic": return ics.handle(words)
            default: return .failure("unknown command family '\(words.first ?? "")' (known: disk, nic, ic)")
            }
        }
    }

    static func startControl(path: String, allowed: Set<UInt32>, disks: HostDiskSet, nics: HostNICSet, ics: HostICSet,
                             logger: Logger) -> ControlServer {
        do {
            let server = try ControlServer(path: path, allowedUIDs: allowed, logger: logger,
                                           handler: controlHandler(disks: disks, nics: nics, ics: ics))
            try server.start()
            return server
        } catch {
            fail("cannot serve the control socket \(path): \(describe(error))")
        }
    }
}

/// Self-test traffic on every echo channel, so the status line shows the data path working.
final class EchoTraffic: @unchecked Sendable {
    let driver: EchoDriver
    let stopped = Latch()
    let done: Condition<Int> = Condition(0)
    var threads = 0

    init(driver: EchoDriver) { self.driver = driver }

    func start() {
        for client in driver.clients {
            for channel in client.channels {
                threads += 1
                startThread(name: "echo-traffic") { [self] in
                    while !stopped.isOpen {
                        do { try client.pump(channel: channel, count: 4096, size: 256, window: 32) } catch { break }
                    }
                    done.update { $0 += 1 }
                }
            }
        }
    }

    func stop() {
        stopped.open()
        let n = threads
        _ = done.wait(timeoutNanoseconds: 10_000_000_000) { $0 >= n ? true : nil }
    }
}

/// The live status line: channels, packets/s, bytes/s of every open host channel, once a second.
enum StatusLine {
    /// Runs until a signal arrives or `duration` seconds pass; returns the signal, if any.
    /// NIC changes (`vmbus nic …`) are printed on lines of their own above it.
    static func run(host: VMBusHost, storage: GuestStorage? = nil, network: GuestNetwork? = nil, signals: SignalWaiter,
                    duration: Double) -> Int32? {
        var last = Snapshot(host: host, storage: storage, network: network)
        let deadline = duration > 0 ? monotonicNanoseconds() + UInt64(duration * 1e9) : UInt64.max
        var stopSignal: Int32? = nil
        while stopSignal == nil && monotonicNanoseconds() < deadline {
            stopSignal = signals.wait(timeoutNanoseconds: min(1_000_000_000, deadline - monotonicNanoseconds()))
            let now = Snapshot(host: host, storage: storage, network: network)
            for event in network?.takeEvents() ?? [] { print("\r" + event + "\u{1B}[K") }
            print("\r" + now.line(since: last), terminator: "")
            fflush(nil)
            last = now
        }
        print("")
        return stopSignal
    }

    struct Snapshot {
        var time: UInt64
        var channels: Int
        var packets: UInt64
        var bytes: UInt64
        var diskRequests: UInt64 = 0
        var diskBytes: UInt64 = 0
        var hasDisks = false
        /// Frames the guest's NICs sent and received.
        var nicPackets: UInt64 = 0
        var hasNICs = false

        init(host: VMBusHost, storage: GuestStorage?, network: GuestNetwork? = nil) {
            time = monotonicNanoseconds()
            if let nics = network?.nics, !nics.isEmpty {
                hasNICs = true
                nicPackets = nics.reduce(0) { n, nic in
                    let c = nic.nic.counterSnapshot
                    return n + UInt64(c.txPackets + c.rxPackets)
                }
            }
            if let storage, !storage.driver.controllers.isEmpty {
                hasDisks = true
                (diskRequests, diskBytes) = storage.counters
            }
            let open = host.openChannels
            channels = open.count
            packets = open.reduce(0) { $0 + $1.endpoint.packetsReceived.load(ordering: .relaxed) + $1.endpoint.packetsSent.load(ordering: .relaxed) }
            bytes = open.reduce(0) { $0 + $1.endpoint.bytesReceived.load(ordering: .relaxed) + $1.endpoint.bytesSent.load(ordering: .relaxed) }
        }

        func line(since old: Snapshot) -> String {
            let seconds = max(1e-9, Double(time - old.time) / 1e9)
            let pps = Double(packets &- old.packets) / seconds
            let bps = Double(bytes &- old.bytes) / seconds
            let disk = hasDisks
                ? "  disk IOPS: \(format(Double(diskRequests &- old.diskRequests) / seconds))  disk MB/s: \(Double(Int(Double(diskBytes &- old.diskBytes) / seconds / 1e5)) / 10)"
                : ""
            let nic = hasNICs ? "  NIC packets/s: \(format(Double(nicPackets &- old.nicPackets) / seconds))" : ""
            return "channels: \(channels)  packets/s: \(format(pps))  bytes/s: \(format(bps))B\(disk)\(nic)   "
        }

        private func format(_ v: Double) -> String {
            let units = ["", "K", "M", "G", "T"]
            var x = max(0, v), i = 0
            while x >= 1000 && i < units.count - 1 { x /= 1000; i += 1 }
            return "\(Double(Int(x * 10)) / 10)\(units[i])"
        }
    }
}
