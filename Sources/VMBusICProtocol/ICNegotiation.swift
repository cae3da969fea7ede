import VMBusWire

/// The framework and service versions both sides agreed on.
public struct ICNegotiatedVersions: Hashable, Sendable, CustomStringConvertible {
    public var framework: ICVersion
    public var service: ICVersion

    public init(framework: ICVersion, service: ICVersion) {
        self.framework = framework
        self.service = service
    }

    public var description: String { "framework \(framework), service \(service)" }
}

/// IC version negotiation, both sides, as pure functions over packet bytes.
///
/// The guest rule is Linux's `vmbus_prep_negotiate_resp` (drivers/hv/channel_mgmt.c): walk our own list in
/// order (newest first, so "highest" means "first in our list") and take the first entry the host lists
/// anywhere; framework first, then service. The answer is the request itself, patched in place and sent
/// back at the request's length, so host bytes Linux does not overwrite survive into it: `icflags` becomes
/// ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE and `icmsgsize` 16, and `status` stays what the host
/// wrote, even in a refusal. A refusal is said only by the counts 0, 0 (Linux sets no HV_E_FAIL here).
public enum ICNegotiation {
    /// Offset of `icmsg_negotiate` in a packet.
    static let negotiateOffset = ICMessage.headerSize
    /// Offset of `icmsg_hdr.icmsgsize`, `icflags` in a packet.
    static let icmsgsizeOffset = VMBusPipeHeader.wireSize + 10
    static let icflagsOffset = VMBusPipeHeader.wireSize + 17
    /// The `icmsgsize` Linux writes into every negotiate answer: the negotiate head plus two versions.
    public static let linuxResponseSize: UInt16 = 0x10

    /// Linux's choice: the first of `ours` that appears in `offered`.
    public static func firstCommon(ours: [ICVersion], offered: [ICVersion]) -> ICVersion? {
        ours.first { offered.contains($0) }
    }

    /// Linux's choice of both versions, or `nil` when either has no common version.
    public static func select(_ offered: ICNegotiateMessage, frameworkVersions: [ICVersion],
                              serviceVersions: [ICVersion]) -> ICNegotiatedVersions? {
        guard let fw = firstCommon(ours: frameworkVersions, offered: offered.frameworkVersions),
              let srv = firstCommon(ours: serviceVersions, offered: offered.serviceVersions) else { return nil }
        return ICNegotiatedVersions(framework: fw, service: srv)
    }

    /// What a guest sends back for a NEGOTIATE packet, and what it agreed to.
    public struct GuestAnswer: Equatable, Sendable {
        /// The bytes to send: as long as the request.
        public var response: [UInt8]
        /// `nil` when the answer refuses (counts 0, 0).
        public var versions: ICNegotiatedVersions?
    }

    /// The guest's answer to a well-formed NEGOTIATE packet (pipe header, `icmsg_hdr`, `icmsg_negotiate`).
    ///
    /// Throws for what Linux treats as malformed: fewer than 28 bytes (Linux drops the packet), fewer than
    /// 32 (no counts), more than 100 versions of a kind or more than the packet holds. ``linuxRefusal(of:)``
    /// gives the answer Linux sends in the last two cases. No common version is not an error: the answer
    /// then has counts 0, 0 and ``GuestAnswer/versions`` is `nil`.
    public static func guestAnswer(to packet: [UInt8], frameworkVersions: [ICVersion],
                                   serviceVersions: [ICVersion]) throws(WireError) -> GuestAnswer {
        var r = WireReader(packet)
        _ = try VMBusPipeHeader(from: &r)
        _ = try ICMessageHeader(from: &r)
        let offered = try ICNegotiateMessage(from: &r)
        var out = packet
        var frameworkEntry = ICVersion(UInt16(offered.frameworkVersions.count), 0)
        var serviceEntry = ICVersion(UInt16(offered.serviceVersions.count), 0)
        var versions: ICNegotiatedVersions?
        // Linux seeds each reply entry with the host's count and overwrites it only on a match: a refusal
        // carries the counts back as "major" versions.
        if let fw = firstCommon(ours: frameworkVersions, offered: offered.frameworkVersions) {
            frameworkEntry = fw
            if let srv = firstCommon(ours: serviceVersions, offered: offered.serviceVersions) {
                serviceEntry = srv
                versions = ICNegotiatedVersions(framework: fw, service: srv)
            }
        }
        let count: UInt16 = versions == nil ? 0 : 1
        patch(&out, count: count, frameworkEntry: frameworkEntry, serviceEntry: serviceEntry)
        return GuestAnswer(response: out, versions: versions)
    }

