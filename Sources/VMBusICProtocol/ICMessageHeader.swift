import VMBusWire

/// `struct icmsg_hdr` (20 bytes): follows ``VMBusPipeHeader`` in every IC packet.
public struct ICMessageHeader: Equatable, Sendable, WireCodable {
    public static let cName = "icmsg_hdr"
    public static let wireSize = 20

    public var icverframe: ICVersion
    public var icmsgtype: ICMessageType
    public var icvermsg: ICVersion
    /// Bytes of the body. Linux never reads it and sets it only in negotiate answers (to 16), so a guest
    /// answer's size can disagree with its body.
    public var icmsgsize: UInt16
    public var status: ICStatus
    /// Echoed in the answer. OpenVMM's host sends 0 and insists on 0 in the answer.
    public var ictransactionID: UInt8
    public var icflags: ICMessageFlags
    /// Written as zero, ignored on read.
    public var reserved: UInt16

    public init(icverframe: ICVersion = ICVersion(0, 0), icmsgtype: ICMessageType,
                icvermsg: ICVersion = ICVersion(0, 0), icmsgsize: UInt16, status: ICStatus = .ok,
                ictransactionID: UInt8 = 0, icflags: ICMessageFlags = .hostRequest, reserved: UInt16 = 0) {
        self.icverframe = icverframe
        self.icmsgtype = icmsgtype
        self.icvermsg = icvermsg
        self.icmsgsize = icmsgsize
        self.status = status
        self.ictransactionID = ictransactionID
        self.icflags = icflags
        self.reserved = reserved
    }

    public init(from r: inout WireReader) throws(WireError) {
        icverframe = try ICVersion(from: &r)
        icmsgtype = ICMessageType(rawValue: try r.readUInt16())
        icvermsg = try ICVersion(from: &r)
        icmsgsize = try r.readUInt16()
        status = ICStatus(rawValue: try r.readUInt32())
        ictransactionID = try r.readUInt8()
        icflags = ICMessageFlags(rawValue: try r.readUInt8())
        reserved = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        icverframe.encode(into: &w)
        w.writeUInt16(icmsgtype.rawValue)
        icvermsg.encode(into: &w)
        w.writeUInt16(icmsgsize)
        w.writeUInt32(status.rawValue)
        w.writeUInt8(ictransactionID)
        w.writeUInt8(icflags.rawValue)
        w.writeUInt16(reserved)
    }
}
