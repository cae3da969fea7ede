import VMBusWire

/// `struct vmbus_channel_initiate_contact` (40 bytes): CHANNELMSG_INITIATE_CONTACT, G→H.
///
/// Bytes 16..<24 are a union: `interrupt_page` before 5.0, `msg_sint`/`msg_vtl` (and, in 6.0, the feature
/// word at 20) from 5.0 on; ``interruptPage`` holds the raw 8 bytes and the computed properties read the
/// union members. A message of at least 56 bytes is OpenVMM's 6.0 `InitiateContact2`, whose client id GUID
/// at 40 is kept in ``clientID``. Linux 6.12 always sends 40 bytes.
public struct InitiateContact: ChannelMessageCodable {
    public static let wireSize = 40
    public static let cName = "vmbus_channel_initiate_contact"
    public static let messageType = ChannelMessageType.initiateContact
    /// Length of the 6.0 form with a client id.
    public static let wireSizeWithClientID = 56

    /// `vmbus_version_requested`: one version, not a range.
    public var versionRequested: VMBusVersion
    /// `target_vcpu`: the VP that receives control messages (honoured from 3.0).
    public var targetVCPU: UInt32
    /// `interrupt_page` (< 5.0), or the raw `msg_sint`/`msg_vtl`/feature-flag union (≥ 5.0).
    public var interruptPage: UInt64
    /// `monitor_page1`: parent-to-child monitor page GPA (0 = none).
    public var monitorPage1: UInt64
    /// `monitor_page2`: child-to-parent monitor page GPA (0 = none).
    public var monitorPage2: UInt64
    /// The 6.0 client id (OpenVMM `InitiateContact2.client_id`); `nil` for the 40-byte form.
    public var clientID: GUID?

    public init(
        versionRequested: VMBusVersion, targetVCPU: UInt32, interruptPage: UInt64 = 0, monitorPage1: UInt64 = 0,
        monitorPage2: UInt64 = 0, clientID: GUID? = nil
    ) {
        self.versionRequested = versionRequested
        self.targetVCPU = targetVCPU
        self.interruptPage = interruptPage
        self.monitorPage1 = monitorPage1
        self.monitorPage2 = monitorPage2
        self.clientID = clientID
    }

    /// The form used from 5.0 on: `msg_sint`, `msg_vtl` and (6.0) the feature word instead of an interrupt page.
    public init(
        versionRequested: VMBusVersion, targetVCPU: UInt32, messageSINT: UInt8, messageVTL: UInt8 = 0,
        featureFlags: VMBusFeatureFlags = [], monitorPage1: UInt64 = 0, monitorPage2: UInt64 = 0,
        clientID: GUID? = nil
    ) {
        self.init(
            versionRequested: versionRequested, targetVCPU: targetVCPU, interruptPage: 0, monitorPage1: monitorPage1,
            monitorPage2: monitorPage2, clientID: clientID)
        self.messageSINT = messageSINT
        self.messageVTL = messageVTL
        self.featureFlags = featureFlags
    }

    /// `msg_sint` (byte 16; ≥ 5.0).
    public var messageSINT: UInt8 {
        get { UInt8(truncatingIfNeeded: interruptPage) }
        set { interruptPage = interruptPage & ~0xFF | UInt64(newValue) }
    }

    /// `msg_vtl` (byte 17; ≥ 5.0).
    public var messageVTL: UInt8 {
        get { UInt8(truncatingIfNeeded: interruptPage >> 8) }
        set { interruptPage = interruptPage & ~0xFF00 | UInt64(newValue) << 8 }
    }

    /// The 6.0 feature word (bytes 20..<24, inside Linux's `reserved[6]`).
    public var featureFlags: VMBusFeatureFlags {
        get { VMBusFeatureFlags(rawValue: UInt32(truncatingIfNeeded: interruptPage >> 32)) }
        set { interruptPage = interruptPage & 0xFFFF_FFFF | UInt64(newValue.rawValue) << 32 }
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        versionRequested = VMBusVersion(rawValue: try r.readUInt32())
        targetVCPU = try r.readUInt32()
        interruptPage = try r.readUInt64()
        monitorPage1 = try r.readUInt64()
        monitorPage2 = try r.readUInt64()
        clientID = r.remaining >= GUID.wireSize ? try GUID(from: &r) : nil
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(versionRequested.rawValue)
        w.writeUInt32(targetVCPU)
        w.writeUInt64(interruptPage)
        w.writeUInt64(monitorPage1)
        w.writeUInt64(monitorPage2)
        clientID?.encode(into: &w)
    }

    public var channelMessage: ChannelMessage { .initiateContact(self) }
}

/// `struct vmbus_channel_version_response` (16 bytes): CHANNELMSG_VERSION_RESPONSE, H→G.
///
/// A message of at least 20 bytes is OpenVMM's 6.0 `VersionResponse2`; its `supported_features` word is kept
/// in ``supportedFeatures``. Longer forms (`VersionResponse3`, server monitor pages) are accepted and their
/// extra bytes ignored.
public struct VersionResponse: ChannelMessageCodable {
    public static let wireSize = 16
    public static let cName = "vmbus_channel_version_response"
    public static let messageType = ChannelMessageType.versionResponse
    /// Length of the 6.0 form with `supported_features`.
    public static let wireSizeWithFeatures = 20

