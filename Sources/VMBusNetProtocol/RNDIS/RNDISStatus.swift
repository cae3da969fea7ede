/// An RNDIS (and NDIS) status code: the `status` of completions and the event of INDICATE_STATUS. The values
/// are NDIS's `NDIS_STATUS_*` (`RNDIS_STATUS_X` == `NDIS_STATUS_X`); the names are those of Linux's
/// `include/linux/rndis.h`. Open: hosts and guests send codes this list does not know.
public struct RNDISStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `RNDIS_STATUS_SUCCESS`
    public static let success = Self(rawValue: 0x00000000)
    /// `RNDIS_STATUS_PENDING`
    public static let pending = Self(rawValue: 0x00000103)
    /// `RNDIS_STATUS_NOT_RECOGNIZED`
    public static let notRecognized = Self(rawValue: 0x00010001)
    /// `RNDIS_STATUS_NOT_COPIED`
    public static let notCopied = Self(rawValue: 0x00010002)
    /// `RNDIS_STATUS_NOT_ACCEPTED`
    public static let notAccepted = Self(rawValue: 0x00010003)
    /// `RNDIS_STATUS_CALL_ACTIVE`
    public static let callActive = Self(rawValue: 0x00010007)
    /// `RNDIS_STATUS_ONLINE`
    public static let online = Self(rawValue: 0x40010003)
    /// `RNDIS_STATUS_RESET_START`
    public static let resetStart = Self(rawValue: 0x40010004)
    /// `RNDIS_STATUS_RESET_END`
    public static let resetEnd = Self(rawValue: 0x40010005)
    /// `RNDIS_STATUS_RING_STATUS`
    public static let ringStatus = Self(rawValue: 0x40010006)
    /// `RNDIS_STATUS_CLOSED`
    public static let closed = Self(rawValue: 0x40010007)
    /// `RNDIS_STATUS_WAN_LINE_UP`
    public static let wanLineUp = Self(rawValue: 0x40010008)
    /// `RNDIS_STATUS_WAN_LINE_DOWN`
    public static let wanLineDown = Self(rawValue: 0x40010009)
    /// `RNDIS_STATUS_WAN_FRAGMENT`
    public static let wanFragment = Self(rawValue: 0x4001000A)
    /// `RNDIS_STATUS_MEDIA_CONNECT`
    public static let mediaConnect = Self(rawValue: 0x4001000B)
    /// `RNDIS_STATUS_MEDIA_DISCONNECT`
    public static let mediaDisconnect = Self(rawValue: 0x4001000C)
    /// `RNDIS_STATUS_HARDWARE_LINE_UP`
    public static let hardwareLineUp = Self(rawValue: 0x4001000D)
    /// `RNDIS_STATUS_HARDWARE_LINE_DOWN`
    public static let hardwareLineDown = Self(rawValue: 0x4001000E)
    /// `RNDIS_STATUS_INTERFACE_UP`
    public static let interfaceUp = Self(rawValue: 0x4001000F)
    /// `RNDIS_STATUS_INTERFACE_DOWN`
    public static let interfaceDown = Self(rawValue: 0x40010010)
    /// `RNDIS_STATUS_MEDIA_BUSY`
    public static let mediaBusy = Self(rawValue: 0x40010011)
    /// `RNDIS_STATUS_MEDIA_SPECIFIC_INDICATION`
    public static let mediaSpecificIndication = Self(rawValue: 0x40010012)
    /// `RNDIS_STATUS_LINK_SPEED_CHANGE`
    public static let linkSpeedChange = Self(rawValue: 0x40010013)
    /// `RNDIS_STATUS_NETWORK_CHANGE`
    public static let networkChange = Self(rawValue: 0x40010018)
    /// `RNDIS_STATUS_NOT_RESETTABLE`
    public static let notResettable = Self(rawValue: 0x80010001)
    /// `RNDIS_STATUS_SOFT_ERRORS`
    public static let softErrors = Self(rawValue: 0x80010003)
    /// `RNDIS_STATUS_HARD_ERRORS`
    public static let hardErrors = Self(rawValue: 0x80010004)
    /// `RNDIS_STATUS_BUFFER_OVERFLOW`
    public static let bufferOverflow = Self(rawValue: 0x80000005)
    /// `RNDIS_STATUS_FAILURE`
    public static let failure = Self(rawValue: 0xC0000001)
    /// `RNDIS_STATUS_RESOURCES`
    public static let resources = Self(rawValue: 0xC000009A)
    /// `RNDIS_STATUS_NOT_SUPPORTED`
    public static let notSupported = Self(rawValue: 0xC00000BB)
    /// `RNDIS_STATUS_CLOSING`
    public static let closing = Self(rawValue: 0xC0010002)
    /// `RNDIS_STATUS_BAD_VERSION`
    public static let badVersion = Self(rawValue: 0xC0010004)
    /// `RNDIS_STATUS_BAD_CHARACTERISTICS`
    public static let badCharacteristics = Self(rawValue: 0xC0010005)
    /// `RNDIS_STATUS_ADAPTER_NOT_FOUND`
    public static let adapterNotFound = Self(rawValue: 0xC0010006)
    /// `RNDIS_STATUS_OPEN_FAILED`
    public static let openFailed = Self(rawValue: 0xC0010007)
    /// `RNDIS_STATUS_DEVICE_FAILED`
    public static let deviceFailed = Self(rawValue: 0xC0010008)
    /// `RNDIS_STATUS_MULTICAST_FULL`
    public static let multicastFull = Self(rawValue: 0xC0010009)
    /// `RNDIS_STATUS_MULTICAST_EXISTS`
    public static let multicastExists = Self(rawValue: 0xC001000A)
    /// `RNDIS_STATUS_MULTICAST_NOT_FOUND`
    public static let multicastNotFound = Self(rawValue: 0xC001000B)
    /// `RNDIS_STATUS_REQUEST_ABORTED`
    public static let requestAborted = Self(rawValue: 0xC001000C)
    /// `RNDIS_STATUS_RESET_IN_PROGRESS`
    public static let resetInProgress = Self(rawValue: 0xC001000D)
    /// `RNDIS_STATUS_CLOSING_INDICATING`
    public static let closingIndicating = Self(rawValue: 0xC001000E)
    /// `RNDIS_STATUS_INVALID_PACKET`
    public static let invalidPacket = Self(rawValue: 0xC001000F)
    /// `RNDIS_STATUS_OPEN_LIST_FULL`
    public static let openListFull = Self(rawValue: 0xC0010010)
    /// `RNDIS_STATUS_ADAPTER_NOT_READY`
    public static let adapterNotReady = Self(rawValue: 0xC0010011)
    /// `RNDIS_STATUS_ADAPTER_NOT_OPEN`
    public static let adapterNotOpen = Self(rawValue: 0xC0010012)
    /// `RNDIS_STATUS_NOT_INDICATING`
    public static let notIndicating = Self(rawValue: 0xC0010013)
    /// `RNDIS_STATUS_INVALID_LENGTH`
    public static let invalidLength = Self(rawValue: 0xC0010014)
    /// `RNDIS_STATUS_INVALID_DATA`
    public static let invalidData = Self(rawValue: 0xC0010015)
    /// `RNDIS_STATUS_BUFFER_TOO_SHORT`
    public static let bufferTooShort = Self(rawValue: 0xC0010016)
    /// `RNDIS_STATUS_INVALID_OID`
    public static let invalidOID = Self(rawValue: 0xC0010017)
    /// `RNDIS_STATUS_ADAPTER_REMOVED`
    public static let adapterRemoved = Self(rawValue: 0xC0010018)
    /// `RNDIS_STATUS_UNSUPPORTED_MEDIA`
    public static let unsupportedMedia = Self(rawValue: 0xC0010019)
    /// `RNDIS_STATUS_GROUP_ADDRESS_IN_USE`
    public static let groupAddressInUse = Self(rawValue: 0xC001001A)
    /// `RNDIS_STATUS_FILE_NOT_FOUND`
    public static let fileNotFound = Self(rawValue: 0xC001001B)
    /// `RNDIS_STATUS_ERROR_READING_FILE`
    public static let errorReadingFile = Self(rawValue: 0xC001001C)
    /// `RNDIS_STATUS_ALREADY_MAPPED`
    public static let alreadyMapped = Self(rawValue: 0xC001001D)
    /// `RNDIS_STATUS_RESOURCE_CONFLICT`
    public static let resourceConflict = Self(rawValue: 0xC001001E)
    /// `RNDIS_STATUS_NO_CABLE`
    public static let noCable = Self(rawValue: 0xC001001F)
    /// `RNDIS_STATUS_INVALID_SAP`
    public static let invalidSAP = Self(rawValue: 0xC0010020)
    /// `RNDIS_STATUS_SAP_IN_USE`
    public static let sapInUse = Self(rawValue: 0xC0010021)
    /// `RNDIS_STATUS_INVALID_ADDRESS`
    public static let invalidAddress = Self(rawValue: 0xC0010022)
    /// `RNDIS_STATUS_VC_NOT_ACTIVATED`
    public static let vcNotActivated = Self(rawValue: 0xC0010023)
    /// `RNDIS_STATUS_DEST_OUT_OF_ORDER`
    public static let destOutOfOrder = Self(rawValue: 0xC0010024)
    /// `RNDIS_STATUS_VC_NOT_AVAILABLE`
    public static let vcNotAvailable = Self(rawValue: 0xC0010025)
    /// `RNDIS_STATUS_CELLRATE_NOT_AVAILABLE`
    public static let cellrateNotAvailable = Self(rawValue: 0xC0010026)
    /// `RNDIS_STATUS_INCOMPATABLE_QOS`
    public static let incompatableQoS = Self(rawValue: 0xC0010027)
    /// `RNDIS_STATUS_AAL_PARAMS_UNSUPPORTED`
    public static let aalParamsUnsupported = Self(rawValue: 0xC0010028)
    /// `RNDIS_STATUS_NO_ROUTE_TO_DESTINATION`
    public static let noRouteToDestination = Self(rawValue: 0xC0010029)
    /// `RNDIS_STATUS_TOKEN_RING_OPEN_ERROR`
    public static let tokenRingOpenError = Self(rawValue: 0xC0011000)
    /// Codes with the top two bits 11 are errors (NTSTATUS severity), 01 informational, 10 warnings.
    public var isError: Bool { rawValue >> 30 == 3 }

    public var description: String { "RNDIS status 0x\(String(rawValue, radix: 16))" }
}
