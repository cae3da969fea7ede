import VMBusWire

/// `struct hv_vss_msg` (12 bytes): the VSS message, on VMBus (after `ICMSG_HDR`) and through
/// /dev/vmbus/hv_vss, where Debian's hv_vss_daemon reads it and writes its `error` back.
///
/// Two unions: `vss_hdr` or `int error` at 0, `vss_cf` or `dm_info` at 8. Both views of each are
/// accessors over the same raw words.
public struct VSSMessage: Equatable, Sendable, WireCodable {
    public static let cName = "hv_vss_msg"
    public static let wireSize = 12

    /// Bytes 0–7, little-endian.
    public var head: UInt64
    /// Bytes 8–11: `vss_cf.flags` or `dm_info.flags`.
    public var flags: UInt32

    public init(operation: VSSOperation, flags: UInt32 = 0) {
        head = VSSHeader(operation: operation).raw
        self.flags = flags
    }

    /// `vss_hdr`
    public var vssHeader: VSSHeader {
        get { VSSHeader(raw: head) }
        set { head = newValue.raw }
    }

    /// `vss_hdr.operation`
    public var operation: VSSOperation {
        get { vssHeader.operation }
        set { vssHeader.operation = newValue }
    }

    /// `error`: the daemon's answer. It overwrites the operation and the first 3 reserved bytes only.
    public var error: ICStatus {
        get { ICStatus(rawValue: UInt32(truncatingIfNeeded: head)) }
        set { head = head & 0xFFFF_FFFF_0000_0000 | UInt64(newValue.rawValue) }
    }

    /// `vss_cf`
    public var vssCF: VSSCheckFeature {
        get { VSSCheckFeature(flags: flags) }
        set { flags = newValue.flags }
    }

    /// `dm_info`
    public var dmInfo: VSSCheckDMInfo {
        get { VSSCheckDMInfo(flags: flags) }
        set { flags = newValue.flags }
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        head = try r.readUInt64()
        flags = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt64(head)
        w.writeUInt32(flags)
    }
}
