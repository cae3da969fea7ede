import VMBusWire

/// QUERY and SET requests share one layout (`rndis_query_request` = `rndis_set_request` without the flexible
/// array): req_id, oid, info_buflen, info_buf_offset, dev_vc_handle, and the buffer, which we put right after.
enum RNDISOIDRequest {
    static let fixedSize = 20

    static func decode(_ r: inout WireReader) throws(WireError)
        -> (requestID: UInt32, oid: RNDISOID, deviceVCHandle: UInt32, infoBuffer: [UInt8]) {
        let body = try r.readSubReader(r.remaining)
        var b = body
        let requestID = try b.readUInt32()
        let oid = RNDISOID(rawValue: try b.readUInt32())
        let length = try b.readUInt32()
        let offset = try b.readUInt32()
        let handle = try b.readUInt32()
        let buffer = try RNDISInfoBuffer.read(body, offset: offset, length: length, fixedSize: fixedSize,
                                              field: "info_buf_offset")
        return (requestID, oid, handle, buffer)
    }

    static func encode(into w: inout WireWriter, requestID: UInt32, oid: RNDISOID, deviceVCHandle: UInt32,
                       infoBuffer: [UInt8]) {
        w.writeUInt32(requestID)
        w.writeUInt32(oid.rawValue)
        w.writeUInt32(UInt32(truncatingIfNeeded: infoBuffer.count))
        w.writeUInt32(UInt32(fixedSize))
        w.writeUInt32(deviceVCHandle)
        w.writeBytes(infoBuffer)
    }
}
