/// `struct hv_ring_buffer`: byte offsets in the 4 KiB control page at the start of each ring (PROTOCOL.md §5.1).
///
/// The ring code reads and writes these words atomically in shared memory; this type only names where they
/// are. Indices are byte offsets into the data area, which starts at ``dataOffset``.
public enum RingControlLayout {
    public static let cName = "hv_ring_buffer"

    /// `write_index`: owned by the writer.
    public static let writeIndexOffset = 0
    /// `read_index`: owned by the reader.
    public static let readIndexOffset = 4
    /// `interrupt_mask`: set by the reader while draining ("do not signal me").
    public static let interruptMaskOffset = 8
    /// `pending_send_sz`: bytes the writer is waiting for; 0 = not blocked.
    public static let pendingSendSizeOffset = 12
    /// `feature_bits`
    public static let featureBitsOffset = 64
    /// `buffer`: the data area, after the control page.
    public static let dataOffset = 4096
    /// `sizeof(struct hv_ring_buffer)`: the control page.
    public static let controlPageSize = 4096

    /// `feat_pending_send_sz` (bit 0 of `feature_bits`): the writer honours `pending_send_sz`.
    public static let featurePendingSendSize: UInt32 = 0x1
    /// `VMBUS_PKT_TRAILER`: the u64 after every packet (high half = the packet's start offset).
    public static let packetTrailerSize = 8
}
