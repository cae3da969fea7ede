// Layouts of control messages Linux 6.12 does not declare, so the generated Linux fixture cannot contain them.
// Offsets are facts read from OpenVMM's vm/devices/vmbus/vmbus_core/src/protocol.rs (#[repr(C)] structs after
// the 8-byte MessageHeader) and PROTOCOL.md §2.2-§2.9, written out here by hand.

import VMBusLayoutTesting

/// Why each wire type is not checked against the Linux fixture.
let linuxLayoutExceptions: [String: String] = [
    "OpenReservedChannel": "types 18-20 are CHANNELMSG_18..20 in Linux 6.12, which declares no struct for them",
    "CloseReservedChannel": "types 18-20 are CHANNELMSG_18..20 in Linux 6.12, which declares no struct for them",
    "CloseReservedChannelResponse": "types 18-20 are CHANNELMSG_18..20 in Linux 6.12, which declares no struct for them",
    "TlConnectResult": "Linux 6.12 names CHANNELMSG_TL_CONNECT_RESULT but declares no struct (it ignores the message)",
    "ModifyConnection": "6.0-only message (type 25); Linux 6.12 stops at CHANNELMSG_COUNT = 25",
    "ModifyConnectionResponse": "6.0-only message (type 26); Linux 6.12 stops at CHANNELMSG_COUNT = 25",
    "Pause": "6.0-only message (type 27); Linux 6.12 stops at CHANNELMSG_COUNT = 25",
    "PauseResponse": "6.0-only message (type 28); Linux 6.12 stops at CHANNELMSG_COUNT = 25",
    "Resume": "6.0-only message (type 29); Linux 6.12 stops at CHANNELMSG_COUNT = 25",
]

private let header: [LinuxField] = [
    LinuxField("header", 0, 8), LinuxField("header.msgtype", 0, 4), LinuxField("header.padding", 4, 4),
]

private func openVMM(_ name: String, _ size: Int, _ fields: [LinuxField]) -> LinuxLayout {
    LinuxLayout(name: name, isUnion: false, size: size, packed: false, source: "OpenVMM protocol.rs", fields: header + fields)
}

enum OpenVMMLayouts {
    static let openReservedChannel = openVMM("OpenReservedChannel", 28, [
        LinuxField("channel_id", 8, 4), LinuxField("target_vp", 12, 4), LinuxField("target_sint", 16, 4),
        LinuxField("ring_buffer_gpadl", 20, 4), LinuxField("downstream_page_offset", 24, 4),
    ])
    static let closeReservedChannel = openVMM("CloseReservedChannel", 20, [
        LinuxField("channel_id", 8, 4), LinuxField("target_vp", 12, 4), LinuxField("target_sint", 16, 4),
    ])
    static let closeReservedChannelResponse = openVMM("CloseReservedChannelResponse", 12, [
        LinuxField("channel_id", 8, 4),
    ])
    static let tlConnectResult = openVMM("TlConnectResult", 44, [
        LinuxField("endpoint_id", 8, 16), LinuxField("service_id", 24, 16), LinuxField("status", 40, 4),
    ])
    static let modifyConnection = openVMM("ModifyConnection", 24, [
        LinuxField("parent_to_child_monitor_page_gpa", 8, 8), LinuxField("child_to_parent_monitor_page_gpa", 16, 8),
    ])
    static let modifyConnectionResponse = openVMM("ModifyConnectionResponse", 9, [
        LinuxField("connection_state", 8, 1),
    ])
    static let pause = openVMM("Pause", 8, [])
    static let pauseResponse = openVMM("PauseResponse", 8, [])
    static let resume = openVMM("Resume", 8, [])

    // Longer 6.0 forms of messages Linux does declare (checked in addition to the Linux layout).
    static let initiateContact2 = openVMM("InitiateContact2", 56, [
        LinuxField("version_requested", 8, 4), LinuxField("target_message_vp", 12, 4),
        LinuxField("target_info.sint", 16, 1), LinuxField("target_info.vtl", 17, 1),
        LinuxField("target_info.padding", 18, 2), LinuxField("target_info.feature_flags", 20, 4),
        LinuxField("parent_to_child_monitor_page_gpa", 24, 8), LinuxField("child_to_parent_monitor_page_gpa", 32, 8),
        LinuxField("client_id", 40, 16),
    ])
    static let versionResponse2 = openVMM("VersionResponse2", 20, [
        LinuxField("version_supported", 8, 1), LinuxField("connection_state", 9, 1), LinuxField("padding", 10, 2),
        LinuxField("selected_version_or_connection_id", 12, 4), LinuxField("supported_features", 16, 4),
    ])
    static let openChannel2 = openVMM("OpenChannel2", 156, [
        LinuxField("channel_id", 8, 4), LinuxField("open_id", 12, 4), LinuxField("ring_buffer_gpadl_id", 16, 4),
        LinuxField("target_vp", 20, 4), LinuxField("downstream_ring_buffer_page_offset", 24, 4),
        LinuxField("user_data", 28, 120), LinuxField("connection_id", 148, 4), LinuxField("event_flag", 152, 2),
        LinuxField("flags", 154, 2),
    ])
    static let tlConnectRequest2 = openVMM("TlConnectRequest2", 56, [
        LinuxField("endpoint_id", 8, 16), LinuxField("service_id", 24, 16), LinuxField("silo_id", 40, 16),
    ])
}
