import VMBusWire

/// A device class: the interface-type GUID of an offer (`offer.if_type`) and what it is.
///
/// The table holds every class of Linux's `vmbus_devs` (drivers/hv/channel_mgmt.c), in that order, then the
/// reserved Windows-only classes lsvmbus knows, then our own test class. ``description`` is the text Linux's
/// `tools/hv/lsvmbus` prints for the class (integration services in brackets, as lsvmbus shows them).
public struct DeviceClass: Hashable, Sendable, CustomStringConvertible {
    /// The interface-type GUID.
    public let guid: GUID
    /// ``guid`` under the name Linux's sysfs uses (`class_id`).
    public var classID: GUID { guid }
    /// What `lsvmbus` prints for this class.
    public let description: String
    /// The Linux GUID constant (`HV_SCSI_GUID`), `nil` for classes Linux does not define.
    public let cName: String?
    /// The `enum vmbus_device_type` value Linux maps the class to (`HV_SCSI`), `nil` if not in `vmbus_devs`.
    public let linuxDeviceType: String?
    /// `perf_device`: Linux spreads the channels of such devices over CPUs; the rest stay on CPU 0.
    public let isPerformanceDevice: Bool
    /// `allowed_in_isolated`: offered to SNP/TDX guests, which drop every other class.
    public let allowedInIsolatedGuest: Bool

