import Logging
import VMBusGuest
import VMBusHost
import VMBusProtocol
import VMBusTransport
import VMBusWire

/// A host and a guest in one process over an ``InProcessPartition``: what tests, benchmarks and `vmbus up`
/// start from.
public final class InProcessSystem: Sendable {
    public let partition: InProcessPartition
    public let host: VMBusHost
    public let guest: GuestBus

    /// - Parameters:
    ///   - memoryPages: guest memory size in 4 KiB pages.
    ///   - hostMaxVersion: newest VMBus version the host accepts.
    ///   - tryOrder: versions the guest tries, in order.
    public init(memoryPages: Int = 16384, hostMaxVersion: VMBusVersion = .copper,
                tryOrder: [VMBusVersion] = GuestBus.Configuration().tryOrder,
                logLevel: Logger.Level = .warning, sintSpinNanoseconds: UInt64 = ChannelWorker.spinNanoseconds) throws {
        partition = try InProcessPartition(memoryPages: memoryPages, sintSpinNanoseconds: sintSpinNanoseconds)
        var hostLogger = Logger(label: "vmbus.host")
        hostLogger.logLevel = logLevel
        var guestLogger = Logger(label: "vmbus.guest")
        guestLogger.logLevel = logLevel
        host = VMBusHost(port: partition.host,
                         configuration: Server.Configuration(maxVersion: hostMaxVersion,
                                                             guestPageCount: UInt64(memoryPages)),
                         logger: hostLogger)
        guest = GuestBus(synic: partition.guest, configuration: GuestBus.Configuration(tryOrder: tryOrder),
                         logger: guestLogger)
    }

    /// Starts the host, then connects the guest (handshake and offers).
    public func start() throws {
        host.start()
        try guest.connect()
    }

    /// Guest UNLOAD, then the host stops.
    public func stop() {
        guest.disconnect()
        host.stop()
    }

    /// A GUID that differs per `n`, for test device instances.
    public static func instanceID(_ n: UInt32) -> GUID {
        GUID(data1: 0x5356_0000 | n, data2: 0x6d62, data3: 0x7573, data4: (0x76, 0x6d, 0x62, 0x75, 0x73, 0, 0, UInt8(n & 0xFF)))
    }
}
