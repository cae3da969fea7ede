import VMBusWire

/// A VSC driver: it binds to devices of the classes it names, the way Linux matches `hv_vmbus_device_id`
/// tables. Probe and remove run on the bus's work thread, one at a time.
public protocol VMBusDriver: AnyObject, Sendable {
    var name: String { get }
    /// Device classes (`if_type`) this driver binds to.
    var classIDs: [GUID] { get }
    /// Binds to `device`. Throw to leave it unbound.
    func probe(_ device: GuestDevice) throws
    /// Unbinds: close every channel of the device. Called on rescind, driver removal and shutdown.
    func remove(_ device: GuestDevice)
}
