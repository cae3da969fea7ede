import VMBusWire

// Version 2's host-allocated receive buffers. Linux declares them but never sends them; they decode so a peer
// that does is answered knowingly.

/// `struct nvsp_2_alloc_rxbuf`
public struct NVSPAllocateReceiveBuffer: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_2_alloc_rxbuf"
    public static let wireSize = 8

    public var allocationID: UInt32
    public var length: UInt32

    public init(allocationID: UInt32, length: UInt32) {
        self.allocationID = allocationID
        self.length = length
    }

    public init(from r: inout WireReader) throws(WireError) {
        allocationID = try r.readUInt32()
        length = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(allocationID)
        w.writeUInt32(length)
    }
}

/// `struct nvsp_2_alloc_rxbuf_comp` (packed: the u64 sits at offset 12).
public struct NVSPAllocateReceiveBufferComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_2_alloc_rxbuf_comp"
    public static let wireSize = 20

    public var status: NVSPStatus
    public var allocationID: UInt32
    public var gpadlHandle: UInt32
    public var receiveBufferID: UInt64

    public init(status: NVSPStatus, allocationID: UInt32, gpadlHandle: UInt32, receiveBufferID: UInt64) {
        self.status = status
        self.allocationID = allocationID
        self.gpadlHandle = gpadlHandle
        self.receiveBufferID = receiveBufferID
    }

    public init(from r: inout WireReader) throws(WireError) {
        status = NVSPStatus(rawValue: try r.readUInt32())
        allocationID = try r.readUInt32()
        gpadlHandle = try r.readUInt32()
        receiveBufferID = try r.readUInt64()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(status.rawValue)
        w.writeUInt32(allocationID)
        w.writeUInt32(gpadlHandle)
        w.writeUInt64(receiveBufferID)
    }
}

/// `struct nvsp_2_free_rxbuf`
public struct NVSPFreeReceiveBuffer: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_2_free_rxbuf"
    public static let wireSize = 8

    public var receiveBufferID: UInt64

    public init(receiveBufferID: UInt64) { self.receiveBufferID = receiveBufferID }

    public init(from r: inout WireReader) throws(WireError) { receiveBufferID = try r.readUInt64() }
    public func encode(into w: inout WireWriter) { w.writeUInt64(receiveBufferID) }
}
