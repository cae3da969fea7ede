/// `ICMSGHDRFLAG_*`: `icmsg_hdr.icflags`. The host sends TRANSACTION | REQUEST; every Linux answer carries
/// TRANSACTION | RESPONSE, whatever the request had.
public struct ICMessageFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `ICMSGHDRFLAG_TRANSACTION`: the sender waits for an answer.
    public static let transaction = Self(rawValue: 1)
    /// `ICMSGHDRFLAG_REQUEST`
    public static let request = Self(rawValue: 2)
    /// `ICMSGHDRFLAG_RESPONSE`
    public static let response = Self(rawValue: 4)

    /// What a host puts on a request.
    public static let hostRequest: Self = [.transaction, .request]
    /// What Linux puts on every answer.
    public static let guestResponse: Self = [.transaction, .response]
}
