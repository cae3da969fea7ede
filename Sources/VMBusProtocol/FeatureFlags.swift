/// The 6.0 ("Copper") feature word: sent by the guest in the upper 32 bits of INITIATE_CONTACT's
/// `interrupt_page` union, answered with the supported subset in VERSION_RESPONSE's `supported_features`.
///
/// Linux 6.12 has no names for these bits (it never negotiates 6.0); the names are OpenVMM's
/// `FeatureFlags` (vm/devices/vmbus/vmbus_core/src/protocol.rs), camel-cased.
public struct VMBusFeatureFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `guest_specified_signal_parameters`: OPENCHANNEL may carry its own connection id and event flag.
    public static let guestSpecifiedSignalParameters = Self(rawValue: 0x1)
    /// `channel_interrupt_redirection`: OPENCHANNEL's `REDIRECT_INTERRUPT` flag is honoured.
    public static let channelInterruptRedirection = Self(rawValue: 0x2)
    /// `modify_connection`: MODIFY_CONNECTION and its response are allowed.
    public static let modifyConnection = Self(rawValue: 0x4)
    /// `client_id`: INITIATE_CONTACT carries a client id GUID at offset 40.
    public static let clientID = Self(rawValue: 0x8)
    /// `confidential_channels`: offer flags 0x2/0x4 mean confidential ring / external memory.
    public static let confidentialChannels = Self(rawValue: 0x10)
    /// `pause_resume`: PAUSE, PAUSE_RESPONSE and RESUME are allowed.
    public static let pauseResume = Self(rawValue: 0x20)
    /// `server_specified_monitor_pages`: VERSION_RESPONSE carries the host's monitor pages.
    public static let serverSpecifiedMonitorPages = Self(rawValue: 0x40)
    /// `gpa_pinning`: offers may require pinned external memory (offer flag 0x8).
    public static let gpaPinning = Self(rawValue: 0x80)

    public var description: String {
        let names: [(Self, String)] = [
            (.guestSpecifiedSignalParameters, "guestSpecifiedSignalParameters"),
            (.channelInterruptRedirection, "channelInterruptRedirection"),
            (.modifyConnection, "modifyConnection"), (.clientID, "clientID"),
            (.confidentialChannels, "confidentialChannels"), (.pauseResume, "pauseResume"),
            (.serverSpecifiedMonitorPages, "serverSpecifiedMonitorPages"), (.gpaPinning, "gpaPinning"),
        ]
        var parts = names.filter { contains($0.0) }.map(\.1)
        let unknown = rawValue & ~names.reduce(0) { $0 | $1.0.rawValue }
        if unknown != 0 { parts.append("0x\(String(unknown, radix: 16))") }
        return "[" + parts.joined(separator: ", ") + "]"
    }
}
