import VMBusProtocol
import VMBusWire

/// The two controller kinds one storage protocol serves: synthetic SCSI (many LUNs, sub-channels) and the IDE
/// accelerator (Linux's old BlkVSC path: one channel per IDE disk, no sub-channels).
public enum StorageControllerKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case scsi
    case ide

    /// The offer's class (`if_type`).
    public var classID: GUID { self == .scsi ? DeviceClass.scsi.guid : DeviceClass.ide.guid }

    public init?(classID: GUID) {
        switch classID {
        case DeviceClass.scsi.guid: self = .scsi
        case DeviceClass.ide.guid: self = .ide
        default: return nil
        }
    }

    /// Linux's limits (`STORVSC_MAX_LUNS_PER_TARGET`, `STORVSC_IDE_MAX_LUNS_PER_TARGET`, …).
    public var maxLUNsPerTarget: Int { self == .scsi ? 255 : 64 }
    public var maxTargets: Int { self == .scsi ? 2 : 1 }
    public var maxChannels: Int { self == .scsi ? 8 : 1 }

    public var description: String { rawValue }
}

/// Where an IDE disk sits, encoded in its offer as Hyper-V does it.
public enum IDELocation {
    /// `data3` of an IDE disk's instance GUID (OpenVMM's `build_ide`).
    public static let instanceData3: UInt16 = 0x8899

    /// The instance GUID of the disk at IDE `channel` (0–1), `device` (0–1): data1 = channel, data2 = device.
    public static func instanceID(channel: UInt32, device: UInt16) -> GUID {
        GUID(data1: channel, data2: device, data3: instanceData3, data4: (0, 0, 0, 0, 0, 0, 0, 0))
    }

    /// The target id Linux reads from an IDE offer: bytes 4–5 of the instance GUID (`data2`, little-endian).
    public static func targetID(fromInstance id: GUID) -> UInt16 { id.data2 }

    /// `user_def` of an IDE offer: {reserved u16, path_id u8, target_id u8, reserved u32, flags u32
    /// (`STORAGE_CHANNEL_EMULATED_IDE_FLAG`), reserved[12]}, read by old Windows drivers.
    public static func userDefined(pathID: UInt8, targetID: UInt8) -> [UInt8] {
        var w = WireWriter(capacity: 24)
        w.writeUInt16(0)
        w.writeUInt8(pathID)
        w.writeUInt8(targetID)
        w.writeUInt32(0)
        w.writeUInt32(StorageLimits.emulatedIDEFlag)
        w.writeZeros(12)
        return w.bytes
    }
}

/// Sizes and limits both sides agree on.
public enum StorageLimits {
    /// `STORAGE_CHANNEL_EMULATED_IDE_FLAG`
    public static let emulatedIDEFlag: UInt32 = 0x2
    /// `STORAGE_CHANNEL_REMOVABLE_FLAG`
    public static let removableFlag: UInt32 = 0x1
    /// `STORVSC_MAX_PKT_SIZE`: the largest packet the guest receives (descriptor + 64-byte VSTOR packet).
    public static let maxGuestInboundPacket = 80
    /// Linux's ring size per direction for storvsc (`storvsc_ringbuffer_size`, 128 KiB by default).
    public static let linuxRingSize = 128 * 1024
    /// The transaction id Linux uses for the initialization requests (`VMBUS_RQST_INIT`, U64_MAX − 2).
    public static let linuxInitTransactionID: UInt64 = 0xFFFF_FFFF_FFFF_FFFD
    /// The transaction id of Linux's RESET_BUS (`VMBUS_RQST_RESET`, U64_MAX − 3).
    public static let linuxResetTransactionID: UInt64 = 0xFFFF_FFFF_FFFF_FFFC
    /// The 24 zero bytes storvsc passes as OPENCHANNEL `userdata`.
    public static let openUserDataLength = 24
    /// The largest GPA-direct request a guest may send for a transfer of `maxTransferBytes`: descriptor,
    /// one range of `maxTransferBytes / 4096 + 1` PFNs, the VSTOR packet.
    public static func maxRequestPacketSize(maxTransferBytes: Int) -> Int {
        let pfns = maxTransferBytes / 4096 + 1
        return 16 + 8 + 8 + 8 * pfns + VStorPacket.wireSize
    }
}