    init(
        _ d1: UInt32, _ d2: UInt16, _ d3: UInt16, _ d4: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8),
        _ description: String, cName: String?, linuxDeviceType: String?, perf: Bool = false, isolated: Bool = false
    ) {
        self.guid = GUID(data1: d1, data2: d2, data3: d3, data4: d4)
        self.description = description
        self.cName = cName
        self.linuxDeviceType = linuxDeviceType
        self.isPerformanceDevice = perf
        self.allowedInIsolatedGuest = isolated
    }

    /// `HV_IDE_GUID`: the IDE accelerator ("BlkVSC"), served by storvsc.
    public static let ide = DeviceClass(
        0x3241_2632, 0x86CB, 0x44A2, (0x9B, 0x5C, 0x50, 0xD1, 0x41, 0x73, 0x54, 0xF5),
        "Synthetic IDE Controller", cName: "HV_IDE_GUID", linuxDeviceType: "HV_IDE", perf: true)
    /// `HV_SCSI_GUID`
    public static let scsi = DeviceClass(
        0xBA61_63D9, 0x04A1, 0x4D29, (0xB6, 0x05, 0x72, 0xE2, 0xFF, 0xB1, 0xDC, 0x7F),
        "Synthetic SCSI Controller", cName: "HV_SCSI_GUID", linuxDeviceType: "HV_SCSI", perf: true, isolated: true)
    /// `HV_SYNTHFC_GUID`
    public static let fc = DeviceClass(
        0x2F9B_CC4A, 0x0069, 0x4AF3, (0xB7, 0x6B, 0x6F, 0xD0, 0xBE, 0x52, 0x8C, 0xDA),
        "Synthetic fiber channel adapter", cName: "HV_SYNTHFC_GUID", linuxDeviceType: "HV_FC", perf: true)
    /// `HV_NIC_GUID`
    public static let nic = DeviceClass(
        0xF861_5163, 0xDF3E, 0x46C5, (0x91, 0x3F, 0xF2, 0xD2, 0xF9, 0x65, 0xED, 0x0E),
        "Synthetic network adapter", cName: "HV_NIC_GUID", linuxDeviceType: "HV_NIC", perf: true, isolated: true)
    /// `HV_ND_GUID`: NetworkDirect (RDMA); no Linux driver.
    public static let nd = DeviceClass(
        0x8C2E_AF3D, 0x32A7, 0x4B09, (0xAB, 0x99, 0xBD, 0x1F, 0x1C, 0x86, 0xB5, 0x01),
        "Synthetic RDMA adapter", cName: "HV_ND_GUID", linuxDeviceType: "HV_ND", perf: true)
    /// `HV_PCIE_GUID`
    public static let pcie = DeviceClass(
        0x44C4_F61D, 0x4444, 0x4400, (0x9D, 0x52, 0x80, 0x2E, 0x27, 0xED, 0xE1, 0x9F),
        "PCI Express pass-through", cName: "HV_PCIE_GUID", linuxDeviceType: "HV_PCIE", isolated: true)
    /// `HV_SYNTHVID_GUID`
    public static let fb = DeviceClass(
        0xDA0A_7802, 0xE377, 0x4AAC, (0x8E, 0x77, 0x05, 0x58, 0xEB, 0x10, 0x73, 0xF8),
        "Synthetic framebuffer adapter", cName: "HV_SYNTHVID_GUID", linuxDeviceType: "HV_FB")
    /// `HV_KBD_GUID`
    public static let kbd = DeviceClass(
        0xF912_AD6D, 0x2B17, 0x48EA, (0xBD, 0x65, 0xF9, 0x27, 0xA6, 0x1C, 0x76, 0x84),
        "Synthetic keyboard", cName: "HV_KBD_GUID", linuxDeviceType: "HV_KBD")
    /// `HV_MOUSE_GUID`
    public static let mouse = DeviceClass(
        0xCFA8_B69E, 0x5B4A, 0x4CC0, (0xB9, 0x8B, 0x8B, 0xA1, 0xA1, 0xF3, 0xF9, 0x5A),
        "Synthetic mouse", cName: "HV_MOUSE_GUID", linuxDeviceType: "HV_MOUSE")
    /// `HV_KVP_GUID`: key-value pair exchange IC.
    public static let kvp = DeviceClass(
        0xA9A0_F4E7, 0x5A45, 0x4D96, (0xB8, 0x27, 0x8A, 0x84, 0x1E, 0x8C, 0x03, 0xE6),
        "[Data Exchange]", cName: "HV_KVP_GUID", linuxDeviceType: "HV_KVP")
    /// `HV_TS_GUID`: time synchronization IC.
    public static let ts = DeviceClass(
        0x9527_E630, 0xD0AE, 0x497B, (0xAD, 0xCE, 0xE8, 0x0A, 0xB0, 0x17, 0x5C, 0xAF),
        "[Time Synchronization]", cName: "HV_TS_GUID", linuxDeviceType: "HV_TS", isolated: true)
    /// `HV_HEART_BEAT_GUID`: heartbeat IC.
    public static let hb = DeviceClass(
        0x5716_4F39, 0x9115, 0x4E78, (0xAB, 0x55, 0x38, 0x2F, 0x3B, 0xD5, 0x42, 0x2D),
        "[Heartbeat]", cName: "HV_HEART_BEAT_GUID", linuxDeviceType: "HV_HB", isolated: true)
    /// `HV_SHUTDOWN_GUID`: shutdown IC.
    public static let shutdown = DeviceClass(
        0x0E0B_6031, 0x5213, 0x4934, (0x81, 0x8B, 0x38, 0xD9, 0x0C, 0xED, 0x39, 0xDB),
        "[Operating system shutdown]", cName: "HV_SHUTDOWN_GUID", linuxDeviceType: "HV_SHUTDOWN", isolated: true)
    /// `HV_FCOPY_GUID`: guest file copy.
    public static let fcopy = DeviceClass(
        0x34D1_4BE3, 0xDEE4, 0x41C8, (0x9A, 0xE7, 0x6B, 0x17, 0x49, 0x77, 0xC1, 0x92),
        "[Guest services]", cName: "HV_FCOPY_GUID", linuxDeviceType: "HV_FCOPY")
    /// `HV_VSS_GUID`: volume shadow copy (backup) IC.
    public static let backup = DeviceClass(
        0x35FA_2E29, 0xEA23, 0x4236, (0x96, 0xAE, 0x3A, 0x6E, 0xBA, 0xCB, 0xA4, 0x40),
        "[Backup (volume checkpoint)]", cName: "HV_VSS_GUID", linuxDeviceType: "HV_BACKUP")
    /// `HV_DM_GUID`: dynamic memory (balloon).
    public static let dm = DeviceClass(
        0x5250_74DC, 0x8985, 0x46E2, (0x80, 0x57, 0xA3, 0x07, 0xDC, 0x18, 0xA5, 0x02),
        "[Dynamic Memory]", cName: "HV_DM_GUID", linuxDeviceType: "HV_DM")

    /// `HV_AVMA1_GUID`: automatic activation; Linux ignores it.
    public static let avma1 = DeviceClass(
        0xF8E6_5716, 0x3CB3, 0x4A06, (0x9A, 0x60, 0x18, 0x89, 0xC5, 0xCC, 0xCA, 0xB5),
        "[Reserved system device]", cName: "HV_AVMA1_GUID", linuxDeviceType: nil)
    /// `HV_AVMA2_GUID`: inherited activation; Linux ignores it.
    public static let avma2 = DeviceClass(
        0x3375_BAF4, 0x9E15, 0x4B30, (0xB7, 0x65, 0x67, 0xAC, 0xB1, 0x0D, 0x60, 0x7B),
        "[Reserved system device]", cName: "HV_AVMA2_GUID", linuxDeviceType: nil)
    /// `HV_RDV_GUID`: remote desktop virtualization; Linux ignores it.
    public static let rdv = DeviceClass(
        0x276A_ACF4, 0xAC15, 0x426C, (0x98, 0xDD, 0x75, 0x21, 0xAD, 0x3F, 0x01, 0xFE),
        "[Reserved system device]", cName: "HV_RDV_GUID", linuxDeviceType: nil)

    /// swift-vmbus's own echo test device (2b65ce73-397c-4287-8892-2b457190873a, picked at random; no other
    /// stack knows it, so Linux binds it to nothing unless told to via uio_hv_generic's `new_id`).
    public static let echoTest = DeviceClass(
        0x2B65_CE73, 0x397C, 0x4287, (0x88, 0x92, 0x2B, 0x45, 0x71, 0x90, 0x87, 0x3A),
        "swift-vmbus echo test device", cName: nil, linuxDeviceType: nil)

    /// Linux's `vmbus_devs`, in its order (without the HV_UNKNOWN terminator).
    public static let linuxDevices: [DeviceClass] = [
        .ide, .scsi, .fc, .nic, .nd, .pcie, .fb, .kbd, .mouse, .kvp, .ts, .hb, .shutdown, .fcopy, .backup, .dm,
    ]

    /// Every class in the table.
    public static let all: [DeviceClass] = linuxDevices + [.avma1, .avma2, .rdv, .echoTest]

    private static let byGUID: [GUID: DeviceClass] = Dictionary(uniqueKeysWithValues: all.map { ($0.guid, $0) })

    /// The class with interface type `guid`, if known.
    public static func lookup(_ guid: GUID) -> DeviceClass? { byGUID[guid] }

    /// What lsvmbus prints for an offer of class `guid`: the class description, or "Unknown".
    public static func describe(_ guid: GUID) -> String { lookup(guid)?.description ?? "Unknown" }
}
