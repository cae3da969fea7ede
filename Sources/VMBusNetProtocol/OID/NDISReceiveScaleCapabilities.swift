import VMBusWire

/// `struct ndis_recv_scale_cap` (packed, 18 bytes): the answer to OID_GEN_RECEIVE_SCALE_CAPABILITIES. Linux
/// uses `num_recv_que` (how many channels RSS can spread over) and `num_indirect_tabent` (its table size,
/// up to `ITAB_NUM_MAX`).
public struct NDISReceiveScaleCapabilities: WireCodable, Equatable, Sendable {
    public static let cName = "ndis_recv_scale_cap"
    public static let wireSize = 18
    /// `NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2`
    public static let revision2: UInt8 = 2

    // `cap_flag` bits (`NDIS_RSS_CAPS_*`).
    /// `NDIS_RSS_CAPS_MESSAGE_SIGNALED_INTERRUPTS`
    public static let capsMessageSignaledInterrupts: UInt32 = 0x0100_0000
    /// `NDIS_RSS_CAPS_CLASSIFICATION_AT_ISR`
    public static let capsClassificationAtISR: UInt32 = 0x0200_0000
    /// `NDIS_RSS_CAPS_CLASSIFICATION_AT_DPC`
    public static let capsClassificationAtDPC: UInt32 = 0x0400_0000
    /// `NDIS_RSS_CAPS_USING_MSI_X`
    public static let capsUsingMSIX: UInt32 = 0x0800_0000
    /// `NDIS_RSS_CAPS_RSS_AVAILABLE_ON_PORTS`
    public static let capsRSSAvailableOnPorts: UInt32 = 0x1000_0000
    /// `NDIS_RSS_CAPS_SUPPORTS_MSI_X`
    public static let capsSupportsMSIX: UInt32 = 0x2000_0000
    /// `NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4`
    public static let capsHashTypeTCPIPv4: UInt32 = 0x100
    /// `NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6`
    public static let capsHashTypeTCPIPv6: UInt32 = 0x200
    /// `NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6_EX`
    public static let capsHashTypeTCPIPv6Ex: UInt32 = 0x400

    public var header: NDISObjectHeader
    public var capabilityFlags: UInt32
    public var interruptMessageCount: UInt32
    public var receiveQueueCount: UInt32
    public var indirectionTableEntryCount: UInt16

    public init(header: NDISObjectHeader = .init(type: NDISObjectHeader.typeRSSCapabilities,
                                                 revision: NDISReceiveScaleCapabilities.revision2,
                                                 size: UInt16(NDISReceiveScaleCapabilities.wireSize)),
                capabilityFlags: UInt32, interruptMessageCount: UInt32, receiveQueueCount: UInt32,
                indirectionTableEntryCount: UInt16) {
        self.header = header
        self.capabilityFlags = capabilityFlags
        self.interruptMessageCount = interruptMessageCount
        self.receiveQueueCount = receiveQueueCount
        self.indirectionTableEntryCount = indirectionTableEntryCount
    }

    public init(from r: inout WireReader) throws(WireError) {
        header = try NDISObjectHeader(from: &r)
        capabilityFlags = try r.readUInt32()
        interruptMessageCount = try r.readUInt32()
        receiveQueueCount = try r.readUInt32()
        indirectionTableEntryCount = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        header.encode(into: &w)
        w.writeUInt32(capabilityFlags)
        w.writeUInt32(interruptMessageCount)
        w.writeUInt32(receiveQueueCount)
        w.writeUInt16(indirectionTableEntryCount)
    }
}
