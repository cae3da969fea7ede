import VMBusWire

/// `struct icmsg_negotiate` with its `icversion_data[]`: the framework versions, then the service versions.
///
/// A host lists what it speaks; a guest answers with one of each (counts 1, 1) or refuses (counts 0, 0).
public struct ICNegotiateMessage: Equatable, Sendable {
    public static let cName = "icmsg_negotiate"
    /// `sizeof(struct icmsg_negotiate)`: the counts and `reserved`, without the versions.
    public static let fixedSize = 8
    /// `IC_VERSION_NEGOTIATION_MAX_VER_COUNT`: Linux refuses more framework or more service versions.
    public static let maxVersionCount = 100

    public var frameworkVersions: [ICVersion]
    public var serviceVersions: [ICVersion]
    /// Written as zero unless set, ignored on read (Linux echoes whatever the host put there).
    public var reserved: UInt32

    public init(frameworkVersions: [ICVersion], serviceVersions: [ICVersion], reserved: UInt32 = 0) {
        self.frameworkVersions = frameworkVersions
        self.serviceVersions = serviceVersions
        self.reserved = reserved
    }

    /// `ICMSG_NEGOTIATE_PKT_SIZE` minus `ICMSG_HDR`.
    public static func size(frameworkCount: Int, serviceCount: Int) -> Int {
        fixedSize + (frameworkCount + serviceCount) * ICVersion.wireSize
    }

    public var wireSize: Int { Self.size(frameworkCount: frameworkVersions.count, serviceCount: serviceVersions.count) }

    /// Decodes a peer's message. Counts over 100 or over what the bytes hold are
    /// ``WireError/countTooLarge(field:count:limit:)``, checked before anything is allocated.
    public init(from r: inout WireReader) throws(WireError) {
        let frameworkCount = Int(try r.readUInt16())
        let serviceCount = Int(try r.readUInt16())
        reserved = try r.readUInt32()
        for (field, count) in [("icframe_vercnt", frameworkCount), ("icmsg_vercnt", serviceCount)]
        where count > Self.maxVersionCount {
            throw .countTooLarge(field: field, count: count, limit: Self.maxVersionCount)
        }
        let fit = r.remaining / ICVersion.wireSize
        guard frameworkCount + serviceCount <= fit else {
            throw .countTooLarge(field: "icversion_data", count: frameworkCount + serviceCount, limit: fit)
        }
        frameworkVersions = []
        serviceVersions = []
        for _ in 0..<frameworkCount { frameworkVersions.append(try ICVersion(from: &r)) }
        for _ in 0..<serviceCount { serviceVersions.append(try ICVersion(from: &r)) }
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt16(UInt16(truncatingIfNeeded: frameworkVersions.count))
        w.writeUInt16(UInt16(truncatingIfNeeded: serviceVersions.count))
        w.writeUInt32(reserved)
        for v in frameworkVersions { v.encode(into: &w) }
        for v in serviceVersions { v.encode(into: &w) }
    }
}

extension ICNegotiateMessage: WireEncodable, WireDecodable {}