    /// `connection_state` 0 (OpenVMM `ConnectionState::SUCCESSFUL`).
    public static let connectionStateSuccessful: UInt8 = 0
    /// `connection_state` 1 (OpenVMM `ConnectionState::FAILED_LOW_RESOURCES`).
    public static let connectionStateFailedLowResources: UInt8 = 1
    /// `connection_state` 2 (OpenVMM `ConnectionState::FAILED_UNKNOWN_FAILURE`).
    public static let connectionStateFailedUnknownFailure: UInt8 = 2

    /// `version_supported` (any non-zero byte reads as `true`; `true` is written as 1).
    public var versionSupported: Bool
    /// `connection_state`: Linux ignores it, so a host must not reject a Linux guest through it alone.
    public var connectionState: UInt8
    /// `msg_conn_id`: from 5.0 the connection id for every later control message.
    public var messageConnectionID: UInt32
    /// 6.0 `supported_features`; `nil` for the 16-byte form.
    public var supportedFeatures: UInt32?

    public init(versionSupported: Bool, connectionState: UInt8 = 0, messageConnectionID: UInt32, supportedFeatures: UInt32? = nil) {
        self.versionSupported = versionSupported
        self.connectionState = connectionState
        self.messageConnectionID = messageConnectionID
        self.supportedFeatures = supportedFeatures
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        versionSupported = try r.readUInt8() != 0
        connectionState = try r.readUInt8()
        try r.skip(2)  // padding
        messageConnectionID = try r.readUInt32()
        supportedFeatures = r.remaining >= 4 ? try r.readUInt32() : nil
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt8(versionSupported ? 1 : 0)
        w.writeUInt8(connectionState)
        w.writeUInt16(0)
        w.writeUInt32(messageConnectionID)
        if let supportedFeatures { w.writeUInt32(supportedFeatures) }
    }

    public var channelMessage: ChannelMessage { .versionResponse(self) }
}

/// CHANNELMSG_UNLOAD, G→H: a bare `struct vmbus_channel_message_header`.
public struct Unload: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "vmbus_channel_message_header"
    public static let messageType = ChannelMessageType.unload

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .unload(self) }
}

/// CHANNELMSG_UNLOAD_RESPONSE, H→G, from 1.1: a bare `struct vmbus_channel_message_header`.
public struct UnloadResponse: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "vmbus_channel_message_header"
    public static let messageType = ChannelMessageType.unloadResponse

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .unloadResponse(self) }
}

/// OpenVMM's `ModifyConnection` (24 bytes; not in Linux 6.12): MODIFY_CONNECTION, G→H, 6.0 with
/// ``VMBusFeatureFlags/modifyConnection``. Replaces the monitor pages of the connection.
public struct ModifyConnection: ChannelMessageCodable {
    public static let wireSize = 24
    public static let cName = "ModifyConnection"
    public static let messageType = ChannelMessageType.modifyConnection

    /// `parent_to_child_monitor_page_gpa` (0 = remove the monitor pages).
    public var monitorPage1: UInt64
    /// `child_to_parent_monitor_page_gpa`
    public var monitorPage2: UInt64

    public init(monitorPage1: UInt64, monitorPage2: UInt64) {
        self.monitorPage1 = monitorPage1; self.monitorPage2 = monitorPage2
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        monitorPage1 = try r.readUInt64()
        monitorPage2 = try r.readUInt64()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt64(monitorPage1)
        w.writeUInt64(monitorPage2)
    }

    public var channelMessage: ChannelMessage { .modifyConnection(self) }
}

/// OpenVMM's `ModifyConnectionResponse` (9 bytes; not in Linux 6.12): MODIFY_CONNECTION_RESPONSE, H→G.
public struct ModifyConnectionResponse: ChannelMessageCodable {
    public static let wireSize = 9
    public static let cName = "ModifyConnectionResponse"
    public static let messageType = ChannelMessageType.modifyConnectionResponse

    /// `connection_state`, with the values of ``VersionResponse/connectionState``.
    public var connectionState: UInt8

    public init(connectionState: UInt8) { self.connectionState = connectionState }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        connectionState = try r.readUInt8()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt8(connectionState)
    }

    public var channelMessage: ChannelMessage { .modifyConnectionResponse(self) }
}

/// OpenVMM's `Pause` (header only; not in Linux 6.12): PAUSE, G→H, 6.0 with ``VMBusFeatureFlags/pauseResume``.
public struct Pause: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "Pause"
    public static let messageType = ChannelMessageType.pause

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .pause(self) }
}

/// OpenVMM's `PauseResponse` (header only; not in Linux 6.12): PAUSE_RESPONSE, H→G.
public struct PauseResponse: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "PauseResponse"
    public static let messageType = ChannelMessageType.pauseResponse

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .pauseResponse(self) }
}

/// OpenVMM's `Resume` (header only; not in Linux 6.12): RESUME, G→H.
public struct Resume: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "Resume"
    public static let messageType = ChannelMessageType.resume

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .resume(self) }
}
