import ArgumentParser
import Logging
import VMBusHost
import VMBusStorVSP
import VMBusProtocol
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// `vmbus host`: the host daemon. Serves guests (one partition each) until stopped.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Run the VMBus host daemon: serve guests connecting on a Unix socket until stopped.",
        discussion: """
            Each guest connection is its own partition with its own devices, built from the device flags. \
            The socket is created with mode 0600; a guest whose uid is neither ours nor root's is refused \
            unless --allow-uid names it. See docs/TRANSPORT.md. The control socket SOCKET.ctl has the same \
            rules; `vmbus disk --socket SOCKET …` uses it (docs/CONTROL.md).
            """)

    @Option(name: .long, help: "Path of the Unix socket to listen on.")
    var socket: String

    @Option(name: .long, help: "Also accept guests running as this uid (repeatable).")
    var allowUid: [UInt32] = []

    @Option(name: .long, help: "Newest VMBus version to accept (e.g. 5.3).")
    var maxVersion: String = "6.0"

    @OptionGroup var devices: DeviceOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard parseVersion(maxVersion) != nil else { throw ValidationError("unknown --max-version '\(maxVersion)' (0.13 ... 6.0)") }
    }

    func run() throws {
        logging.bootstrap()
        let signals = SignalWaiter()
        let logger = logging.logger("vmbus.host")
        guard let maxVersion = parseVersion(maxVersion) else { fail("unknown --max-version '\(self.maxVersion)'") }
        let devices = self.devices
        let disks: HostDiskSet
        do { disks = try HostDiskSet(devices.disk) } catch { fail("\(error)") }
        do { try HostNetworks.shared.open(devices.nic) } catch { fail("\(error)") }
        let allowed = Set([getuid(), 0] + allowUid)
        let nics = HostNICSet(devices.nic)
        let ics = HostICSet(devices)
        let listener: SocketHostListener
        do {
            listener = try SocketHostListener(path: socket, allowedUIDs: allowed, logger: logger) { port in
                var partitionLogger = logger
                partitionLogger[metadataKey: "partition"] = "\(port.partitionID)"
                let host = VMBusHost(port: port,
                                     configuration: Server.Configuration(maxVersion: maxVersion,
                                                                         guestPageCount: UInt64(port.memory.pageCount)),
                                     logger: partitionLogger)
                let storage = disks.providers()
                for d in storage { host.addDevice(d) }
                for d in HostDevices.make(devices) { host.addDevice(d) }
                let partition = UInt64(port.partitionID)
                nics.attach(partition: partition, host: host)
                for d in ics.services(partition: partition).providers { host.addDevice(d) }
                host.start()
                return (host, {
                    disks.release(storage)
                    nics.release(partition: partition)
                    ics.release(partition: partition)
                })
            }
        } catch {
            fail("cannot listen on \(socket): \(describe(error))")
        }
        do {
            try listener.start()
        } catch {
            fail("cannot serve \(socket): \(describe(error))")
        }
        let control = HostDevices.startControl(path: socket + ".ctl", allowed: allowed, disks: disks, nics: nics, ics: ics,
                                               logger: logging.logger("vmbus.control"))
        logger.notice("listening on \(socket)")
        print("vmbus host: listening on \(socket), control socket \(socket).ctl")
        fflush(nil)
        while signals.wait(timeoutNanoseconds: 1_000_000_000) == nil {}
        control.stop()
        listener.stop()
        HostNetworks.shared.stop()
        for failure in disks.close() { logger.error("closing \(failure)") }
        print("vmbus host: stopped")
    }
}

func parseVersion(_ s: String) -> VMBusVersion? {
    VMBusVersion.all.first { $0.description == s }
}
