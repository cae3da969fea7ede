/// Finishing a checksum another stack left partial (virtio-net's `VIRTIO_NET_HDR_F_NEEDS_CSUM`, Linux's
/// CHECKSUM_PARTIAL): the field already holds the pseudo-header sum, so the one's-complement sum of everything
/// from `start` to the end of the frame, folded and inverted, is the checksum. Backends that receive such frames
/// (TAP) finish them before they reach a guest, which expects complete checksums.
public enum PartialChecksum {
    /// Completes the checksum of the frame at `frame[frameStart ..< frameEnd]` whose summing begins `start`
    /// bytes into the frame and whose field is `offset` bytes after that. False (frame unchanged) if the
    /// field lies outside the frame.
    public static func complete(_ frame: inout [UInt8], frameStart: Int, frameEnd: Int, start: Int, offset: Int) -> Bool {
        let from = frameStart + start
        let field = from + offset
        guard frameStart >= 0, frameEnd <= frame.count, start >= 0, offset >= 0, field + 2 <= frameEnd else { return false }
        let sum = ChecksumOffload.fold(ChecksumOffload.add(frame, from, frameEnd - from, 0))
        // 0 and 0xFFFF are the same one's-complement value; UDP reserves 0 for "no checksum".
        let checksum = ~sum == 0 ? 0xFFFF : ~sum
        ChecksumOffload.put16(&frame, field, checksum)
        return true
    }
}
