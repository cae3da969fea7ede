import VMBusWire

/// Which way a message goes. Two NVSP numbers (SUBCHANNEL and PD_API) mean a request one way and its
/// completion the other, with different bodies, so decoding needs to know.
public enum NVSPDirection: Sendable {
    case guestToHost
    case hostToGuest
}

/// `struct nvsp_message` (packed): the `msg_type` header and one body of the union, after dispatch.
///
/// Linux sends every message padded to `sizeof(struct nvsp_message)` (40 bytes, ``wireSize``) and accepts
/// anything at least as long as the body it reads; the encoder pads to a chosen size and the decoder reads
/// only the body's bytes. Decoding a SEND_RNDIS_PKT does not allocate.
public enum NVSPMessage: Equatable, Sendable {
    case `init`(NVSPInit)
    case initComplete(NVSPInitComplete)
    case sendNDISVersion(NVSPSendNDISVersion)
    case sendReceiveBuffer(NVSPSendReceiveBuffer)
    case sendReceiveBufferComplete(NVSPSendReceiveBufferComplete)
    case revokeReceiveBuffer(NVSPRevokeReceiveBuffer)
    case sendSendBuffer(NVSPSendSendBuffer)
    case sendSendBufferComplete(NVSPSendSendBufferComplete)
    case revokeSendBuffer(NVSPRevokeSendBuffer)
    case sendRNDISPacket(NVSPSendRNDISPacket)
    case sendRNDISPacketComplete(NVSPSendRNDISPacketComplete)
    case sendNDISConfig(NVSPSendNDISConfig)
    case allocateReceiveBuffer(NVSPAllocateReceiveBuffer)
    case allocateReceiveBufferComplete(NVSPAllocateReceiveBufferComplete)
    case freeReceiveBuffer(NVSPFreeReceiveBuffer)
    case sendVFAssociation(NVSPSendVFAssociation)
    case switchDataPath(NVSPSwitchDataPath)
    case subchannelRequest(NVSPSubchannelRequest)
    case subchannelComplete(NVSPSubchannelComplete)
    case sendIndirectionTable(NVSPSendIndirectionTable)
    case pdAPIRequest(NVSPPacketDirectRequest)
    case pdAPIComplete(NVSPPacketDirectComplete)
    /// A message with no layout in Linux (the version 2 chimney and VMQ messages, UPLINK_CONNECT_STATE,
    /// OID_QUERY_EX and its completion, PD_POST_BATCH) or a number no version defines: the bytes after the
    /// type, as received.
    case other(type: NVSPMessageType, body: [UInt8])

    /// `sizeof(struct nvsp_message)`: the header and the 6.1 union (whose largest member is the PD_API
    /// completion).
    public static let wireSize = 40
    /// The size of the pre-6.1 layout, whose largest member is SEND_RECV_BUF_COMPLETE with one section.
    public static let legacyWireSize = 28
    public static let cName = "nvsp_message"
    /// `struct nvsp_message_header`
    public static let headerSize = 4

    public var type: NVSPMessageType {
        switch self {
        case .`init`: return .`init`
        case .initComplete: return .initComplete
        case .sendNDISVersion: return .sendNDISVersion
        case .sendReceiveBuffer: return .sendReceiveBuffer
        case .sendReceiveBufferComplete: return .sendReceiveBufferComplete
        case .revokeReceiveBuffer: return .revokeReceiveBuffer
        case .sendSendBuffer: return .sendSendBuffer
        case .sendSendBufferComplete: return .sendSendBufferComplete
        case .revokeSendBuffer: return .revokeSendBuffer
        case .sendRNDISPacket: return .sendRNDISPacket
        case .sendRNDISPacketComplete: return .sendRNDISPacketComplete
        case .sendNDISConfig: return .sendNDISConfig
        case .allocateReceiveBuffer: return .allocateReceiveBuffer
        case .allocateReceiveBufferComplete: return .allocateReceiveBufferComplete
        case .freeReceiveBuffer: return .freeReceiveBuffer
        case .sendVFAssociation: return .sendVFAssociation
        case .switchDataPath: return .switchDataPath
        case .subchannelRequest, .subchannelComplete: return .subchannel
        case .sendIndirectionTable: return .sendIndirectionTable
        case .pdAPIRequest, .pdAPIComplete: return .pdAPI
        case .other(let type, _): return type
        }
    }

    // MARK: Decoding

