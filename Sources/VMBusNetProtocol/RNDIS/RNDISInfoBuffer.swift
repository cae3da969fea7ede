import VMBusWire

/// The offset/length pairs of QUERY, SET, their completions and INDICATE_STATUS: offsets count from the start
/// of the message body (the `req_id` word, 8 bytes into the message), and both come from the peer.
enum RNDISInfoBuffer {
    /// The `length` bytes at `offset` in `body`. An empty buffer's offset is not looked at (hosts leave it 0
    /// or point it at the end). A buffer must not overlap the `fixedSize` bytes of the fixed fields nor leave
    /// the message.
    static func read(_ body: WireReader, offset: UInt32, length: UInt32, fixedSize: Int,
                     field: String) throws(WireError) -> [UInt8] {
        guard length != 0 else { return [] }
        guard Int(offset) >= fixedSize else { throw .invalidValue(field: field, value: UInt64(offset)) }
        return try body.region(at: Int(offset), count: Int(length)).windowBytes()
    }
}
