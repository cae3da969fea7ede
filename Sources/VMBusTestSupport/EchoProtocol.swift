import VMBusProtocol
import VMBusWire

/// The echo test device's own little protocol (not a Hyper-V device; used to exercise the bus end to end).
///
/// Every in-band payload starts with `operation u32, reserved u32`:
/// - `echo` (1): the host answers a request with a completion carrying the same payload byte for byte, and
///   a packet without COMPLETION_REQUESTED with an in-band packet carrying the same payload.
/// - `createSubchannels` (2): `count u32 @8`; the host offers up to that many sub-channels and completes with
///   `status u32 @0` (0 = ok) and `offered u32 @4`.
/// - `echoGPA` (3), sent as a GPA-direct packet: the host reads the guest memory the packet's ranges name
///   (at most ``maxGPAEcho`` bytes) and completes with `status u32 @0`, `length u32 @4`, then those bytes;
///   a range outside guest memory gets status `STATUS_ACCESS_VIOLATION` and no bytes.
public enum EchoProtocol {
    /// The class GUID the echo device offers (swift-vmbus's own, random).
    public static let classID = DeviceClass.echoTest.guid

    public struct Operation: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let echo = Self(rawValue: 1)
        public static let createSubchannels = Self(rawValue: 2)
        public static let echoGPA = Self(rawValue: 3)
    }

    /// Most bytes an `echoGPA` completion carries (it must fit the guest's 4 KiB packet buffer).
    public static let maxGPAEcho = 2048
    /// `STATUS_ACCESS_VIOLATION`
    public static let statusAccessViolation: UInt32 = 0xC000_0005

    /// The request for `count` sub-channels.
    public static func createSubchannelsRequest(count: UInt32) -> [UInt8] {
        var w = WireWriter(capacity: 16)
        w.writeUInt32(Operation.createSubchannels.rawValue)
        w.writeUInt32(0)
        w.writeUInt32(count)
        w.writeUInt32(0)
        return w.bytes
    }
}
