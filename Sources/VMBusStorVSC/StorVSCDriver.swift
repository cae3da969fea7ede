import Logging
import VMBusGuest
import VMBusStorageProtocol
import VMBusTransport
import VMBusWire

/// The guest storage driver (Linux's `hv_storvsc`): binds to the SCSI controller and IDE classes, starts a
/// ``StorVSCController`` per device on probe and stops it on remove.
public final class StorVSCDriver: VMBusDriver {
    public let name = "hv_storvsc"
    public var classIDs: [GUID] { StorageControllerKind.allCases.map(\.classID) }
    public let configuration: StorVSCController.Configuration
    private let logger: Logger
    private let bound = Condition<[GUID: StorVSCController]>([:])
    private let onProbe: (@Sendable (StorVSCController) -> Void)?

    /// - Parameter onProbe: called (on the bus's work thread) with each controller once its LUNs are known.
    public init(configuration: StorVSCController.Configuration = .init(), logger: Logger? = nil,
                onProbe: (@Sendable (StorVSCController) -> Void)? = nil) {
        self.configuration = configuration
        self.logger = logger ?? Logger(label: "vmbus.storvsc")
        self.onProbe = onProbe
    }

    public func probe(_ device: GuestDevice) throws {
        let controller = try StorVSCController(device: device, configuration: configuration, logger: logger)
        try controller.start()
        bound.withLock { $0[device.instanceID] = controller }
        onProbe?(controller)
    }

    public func remove(_ device: GuestDevice) {
        bound.withLock { $0.removeValue(forKey: device.instanceID) }?.stop()
    }

    public var controllers: [StorVSCController] { bound.withLock { b in b.keys.sorted().compactMap { b[$0] } } }
    /// Every disk of every controller, SCSI controllers first, then by LUN.
    public var disks: [StorVSCDisk] { controllers.flatMap(\.disks) }
}