    /// Decodes one message from all of `r`'s remaining bytes (the in-band payload of a VMBus packet).
    ///
    /// `direction` picks the body of SUBCHANNEL and PD_API. With `version` (the negotiated one), a message
    /// newer than it is refused and SEND_INDIRECTION_TABLE gets Linux's Hyper-V offset fix. Short bodies
    /// throw `.truncated`; counts and offsets that leave the message throw `.countTooLarge` or `.truncated`.
    public init(from r: inout WireReader, direction: NVSPDirection,
                version: NVSPProtocolVersion? = nil) throws(WireError) {
        let message = try r.readSubReader(r.remaining)
        var b = message
        let type = NVSPMessageType(rawValue: try b.readUInt32())
        if let version, let minimum = type.minimumVersion, minimum > version {
            throw .invalidValue(field: "msg_type", value: UInt64(type.rawValue))
        }
        switch type {
        case .`init`: self = .`init`(try NVSPInit(from: &b))
        case .initComplete: self = .initComplete(try NVSPInitComplete(from: &b))
        case .sendNDISVersion: self = .sendNDISVersion(try NVSPSendNDISVersion(from: &b))
        case .sendReceiveBuffer: self = .sendReceiveBuffer(try NVSPSendReceiveBuffer(from: &b))
        case .sendReceiveBufferComplete: self = .sendReceiveBufferComplete(try NVSPSendReceiveBufferComplete(from: &b))
        case .revokeReceiveBuffer: self = .revokeReceiveBuffer(try NVSPRevokeReceiveBuffer(from: &b))
        case .sendSendBuffer: self = .sendSendBuffer(try NVSPSendSendBuffer(from: &b))
        case .sendSendBufferComplete: self = .sendSendBufferComplete(try NVSPSendSendBufferComplete(from: &b))
        case .revokeSendBuffer: self = .revokeSendBuffer(try NVSPRevokeSendBuffer(from: &b))
        case .sendRNDISPacket: self = .sendRNDISPacket(try NVSPSendRNDISPacket(from: &b))
        case .sendRNDISPacketComplete: self = .sendRNDISPacketComplete(try NVSPSendRNDISPacketComplete(from: &b))
        case .sendNDISConfig: self = .sendNDISConfig(try NVSPSendNDISConfig(from: &b))
        case .allocateReceiveBuffer: self = .allocateReceiveBuffer(try NVSPAllocateReceiveBuffer(from: &b))
        case .allocateReceiveBufferComplete:
            self = .allocateReceiveBufferComplete(try NVSPAllocateReceiveBufferComplete(from: &b))
        case .freeReceiveBuffer: self = .freeReceiveBuffer(try NVSPFreeReceiveBuffer(from: &b))
        case .sendVFAssociation: self = .sendVFAssociation(try NVSPSendVFAssociation(from: &b))
        case .switchDataPath: self = .switchDataPath(try NVSPSwitchDataPath(from: &b))
        case .subchannel:
            switch direction {
            case .guestToHost: self = .subchannelRequest(try NVSPSubchannelRequest(from: &b))
            case .hostToGuest: self = .subchannelComplete(try NVSPSubchannelComplete(from: &b))
            }
        case .sendIndirectionTable:
            self = .sendIndirectionTable(try NVSPSendIndirectionTable(
                message: message.regionAfterHeader(), version: version))
        case .pdAPI:
            switch direction {
            case .guestToHost: self = .pdAPIRequest(try NVSPPacketDirectRequest(from: &b))
            case .hostToGuest: self = .pdAPIComplete(try NVSPPacketDirectComplete(from: &b))
            }
        default:
            self = .other(type: type, body: try b.readBytes(b.remaining))
        }
    }

    /// Decodes a whole message from `bytes`.
    public init(wireBytes bytes: [UInt8], direction: NVSPDirection,
                version: NVSPProtocolVersion? = nil) throws(WireError) {
        var r = WireReader(bytes)
        self = try Self(from: &r, direction: direction, version: version)
    }

    // MARK: Encoding

    /// Encodes the header and body, then zeros up to `minimumSize` (default: Linux's 40 bytes). Bodies that
    /// are longer (several receive sections, the indirection table) are written whole. Pass 0 for the bare
    /// size, e.g. the 8-byte SEND_RNDIS_PKT_COMPLETE a guest returns for transfer pages.
    public func encode(into w: inout WireWriter, minimumSize: Int = NVSPMessage.wireSize) {
        let start = w.count
        w.writeUInt32(type.rawValue)
        switch self {
        case .`init`(let m): m.encode(into: &w)
        case .initComplete(let m): m.encode(into: &w)
        case .sendNDISVersion(let m): m.encode(into: &w)
        case .sendReceiveBuffer(let m): m.encode(into: &w)
        case .sendReceiveBufferComplete(let m): m.encode(into: &w)
        case .revokeReceiveBuffer(let m): m.encode(into: &w)
        case .sendSendBuffer(let m): m.encode(into: &w)
        case .sendSendBufferComplete(let m): m.encode(into: &w)
        case .revokeSendBuffer(let m): m.encode(into: &w)
        case .sendRNDISPacket(let m): m.encode(into: &w)
        case .sendRNDISPacketComplete(let m): m.encode(into: &w)
        case .sendNDISConfig(let m): m.encode(into: &w)
        case .allocateReceiveBuffer(let m): m.encode(into: &w)
        case .allocateReceiveBufferComplete(let m): m.encode(into: &w)
        case .freeReceiveBuffer(let m): m.encode(into: &w)
        case .sendVFAssociation(let m): m.encode(into: &w)
        case .switchDataPath(let m): m.encode(into: &w)
        case .subchannelRequest(let m): m.encode(into: &w)
        case .subchannelComplete(let m): m.encode(into: &w)
        case .sendIndirectionTable(let m): m.encode(into: &w)
        case .pdAPIRequest(let m): m.encode(into: &w)
        case .pdAPIComplete(let m): m.encode(into: &w)
        case .other(_, let body): w.writeBytes(body)
        }
        let written = w.count - start
        if written < minimumSize { w.writeZeros(minimumSize - written) }
    }

    /// The message padded to Linux's 40 bytes (allocates; not for hot paths).
    public var wireBytes: [UInt8] {
        var w = WireWriter(capacity: Self.wireSize)
        encode(into: &w)
        return w.bytes
    }
}

extension WireReader {
    /// The same window, positioned after the 4-byte NVSP header (offsets in the body stay message-relative).
    fileprivate func regionAfterHeader() throws(WireError) -> WireReader {
        var r = self
        try r.skip(NVSPMessage.headerSize)
        return r
    }
}
