import VMBusWire

/// One queue's transfer-page packet being filled with frames a backend delivered with `more` (more frames
/// follow at once): their slots are written and linked, and the packet goes when the batch ends, when it is
/// full, or before anything else is sent on that queue. One packet and one guest completion then carry many
/// frames, as Hyper-V batches receives; Linux's netvsc walks every range of a packet (`netvsc_receive`) and
/// completes the packet once.
struct HeldReceivePacket {
    /// The transfer-page header (`xfer_pageset_id`, `sender_owns_set`, `reserved`, `range_cnt`), then one
    /// range per frame held.
    var header = WireWriter(capacity: 8 + 8 * NetVSP.maxFramesPerReceivePacket)
    var count = 0
    var bytes = 0
    /// The first slot (whose transaction id completes the packet) and the last (the next one links to it).
    var first = -1
    var last = -1

    /// Offset of `range_cnt` in the header.
    static let rangeCountOffset = 4
}
