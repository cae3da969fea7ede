/// The `msg_type` word that starts every NVSP message (the anonymous `NVSP_MSG_*` enum of Linux's
/// `drivers/net/hyperv/hyperv_net.h`). Open, so a type a newer peer sends survives into the error or the
/// `.other` message that carries it.
public struct NVSPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NVSP_MSG_TYPE_NONE`
    public static let none = Self(rawValue: 0)
    /// `NVSP_MSG_TYPE_INIT`: guest → host, the version the guest wants (min = max in Linux).
    public static let `init` = Self(rawValue: 1)
    /// `NVSP_MSG_TYPE_INIT_COMPLETE`: host → guest, in the completion of INIT.
    public static let initComplete = Self(rawValue: 2)

    /// `NVSP_VERSION_MSG_START`: the first versioned message number.
    public static let versionMessageStart = Self(rawValue: 100)

    // Version 1.
    /// `NVSP_MSG1_TYPE_SEND_NDIS_VER`
    public static let sendNDISVersion = Self(rawValue: 100)
    /// `NVSP_MSG1_TYPE_SEND_RECV_BUF`
    public static let sendReceiveBuffer = Self(rawValue: 101)
    /// `NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE`
    public static let sendReceiveBufferComplete = Self(rawValue: 102)
    /// `NVSP_MSG1_TYPE_REVOKE_RECV_BUF`
    public static let revokeReceiveBuffer = Self(rawValue: 103)
    /// `NVSP_MSG1_TYPE_SEND_SEND_BUF`
    public static let sendSendBuffer = Self(rawValue: 104)
    /// `NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE`
    public static let sendSendBufferComplete = Self(rawValue: 105)
    /// `NVSP_MSG1_TYPE_REVOKE_SEND_BUF`
    public static let revokeSendBuffer = Self(rawValue: 106)
    /// `NVSP_MSG1_TYPE_SEND_RNDIS_PKT`
    public static let sendRNDISPacket = Self(rawValue: 107)
    /// `NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE`
    public static let sendRNDISPacketComplete = Self(rawValue: 108)

    // Version 2. The chimney (TCP offload) messages were never used by Linux and have no layout there.
    /// `NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF`
    public static let sendChimneyDelegatedBuffer = Self(rawValue: 109)
    /// `NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF_COMP`
    public static let sendChimneyDelegatedBufferComplete = Self(rawValue: 110)
    /// `NVSP_MSG2_TYPE_REVOKE_CHIMNEY_DELEGATED_BUF`
    public static let revokeChimneyDelegatedBuffer = Self(rawValue: 111)
    /// `NVSP_MSG2_TYPE_RESUME_CHIMNEY_RX_INDICATION`
    public static let resumeChimneyRXIndication = Self(rawValue: 112)
    /// `NVSP_MSG2_TYPE_TERMINATE_CHIMNEY`
    public static let terminateChimney = Self(rawValue: 113)
    /// `NVSP_MSG2_TYPE_TERMINATE_CHIMNEY_COMP`
    public static let terminateChimneyComplete = Self(rawValue: 114)
    /// `NVSP_MSG2_TYPE_INDICATE_CHIMNEY_EVENT`
    public static let indicateChimneyEvent = Self(rawValue: 115)
    /// `NVSP_MSG2_TYPE_SEND_CHIMNEY_PKT`
    public static let sendChimneyPacket = Self(rawValue: 116)
    /// `NVSP_MSG2_TYPE_SEND_CHIMNEY_PKT_COMP`
    public static let sendChimneyPacketComplete = Self(rawValue: 117)
    /// `NVSP_MSG2_TYPE_POST_CHIMNEY_RECV_REQ`
    public static let postChimneyReceiveRequest = Self(rawValue: 118)
    /// `NVSP_MSG2_TYPE_POST_CHIMNEY_RECV_REQ_COMP`
    public static let postChimneyReceiveRequestComplete = Self(rawValue: 119)
    /// `NVSP_MSG2_TYPE_ALLOC_RXBUF`
    public static let allocateReceiveBuffer = Self(rawValue: 120)
    /// `NVSP_MSG2_TYPE_ALLOC_RXBUF_COMP`
    public static let allocateReceiveBufferComplete = Self(rawValue: 121)
    /// `NVSP_MSG2_TYPE_FREE_RXBUF`
    public static let freeReceiveBuffer = Self(rawValue: 122)
    /// `NVSP_MSG2_TYPE_SEND_VMQ_RNDIS_PKT`
    public static let sendVMQRNDISPacket = Self(rawValue: 123)
    /// `NVSP_MSG2_TYPE_SEND_VMQ_RNDIS_PKT_COMP`
    public static let sendVMQRNDISPacketComplete = Self(rawValue: 124)
    /// `NVSP_MSG2_TYPE_SEND_NDIS_CONFIG`
    public static let sendNDISConfig = Self(rawValue: 125)
    /// `NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE`
    public static let allocateChimneyHandle = Self(rawValue: 126)
    /// `NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE_COMP`
    public static let allocateChimneyHandleComplete = Self(rawValue: 127)

    // Version 4.
    /// `NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION`
    public static let sendVFAssociation = Self(rawValue: 128)
    /// `NVSP_MSG4_TYPE_SWITCH_DATA_PATH`
    public static let switchDataPath = Self(rawValue: 129)
    /// `NVSP_MSG4_TYPE_UPLINK_CONNECT_STATE_DEPRECATED`
    public static let uplinkConnectStateDeprecated = Self(rawValue: 130)

    // Version 5.
    /// `NVSP_MSG5_TYPE_OID_QUERY_EX`: no layout in Linux, which never sends it.
    public static let oidQueryEx = Self(rawValue: 131)
    /// `NVSP_MSG5_TYPE_OID_QUERY_EX_COMP`
    public static let oidQueryExComplete = Self(rawValue: 132)
    /// `NVSP_MSG5_TYPE_SUBCHANNEL`: the request (guest → host) and its completion share the number.
    public static let subchannel = Self(rawValue: 133)
    /// `NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE`
    public static let sendIndirectionTable = Self(rawValue: 134)

    // Version 6 (PacketDirect; unused by Linux).
    /// `NVSP_MSG6_TYPE_PD_API`: request and completion share the number.
    public static let pdAPI = Self(rawValue: 135)
    /// `NVSP_MSG6_TYPE_PD_POST_BATCH`
    public static let pdPostBatch = Self(rawValue: 136)

    /// `NVSP_MSG2_MAX`, `NVSP_MSG4_MAX`, `NVSP_MSG5_MAX`, `NVSP_MSG6_MAX`: the last number of each version.
    public static let message2Max = Self(rawValue: 127)
    public static let message4Max = Self(rawValue: 130)
    public static let message5Max = Self(rawValue: 134)
    public static let message6Max = Self(rawValue: 136)

    /// The protocol version that introduced the message (INIT and its completion predate versioning).
    /// `nil` for numbers no version defines.
    public var minimumVersion: NVSPProtocolVersion? {
        switch rawValue {
        case 1...2, 100...108: return .v1
        case 109...127: return .v2
        case 128...130: return .v4
        case 131...134: return .v5
        case 135...136: return .v6
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: return "NONE"
        case .`init`: return "INIT"
        case .initComplete: return "INIT_COMPLETE"
        case .sendNDISVersion: return "SEND_NDIS_VER"
        case .sendReceiveBuffer: return "SEND_RECV_BUF"
        case .sendReceiveBufferComplete: return "SEND_RECV_BUF_COMPLETE"
        case .revokeReceiveBuffer: return "REVOKE_RECV_BUF"
        case .sendSendBuffer: return "SEND_SEND_BUF"
        case .sendSendBufferComplete: return "SEND_SEND_BUF_COMPLETE"
        case .revokeSendBuffer: return "REVOKE_SEND_BUF"
        case .sendRNDISPacket: return "SEND_RNDIS_PKT"
        case .sendRNDISPacketComplete: return "SEND_RNDIS_PKT_COMPLETE"
        case .allocateReceiveBuffer: return "ALLOC_RXBUF"
        case .allocateReceiveBufferComplete: return "ALLOC_RXBUF_COMP"
        case .freeReceiveBuffer: return "FREE_RXBUF"
        case .sendNDISConfig: return "SEND_NDIS_CONFIG"
        case .sendVFAssociation: return "SEND_VF_ASSOCIATION"
        case .switchDataPath: return "SWITCH_DATA_PATH"
        case .uplinkConnectStateDeprecated: return "UPLINK_CONNECT_STATE_DEPRECATED"
        case .oidQueryEx: return "OID_QUERY_EX"
        case .oidQueryExComplete: return "OID_QUERY_EX_COMP"
        case .subchannel: return "SUBCHANNEL"
        case .sendIndirectionTable: return "SEND_INDIRECTION_TABLE"
        case .pdAPI: return "PD_API"
        case .pdPostBatch: return "PD_POST_BATCH"
        default: return "NVSP message \(rawValue)"
        }
    }
}
