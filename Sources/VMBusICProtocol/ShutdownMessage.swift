import VMBusWire

/// `shutdown_msg_data.flags`: what the host asks for. The force bit may accompany any of the others.
public struct ShutdownFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0x1: force. Linux always acts as if it were set.
    public static let force = Self(rawValue: 0x1)
    /// 0x2: restart instead of power off (Linux's "reboot").
    public static let restart = Self(rawValue: 0x2)
    /// 0x4: hibernate instead of power off.
    public static let hibernate = Self(rawValue: 0x4)
}

/// `struct shutdown_msg_data` (2060 bytes): the body of ICMSGTYPE_SHUTDOWN.
public struct ShutdownMessage: Equatable, Sendable, WireCodable {
    public static let cName = "shutdown_msg_data"
    public static let wireSize = 2060
    /// Bytes of `display_message`.
    public static let displayMessageSize = 2048
    /// `SHTDN_REASON_FLAG_PLANNED` (Windows SDK, as OpenVMM's shutdown IC sends it in `reason_code`).
    public static let reasonFlagPlanned: UInt32 = 0x8000_0000

    public var reasonCode: UInt32
    public var timeoutSeconds: UInt32
    public var flags: ShutdownFlags
    /// `display_message`, raw. Linux never reads it, and neither Linux nor OpenVMM says how it is encoded.
    public var displayMessage: [UInt8]

    public init(reasonCode: UInt32 = ShutdownMessage.reasonFlagPlanned, timeoutSeconds: UInt32 = 0,
                flags: ShutdownFlags = [], displayMessage: [UInt8] = []) {
        self.reasonCode = reasonCode
        self.timeoutSeconds = timeoutSeconds
        self.flags = flags
        self.displayMessage = fixedField(displayMessage, Self.displayMessageSize)
    }

    /// What Linux 6.12's `shutdown_onchannelcallback` does with a request: it switches on the whole flag
    /// word, so any bit beyond the three known ones makes the request invalid.
    public enum LinuxAction: Hashable, Sendable {
        /// flags 0 or 1: power off, HV_S_OK.
        case shutdown
        /// flags 2 or 3: reboot, HV_S_OK.
        case restart
        /// flags 4 or 5: hibernate; HV_S_OK only if hibernation is supported, else HV_E_FAIL.
        case hibernate
        /// anything else: HV_E_FAIL, nothing done.
        case invalid
    }

    public var linuxAction: LinuxAction {
        switch flags.rawValue {
        case 0, 1: return .shutdown
        case 2, 3: return .restart
        case 4, 5: return .hibernate
        default: return .invalid
        }
    }

    /// The status Linux answers with.
    public func linuxStatus(hibernationSupported: Bool) -> ICStatus {
        switch linuxAction {
        case .shutdown, .restart: return .ok
        case .hibernate: return hibernationSupported ? .ok : .fail
        case .invalid: return .fail
        }
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        reasonCode = try r.readUInt32()
        timeoutSeconds = try r.readUInt32()
        flags = ShutdownFlags(rawValue: try r.readUInt32())
        displayMessage = try r.readBytes(Self.displayMessageSize)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(reasonCode)
        w.writeUInt32(timeoutSeconds)
        w.writeUInt32(flags.rawValue)
        w.writeField(displayMessage, Self.displayMessageSize)
    }
}
