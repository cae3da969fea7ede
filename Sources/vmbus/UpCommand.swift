import ArgumentParser
import Logging
import VMBusGuest
import VMBusHost
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
        abstract: "Run a VMBus host and the guest components in one process, print the device tree and a live status line until Ctrl-C or SIGTERM.")

    @Option(name: .long, help: "Guest memory in MiB.")
    var memory: Int = 256

    @Option(name: .long, help: "Number of echo test devices to offer.")
    var echoDevices: Int = 1

    @Option(name: .long, help: "Stop by itself after this many seconds (0: run until stopped).")
    var duration: Double = 0

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func validate() throws {
        guard memory >= 16 && memory <= 65536 else { throw ValidationError("--memory must be 16...65536 MiB") }
        guard echoDevices >= 0 && echoDevices <= 64 else { throw ValidationError("--echo-devices must be 0...64") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let signals = SignalWaiter([SIGINT, SIGTERM])
        let system = try InProcessSystem(memoryPages: memory * 256, logLevel: level)
        let devices = (0..<echoDevices).map { EchoDevice(instanceID: InProcessSystem.instanceID(UInt32($0 + 1))) }
        for d in devices { system.host.addDevice(d) }
        try system.start()
        let driver = EchoDriver()
        system.guest.register(driver)
        print("VMBus \(system.guest.version.map { "\($0)" } ?? "?") connected; device tree:")
        print(system.guest.lsvmbusListing(verbosity: 1), terminator: "")

        // Self-test traffic on every echo channel so the status line shows the data path working.
        let traffic = Latch()
        for client in driver.clients {
            for channel in client.channels {
                startThread(name: "up-traffic") {
                    while !traffic.isOpen {
                        do { try client.pump(channel: channel, count: 10_000, size: 256, window: 32) } catch { break }
                    }
                }
            }
        }

        var last = StatusSnapshot(host: system.host)
        let deadline = duration > 0 ? monotonicNanoseconds() + UInt64(duration * 1e9) : UInt64.max
        var stopSignal: Int32? = nil
        while stopSignal == nil && monotonicNanoseconds() < deadline {
            stopSignal = signals.wait(timeoutNanoseconds: min(1_000_000_000, deadline - monotonicNanoseconds()))
            let now = StatusSnapshot(host: system.host)
            print("\r" + now.line(since: last), terminator: "")
            fflush(nil)
            last = now
        }
        print("")
        traffic.open()
        print("stopping: closing channels, tearing down GPADLs, unloading…")
        system.stop()
        print("stopped cleanly")
    }
}

/// Counters of every open host channel at one moment.
struct StatusSnapshot {
    var time: UInt64
    var channels: Int
    var packets: UInt64
    var bytes: UInt64

    init(host: VMBusHost) {
        time = monotonicNanoseconds()
        let open = host.openChannels
        channels = open.count
        packets = open.reduce(0) { $0 + $1.endpoint.packetsReceived.load(ordering: .relaxed) + $1.endpoint.packetsSent.load(ordering: .relaxed) }
        bytes = open.reduce(0) { $0 + $1.endpoint.bytesReceived.load(ordering: .relaxed) + $1.endpoint.bytesSent.load(ordering: .relaxed) }
    }

    func line(since old: StatusSnapshot) -> String {
        let seconds = max(1e-9, Double(time - old.time) / 1e9)
        let pps = Double(packets &- old.packets) / seconds
        let bps = Double(bytes &- old.bytes) / seconds
        return "channels: \(channels)  packets/s: \(format(pps))  bytes/s: \(format(bps))B   "
    }

    private func format(_ v: Double) -> String {
        let units = ["", "K", "M", "G", "T"]
        var x = max(0, v), i = 0
        while x >= 1000 && i < units.count - 1 { x /= 1000; i += 1 }
        return "\(Double(Int(x * 10)) / 10)\(units[i])"
    }
}

/// Blocks the given signals in every thread and lets one caller wait for them (sigtimedwait), so Ctrl-C and
/// SIGTERM become an orderly shutdown instead of killing the process mid-teardown.
final class SignalWaiter {
    private var set = sigset_t()

    init(_ signals: [Int32]) {
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        // Must run before any thread starts so that every thread inherits the mask.
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The signal that arrived, or nil on timeout.
    func wait(timeoutNanoseconds: UInt64) -> Int32? {
        var ts = timespec(tv_sec: Int(timeoutNanoseconds / 1_000_000_000), tv_nsec: Int(timeoutNanoseconds % 1_000_000_000))
        let s = sigtimedwait(&set, nil, &ts)
        return s > 0 ? s : nil
    }
}
