import VMBusWire

/// `struct nvsp_4_send_vf_association`: host → guest, a VF (SR-IOV) with this vPCI serial is there
/// (`allocated` 1) or about to go (0). Linux never completes it. We have no VF, but decode it.
public struct NVSPSendVFAssociation: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_4_send_vf_association"
    public static let wireSize = 8

    public var allocated: UInt32
    public var serial: UInt32

    public init(allocated: UInt32, serial: UInt32) {
        self.allocated = allocated
        self.serial = serial
    }

    public var isAllocated: Bool { allocated != 0 }

    public init(from r: inout WireReader) throws(WireError) {
        allocated = try r.readUInt32()
        serial = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(allocated)
        w.writeUInt32(serial)
    }
}

/// `enum nvsp_vm_datapath`. Open: the peer writes it.
public struct NVSPDataPath: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NVSP_DATAPATH_SYNTHETIC`
    public static let synthetic = Self(rawValue: 0)
    /// `NVSP_DATAPATH_VF`
    public static let vf = Self(rawValue: 1)
    /// `NVSP_DATAPATH_MAX`
    public static let max = Self(rawValue: 2)
}

/// `struct nvsp_4_sw_datapath`: either side asks to move traffic between the synthetic path and the VF. The
/// guest's request asks for a completion, which the host sends empty.
public struct NVSPSwitchDataPath: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_4_sw_datapath"
    public static let wireSize = 4

    public var activeDataPath: NVSPDataPath

    public init(activeDataPath: NVSPDataPath) { self.activeDataPath = activeDataPath }

    public init(from r: inout WireReader) throws(WireError) {
        activeDataPath = NVSPDataPath(rawValue: try r.readUInt32())
    }
    public func encode(into w: inout WireWriter) { w.writeUInt32(activeDataPath.rawValue) }
}
