import Logging
import VMBusHost
import VMBusICProtocol
import VMBusWire

/// The integration services one partition gets: one ``ICHostChannel`` per service asked for, with the
/// service objects a host drives them through.
public final class ICHostServices: Sendable {
    public let channels: [ICHostChannel]
    public let heartbeat: HostHeartbeat?
    public let shutdown: HostShutdown?
    public let timeSync: HostTimeSync?
    public let kvp: HostKVP?
    public let vss: HostVSS?
    public let fileCopy: HostFileCopy?

    public struct Configuration: Sendable {
        public var services: [ICService]
        public var heartbeatIntervalNanoseconds: UInt64
        public var unresponsiveAfterNanoseconds: UInt64
        public var syncTimeOnConnect: Bool

        public init(services: [ICService] = ICService.all, heartbeatIntervalNanoseconds: UInt64 = 1_000_000_000,
                    unresponsiveAfterNanoseconds: UInt64 = 5_000_000_000, syncTimeOnConnect: Bool = true) {
            self.services = services
            self.heartbeatIntervalNanoseconds = heartbeatIntervalNanoseconds
            self.unresponsiveAfterNanoseconds = unresponsiveAfterNanoseconds
            self.syncTimeOnConnect = syncTimeOnConnect
        }
    }

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "vmbus.ic.host")) {
        var channels: [ICHostChannel] = []
        func make(_ s: ICService) -> ICHostChannel? {
            guard configuration.services.contains(s) else { return nil }
            let c = ICHostChannel(service: s, instanceID: Self.instanceID(s), logger: logger)
            channels.append(c)
            return c
        }
        heartbeat = make(.heartbeat).map {
            HostHeartbeat(channel: $0, intervalNanoseconds: configuration.heartbeatIntervalNanoseconds,
                          unresponsiveAfterNanoseconds: configuration.unresponsiveAfterNanoseconds)
        }
        shutdown = make(.shutdown).map { HostShutdown(channel: $0) }
        timeSync = make(.timeSync).map { HostTimeSync(channel: $0, syncOnConnect: configuration.syncTimeOnConnect) }
        kvp = make(.kvp).map { HostKVP(channel: $0) }
        vss = make(.vss).map { HostVSS(channel: $0) }
        fileCopy = make(.fcopy).map { HostFileCopy(channel: $0) }
        self.channels = channels
    }

    /// The providers to add to a host.
    public var providers: [any VMBusDeviceProvider] { channels }

    /// A fixed instance per service, so `lsvmbus` shows the same device ids on every run (Hyper-V's are
    /// fixed per VM too): the class id with its first word changed, unique per service.
    public static func instanceID(_ service: ICService) -> GUID {
        let c = service.classID
        return GUID(data1: c.data1 ^ 0x5346_5442, data2: c.data2, data3: c.data3, data4: c.data4)
    }
}
