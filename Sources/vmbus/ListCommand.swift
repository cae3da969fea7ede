import ArgumentParser
import VMBusControl
import VMBusGuest
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

/// `vmbus list`: the device tree in lsvmbus's format.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Print the VMBus device tree in lsvmbus format.",
        discussion: """
            With --socket it attaches to a running host as a guest (a fresh partition), lists what the host \
            offers, and unloads; -v also lists the disks, and the host's NICs as its control socket (SOCKET.ctl) \
            has them: backend, MTU and link, then per partition the MAC, queues and counters (`vmbus nic list`). \
            Without it, it lists the embedded default system; -v then also lists the disks and the NICs (MAC, \
            MTU, queues, link).
            """)

    @Option(name: .long, help: "Path of a running host's Unix socket.")
    var socket: String?

    @Flag(name: .short, help: "More detail: -v adds device ids, relids and target CPUs; -vv the sysfs path.")
    var verbose: Int

    @Flag(name: .long, help: "Print JSON instead.")
    var json = false

    @OptionGroup var devices: DeviceOptions
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        if let socket {
            let synic: SocketGuestSynIC
            do { synic = try SocketGuestSynIC(path: socket, memoryPages: 1024) }
            catch { fail("cannot attach to the host at \(socket): \(describe(error))") }
            let bus = GuestBus(synic: synic, logger: logging.logger("vmbus.guest"))
            do { try bus.connect() } catch { fail("VMBus handshake with \(socket) failed: \(describe(error))") }
            let storage = GuestStorage(logger: logging.logger("vmbus.storvsc"))
            if verbose > 0 && !json { bus.register(storage.driver); bus.flushWork() }
            // NICs stay unbound: initializing one here would make this partition the one a TAP backend serves.
            print(json ? bus.jsonListing() : bus.lsvmbusListing(verbosity: verbose), terminator: json ? "\n" : "")
            if verbose > 0 && !json {
                print(storage.listing, terminator: "")
                print(Self.hostNICs(controlPath: socket + ".ctl"), terminator: "")
            }
            bus.disconnect()
        } else {
            let disks: HostDiskSet
            do { disks = try HostDiskSet(devices.disk) } catch { fail("\(error)") }
            let system = try InProcessSystem(memoryPages: 16384, logLevel: logging.level)
            for d in disks.providers() { system.host.addDevice(d) }
            for d in HostDevices.make(devices) { system.host.addDevice(d) }
            HostNICSet(devices.nic).attach(partition: 0, host: system.host)
            try system.start()
            let storage = GuestStorage(logger: logging.logger("vmbus.storvsc"))
            if verbose > 0 && !json { system.guest.register(storage.driver); system.guest.flushWork() }
            let network = verbose > 0 && !json ? GuestNetwork(bus: system.guest, taps: [], logger: logging.logger("vmbus.netvsc")) : nil
            print(json ? system.guest.jsonListing() : system.guest.lsvmbusListing(verbosity: verbose), terminator: json ? "\n" : "")
            if verbose > 0 && !json { print(storage.backendListing(disks) + (network?.listing ?? ""), terminator: "") }
            network?.stop()
            system.stop()
        }
    }

    /// The running host's NICs, indented under "nics:", from its control socket (or why not); nothing for a
    /// host without NICs.
    static func hostNICs(controlPath: String) -> String {
        let body: String
        do {
            let response = try ControlClient.request(path: controlPath, ["nic", "list"])
            body = response.ok ? response.body : "(\(response.body.split(separator: "\n").joined(separator: "; ")))\n"
        } catch {
            body = "(the host's control socket \(controlPath): \(describe(error)))\n"
        }
        guard !body.isEmpty else { return "" }
        return "nics:\n" + body.split(separator: "\n").map { "  " + $0 + "\n" }.joined()
    }
}