    /// The answer Linux sends to a NEGOTIATE packet it cannot parse
    /// (see ``guestAnswer(to:frameworkVersions:serviceVersions:)``): with room for the counts, counts 0, 0 and the host's counts as the two entries; without, only the
    /// answer flags. `nil` for fewer than 28 bytes, which Linux does not answer.
    public static func linuxRefusal(of packet: [UInt8]) -> [UInt8]? {
        guard packet.count >= ICMessage.headerSize else { return nil }
        var out = packet
        out[icflagsOffset] = ICMessageFlags.guestResponse.rawValue
        guard packet.count >= negotiateOffset + 4 else { return out }
        let frameworkCount = u16(packet, negotiateOffset)
        let serviceCount = u16(packet, negotiateOffset + 2)
        patch(&out, count: 0, frameworkEntry: ICVersion(frameworkCount, 0), serviceEntry: ICVersion(serviceCount, 0))
        return out
    }

    /// A host's NEGOTIATE request listing `frameworkVersions` then `serviceVersions`, in the order given.
    /// Versions in the header are 0.0, as OpenVMM's host sends them.
    public static func request(frameworkVersions: [ICVersion], serviceVersions: [ICVersion],
                               transactionID: UInt8 = 0) -> [UInt8] {
        let negotiate = ICNegotiateMessage(frameworkVersions: frameworkVersions, serviceVersions: serviceVersions)
        let header = ICMessageHeader(icmsgtype: .negotiate, icmsgsize: 0, ictransactionID: transactionID)
        return ICMessage(header: header, encoding: negotiate).wireBytes
    }

    /// A host's reading of the guest's answer: the agreed versions, or `nil` for a refusal (counts 0, 0).
    /// Throws for a packet that is not a NEGOTIATE answer, other counts, or a short packet.
    public static func parseAnswer(_ packet: [UInt8]) throws(WireError) -> ICNegotiatedVersions? {
        let message = try ICMessage(packet: packet)
        guard message.header.icmsgtype == .negotiate else {
            throw .invalidValue(field: "icmsgtype", value: UInt64(message.header.icmsgtype.rawValue))
        }
        guard message.header.icflags.contains(.response) else {
            throw .invalidValue(field: "icflags", value: UInt64(message.header.icflags.rawValue))
        }
        var r = WireReader(message.body)
        let frameworkCount = try r.readUInt16()
        let serviceCount = try r.readUInt16()
        try r.skip(4)
        switch (frameworkCount, serviceCount) {
        case (0, 0):
            return nil
        case (1, 1):
            return ICNegotiatedVersions(framework: try ICVersion(from: &r), service: try ICVersion(from: &r))
        default:
            throw .invalidValue(field: "icframe_vercnt/icmsg_vercnt",
                                value: UInt64(frameworkCount) << 16 | UInt64(serviceCount))
        }
    }

    // MARK: In-place patching, as Linux writes its receive buffer

    private static func patch(_ b: inout [UInt8], count: UInt16, frameworkEntry: ICVersion, serviceEntry: ICVersion) {
        b[icflagsOffset] = ICMessageFlags.guestResponse.rawValue
        put16(&b, icmsgsizeOffset, linuxResponseSize)
        put16(&b, negotiateOffset, count)
        put16(&b, negotiateOffset + 2, count)
        // Linux writes both entries into its receive buffer but sends only the request's length, so an entry
        // past the end of the request never reaches the host.
        let first = negotiateOffset + ICNegotiateMessage.fixedSize
        put16(&b, first, frameworkEntry.major)
        put16(&b, first + 2, frameworkEntry.minor)
        put16(&b, first + 4, serviceEntry.major)
        put16(&b, first + 6, serviceEntry.minor)
    }

    private static func put16(_ b: inout [UInt8], _ offset: Int, _ v: UInt16) {
        guard offset + 2 <= b.count else { return }
        b[offset] = UInt8(truncatingIfNeeded: v)
        b[offset + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }

    private static func u16(_ b: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(b[offset]) | UInt16(b[offset + 1]) << 8
    }
}
