import VMBusProtocol
import VMBusWire

/// One of the six integration services: its device class, its message type and the version lists a Linux
/// 6.12 guest negotiates with (its `fw_versions` and service table, in its try order).
///
/// The class GUIDs are the ``DeviceClass`` entries of VMBusProtocol, not copies.
public struct ICService: Hashable, Sendable, CustomStringConvertible {
    public let deviceClass: DeviceClass
    public let messageType: ICMessageType
    /// Linux's `fw_versions` for this service, newest first.
    public let frameworkVersions: [ICVersion]
    /// Linux's service versions for this service, newest first.
    public let serviceVersions: [ICVersion]
    public let description: String

    /// The offer's interface type.
    public var classID: GUID { deviceClass.guid }

    init(_ deviceClass: DeviceClass, _ messageType: ICMessageType, _ frameworkVersions: [ICVersion],
         _ serviceVersions: [ICVersion], _ description: String) {
        self.deviceClass = deviceClass
        self.messageType = messageType
        self.frameworkVersions = frameworkVersions
        self.serviceVersions = serviceVersions
        self.description = description
    }

    // The tables of the shipped hv_utils.ko; hv_util.c, hv_kvp.c and hv_snapshot.c each have their own
    // `fw_versions`, and VSS's lacks 1.0.

    /// `fw_versions` of drivers/hv/hv_util.c (shutdown, time sync, heartbeat).
    public static let fwVersions: [ICVersion] = [.utilFWVersion, .utilWS2K8FWVersion]
    /// `fw_versions` of drivers/hv/hv_kvp.c.
    public static let kvpFWVersions: [ICVersion] = [.utilFWVersion, .utilWS2K8FWVersion]
    /// `fw_versions` of drivers/hv/hv_snapshot.c.
    public static let vssFWVersions: [ICVersion] = [.utilFWVersion]
    /// `fw_versions` of tools/hv/hv_fcopy_uio_daemon.c (and of drivers/hv/hv_fcopy.c before 6.10).
    public static let fcopyFWVersions: [ICVersion] = [.utilFWVersion]
    /// `sd_versions`
    public static let sdVersions: [ICVersion] = [.sdVersion3_2, .sdVersion3_1, .sdVersion, .sdVersion1]
    /// `ts_versions`
    public static let tsVersions: [ICVersion] = [.tsVersion, .tsVersion3, .tsVersion1]
    /// `hb_versions`
    public static let hbVersions: [ICVersion] = [.hbVersion, .hbVersion1]
    /// `kvp_versions`
    public static let kvpVersions: [ICVersion] = [.kvpWin8SrvVersion, .kvpWin7SrvVersion, .kvpWS2008SrvVersion]
    /// `vss_versions`
    public static let vssVersions: [ICVersion] = [.vssVersion]
    /// `fcopy_versions`: Linux 6.10 moved file copy out of hv_utils into the uio daemon; Debian 12's 6.1
    /// kernel still has it in hv_utils, with the same single version.
    public static let fcopyVersions: [ICVersion] = [.fcopyWin8SrvVersion]

    public static let heartbeat = ICService(.hb, .heartbeat, fwVersions, hbVersions, "heartbeat")
    public static let shutdown = ICService(.shutdown, .shutdown, fwVersions, sdVersions, "shutdown")
    public static let timeSync = ICService(.ts, .timeSync, fwVersions, tsVersions, "time sync")
    public static let kvp = ICService(.kvp, .kvpExchange, kvpFWVersions, kvpVersions, "KVP")
    public static let vss = ICService(.backup, .vss, vssFWVersions, vssVersions, "VSS")
    public static let fcopy = ICService(.fcopy, .fcopy, fcopyFWVersions, fcopyVersions, "file copy")

    public static let all: [ICService] = [.heartbeat, .shutdown, .timeSync, .kvp, .vss, .fcopy]

    /// The service offered under `classID`, if it is one of the six.
    public static func lookup(_ classID: GUID) -> ICService? { all.first { $0.classID == classID } }

    /// A host's NEGOTIATE request for this service, listing `frameworkVersions` and `serviceVersions`.
    public func negotiateRequest(frameworkVersions: [ICVersion], serviceVersions: [ICVersion],
                                 transactionID: UInt8 = 0) -> [UInt8] {
        ICNegotiation.request(frameworkVersions: frameworkVersions, serviceVersions: serviceVersions,
                              transactionID: transactionID)
    }

    /// A Linux guest's answer to a NEGOTIATE packet for this service.
    public func linuxAnswer(to packet: [UInt8]) throws(WireError) -> ICNegotiation.GuestAnswer {
        try ICNegotiation.guestAnswer(to: packet, frameworkVersions: frameworkVersions, serviceVersions: serviceVersions)
    }
}
