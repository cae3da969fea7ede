/// An NDIS object identifier, the `oid` of RNDIS QUERY and SET. Open: a guest asks for OIDs a host does not
/// know and must get a failure status back, not silence.
///
/// The general and 802.3 OIDs carry the `RNDIS_OID_*` names of Linux's `include/linux/rndis.h`; the offload
/// and RSS ones the `OID_*` names of `drivers/net/hyperv/hyperv_net.h`. The `802_3` OIDs are spelled
/// `ieee802_3…` since a Swift name cannot start with a digit.
public struct RNDISOID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    // What Linux's rndis_filter.c asks and sets, in its order: GEN_MAXIMUM_FRAME_SIZE, 802_3_PERMANENT_ADDRESS,
    // GEN_FRIENDLY_NAME, TCP_OFFLOAD_HARDWARE_CAPABILITIES, TCP_OFFLOAD_PARAMETERS, GEN_MEDIA_CONNECT_STATUS,
    // GEN_LINK_SPEED and GEN_RECEIVE_SCALE_CAPABILITIES (NVSP ≥ 5), GEN_RECEIVE_SCALE_PARAMETERS,
    // GEN_CURRENT_PACKET_FILTER, GEN_RNDIS_CONFIG_PARAMETER (MAC change), 802_3_MULTICAST_LIST.

    /// `RNDIS_OID_GEN_SUPPORTED_LIST`
    public static let genSupportedList = Self(rawValue: 0x00010101)
    /// `RNDIS_OID_GEN_HARDWARE_STATUS`
    public static let genHardwareStatus = Self(rawValue: 0x00010102)
    /// `RNDIS_OID_GEN_MEDIA_SUPPORTED`
    public static let genMediaSupported = Self(rawValue: 0x00010103)
    /// `RNDIS_OID_GEN_MEDIA_IN_USE`
    public static let genMediaInUse = Self(rawValue: 0x00010104)
    /// `RNDIS_OID_GEN_MAXIMUM_LOOKAHEAD`
    public static let genMaximumLookahead = Self(rawValue: 0x00010105)
    /// `RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE`
    public static let genMaximumFrameSize = Self(rawValue: 0x00010106)
    /// `RNDIS_OID_GEN_LINK_SPEED`
    public static let genLinkSpeed = Self(rawValue: 0x00010107)
    /// `RNDIS_OID_GEN_TRANSMIT_BUFFER_SPACE`
    public static let genTransmitBufferSpace = Self(rawValue: 0x00010108)
    /// `RNDIS_OID_GEN_RECEIVE_BUFFER_SPACE`
    public static let genReceiveBufferSpace = Self(rawValue: 0x00010109)
    /// `RNDIS_OID_GEN_TRANSMIT_BLOCK_SIZE`
    public static let genTransmitBlockSize = Self(rawValue: 0x0001010A)
    /// `RNDIS_OID_GEN_RECEIVE_BLOCK_SIZE`
    public static let genReceiveBlockSize = Self(rawValue: 0x0001010B)
    /// `RNDIS_OID_GEN_VENDOR_ID`
    public static let genVendorID = Self(rawValue: 0x0001010C)
    /// `RNDIS_OID_GEN_VENDOR_DESCRIPTION`
    public static let genVendorDescription = Self(rawValue: 0x0001010D)
    /// `RNDIS_OID_GEN_CURRENT_PACKET_FILTER`
    public static let genCurrentPacketFilter = Self(rawValue: 0x0001010E)
    /// `RNDIS_OID_GEN_CURRENT_LOOKAHEAD`
    public static let genCurrentLookahead = Self(rawValue: 0x0001010F)
    /// `RNDIS_OID_GEN_DRIVER_VERSION`
    public static let genDriverVersion = Self(rawValue: 0x00010110)
    /// `RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE`
    public static let genMaximumTotalSize = Self(rawValue: 0x00010111)
    /// `RNDIS_OID_GEN_PROTOCOL_OPTIONS`
    public static let genProtocolOptions = Self(rawValue: 0x00010112)
    /// `RNDIS_OID_GEN_MAC_OPTIONS`
    public static let genMACOptions = Self(rawValue: 0x00010113)
    /// `RNDIS_OID_GEN_MEDIA_CONNECT_STATUS`
    public static let genMediaConnectStatus = Self(rawValue: 0x00010114)
    /// `RNDIS_OID_GEN_MAXIMUM_SEND_PACKETS`
    public static let genMaximumSendPackets = Self(rawValue: 0x00010115)
    /// `RNDIS_OID_GEN_VENDOR_DRIVER_VERSION`
    public static let genVendorDriverVersion = Self(rawValue: 0x00010116)
    /// `RNDIS_OID_GEN_SUPPORTED_GUIDS`
    public static let genSupportedGUIDs = Self(rawValue: 0x00010117)
    /// `RNDIS_OID_GEN_NETWORK_LAYER_ADDRESSES`
    public static let genNetworkLayerAddresses = Self(rawValue: 0x00010118)
    /// `RNDIS_OID_GEN_TRANSPORT_HEADER_OFFSET`
    public static let genTransportHeaderOffset = Self(rawValue: 0x00010119)
    /// `RNDIS_OID_GEN_PHYSICAL_MEDIUM`
    public static let genPhysicalMedium = Self(rawValue: 0x00010202)
    /// `RNDIS_OID_GEN_MACHINE_NAME`
    public static let genMachineName = Self(rawValue: 0x0001021A)
    /// `RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER`
    public static let genRNDISConfigParameter = Self(rawValue: 0x0001021B)
    /// `RNDIS_OID_GEN_VLAN_ID`
    public static let genVLANID = Self(rawValue: 0x0001021C)
    /// `RNDIS_OID_GEN_MEDIA_CAPABILITIES`
    public static let genMediaCapabilities = Self(rawValue: 0x00010201)
    /// `RNDIS_OID_GEN_XMIT_OK`
    public static let genXmitOK = Self(rawValue: 0x00020101)
    /// `RNDIS_OID_GEN_RCV_OK`
    public static let genRcvOK = Self(rawValue: 0x00020102)
    /// `RNDIS_OID_GEN_XMIT_ERROR`
    public static let genXmitError = Self(rawValue: 0x00020103)
    /// `RNDIS_OID_GEN_RCV_ERROR`
    public static let genRcvError = Self(rawValue: 0x00020104)
    /// `RNDIS_OID_GEN_RCV_NO_BUFFER`
    public static let genRcvNoBuffer = Self(rawValue: 0x00020105)
    /// `RNDIS_OID_GEN_DIRECTED_BYTES_XMIT`
    public static let genDirectedBytesXmit = Self(rawValue: 0x00020201)
    /// `RNDIS_OID_GEN_DIRECTED_FRAMES_XMIT`
    public static let genDirectedFramesXmit = Self(rawValue: 0x00020202)
    /// `RNDIS_OID_GEN_MULTICAST_BYTES_XMIT`
    public static let genMulticastBytesXmit = Self(rawValue: 0x00020203)
    /// `RNDIS_OID_GEN_MULTICAST_FRAMES_XMIT`
    public static let genMulticastFramesXmit = Self(rawValue: 0x00020204)
    /// `RNDIS_OID_GEN_BROADCAST_BYTES_XMIT`
    public static let genBroadcastBytesXmit = Self(rawValue: 0x00020205)
    /// `RNDIS_OID_GEN_BROADCAST_FRAMES_XMIT`
    public static let genBroadcastFramesXmit = Self(rawValue: 0x00020206)
    /// `RNDIS_OID_GEN_DIRECTED_BYTES_RCV`
    public static let genDirectedBytesRcv = Self(rawValue: 0x00020207)
    /// `RNDIS_OID_GEN_DIRECTED_FRAMES_RCV`
    public static let genDirectedFramesRcv = Self(rawValue: 0x00020208)
    /// `RNDIS_OID_GEN_MULTICAST_BYTES_RCV`
    public static let genMulticastBytesRcv = Self(rawValue: 0x00020209)
    /// `RNDIS_OID_GEN_MULTICAST_FRAMES_RCV`
    public static let genMulticastFramesRcv = Self(rawValue: 0x0002020A)
    /// `RNDIS_OID_GEN_BROADCAST_BYTES_RCV`
    public static let genBroadcastBytesRcv = Self(rawValue: 0x0002020B)
    /// `RNDIS_OID_GEN_BROADCAST_FRAMES_RCV`
    public static let genBroadcastFramesRcv = Self(rawValue: 0x0002020C)
    /// `RNDIS_OID_GEN_RCV_CRC_ERROR`
    public static let genRcvCRCError = Self(rawValue: 0x0002020D)
    /// `RNDIS_OID_GEN_TRANSMIT_QUEUE_LENGTH`
    public static let genTransmitQueueLength = Self(rawValue: 0x0002020E)
    /// `RNDIS_OID_GEN_GET_TIME_CAPS`
    public static let genGetTimeCaps = Self(rawValue: 0x0002020F)
    /// `RNDIS_OID_GEN_GET_NETCARD_TIME`
    public static let genGetNetcardTime = Self(rawValue: 0x00020210)
    /// `RNDIS_OID_GEN_NETCARD_LOAD`
    public static let genNetcardLoad = Self(rawValue: 0x00020211)
    /// `RNDIS_OID_GEN_DEVICE_PROFILE`
    public static let genDeviceProfile = Self(rawValue: 0x00020212)
    /// `RNDIS_OID_GEN_INIT_TIME_MS`
    public static let genInitTimeMS = Self(rawValue: 0x00020213)
    /// `RNDIS_OID_GEN_RESET_COUNTS`
    public static let genResetCounts = Self(rawValue: 0x00020214)
    /// `RNDIS_OID_GEN_MEDIA_SENSE_COUNTS`
    public static let genMediaSenseCounts = Self(rawValue: 0x00020215)
    /// `RNDIS_OID_GEN_FRIENDLY_NAME`
    public static let genFriendlyName = Self(rawValue: 0x00020216)
    /// `RNDIS_OID_GEN_MINIPORT_INFO`
    public static let genMiniportInfo = Self(rawValue: 0x00020217)
    /// `RNDIS_OID_GEN_RESET_VERIFY_PARAMETERS`
    public static let genResetVerifyParameters = Self(rawValue: 0x00020218)
    /// `RNDIS_OID_802_3_PERMANENT_ADDRESS`
    public static let ieee802_3PermanentAddress = Self(rawValue: 0x01010101)
    /// `RNDIS_OID_802_3_CURRENT_ADDRESS`
    public static let ieee802_3CurrentAddress = Self(rawValue: 0x01010102)
    /// `RNDIS_OID_802_3_MULTICAST_LIST`
    public static let ieee802_3MulticastList = Self(rawValue: 0x01010103)
    /// `RNDIS_OID_802_3_MAXIMUM_LIST_SIZE`
    public static let ieee802_3MaximumListSize = Self(rawValue: 0x01010104)
    /// `RNDIS_OID_802_3_MAC_OPTIONS`
    public static let ieee802_3MACOptions = Self(rawValue: 0x01010105)
    /// `RNDIS_OID_802_3_RCV_ERROR_ALIGNMENT`
    public static let ieee802_3RcvErrorAlignment = Self(rawValue: 0x01020101)
    /// `RNDIS_OID_802_3_XMIT_ONE_COLLISION`
    public static let ieee802_3XmitOneCollision = Self(rawValue: 0x01020102)
    /// `RNDIS_OID_802_3_XMIT_MORE_COLLISIONS`
    public static let ieee802_3XmitMoreCollisions = Self(rawValue: 0x01020103)
    /// `RNDIS_OID_802_3_XMIT_DEFERRED`
    public static let ieee802_3XmitDeferred = Self(rawValue: 0x01020201)
    /// `RNDIS_OID_802_3_XMIT_MAX_COLLISIONS`
    public static let ieee802_3XmitMaxCollisions = Self(rawValue: 0x01020202)
    /// `RNDIS_OID_802_3_RCV_OVERRUN`
    public static let ieee802_3RcvOverrun = Self(rawValue: 0x01020203)
    /// `RNDIS_OID_802_3_XMIT_UNDERRUN`
    public static let ieee802_3XmitUnderrun = Self(rawValue: 0x01020204)
    /// `RNDIS_OID_802_3_XMIT_HEARTBEAT_FAILURE`
    public static let ieee802_3XmitHeartbeatFailure = Self(rawValue: 0x01020205)
    /// `RNDIS_OID_802_3_XMIT_TIMES_CRS_LOST`
    public static let ieee802_3XmitTimesCRSLost = Self(rawValue: 0x01020206)
    /// `RNDIS_OID_802_3_XMIT_LATE_COLLISIONS`
    public static let ieee802_3XmitLateCollisions = Self(rawValue: 0x01020207)
    // hyperv_net.h
    /// `OID_GEN_RECEIVE_SCALE_CAPABILITIES`: answered with ``NDISReceiveScaleCapabilities``.
    public static let genReceiveScaleCapabilities = Self(rawValue: 0x0001_0203)
    /// `OID_GEN_RECEIVE_SCALE_PARAMETERS`: set with ``NDISReceiveScaleParameters``.
    public static let genReceiveScaleParameters = Self(rawValue: 0x0001_0204)
    /// `OID_OFFLOAD_ENCAPSULATION`
    public static let offloadEncapsulation = Self(rawValue: 0x0101_010A)
    /// `OID_TCP_OFFLOAD_CURRENT_CONFIG`
    public static let tcpOffloadCurrentConfig = Self(rawValue: 0xFC01_020B)
    /// `OID_TCP_OFFLOAD_PARAMETERS`: set with ``NDISOffloadParams``.
    public static let tcpOffloadParameters = Self(rawValue: 0xFC01_020C)
    /// `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES`: answered with ``NDISOffload``.
    public static let tcpOffloadHardwareCapabilities = Self(rawValue: 0xFC01_020D)
    /// `OID_TCP_CONNECTION_OFFLOAD_CURRENT_CONFIG`
    public static let tcpConnectionOffloadCurrentConfig = Self(rawValue: 0xFC01_020E)
    /// `OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES`
    public static let tcpConnectionOffloadHardwareCapabilities = Self(rawValue: 0xFC01_020F)

    public var description: String { "OID 0x\(String(rawValue, radix: 16))" }
}
