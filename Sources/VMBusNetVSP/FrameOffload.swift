/// What a frame crossing a backend still needs done: a TCP or UDP checksum left partial and a TCP segment
/// left for the receiver to cut, in the terms of virtio-net's header (Linux `CHECKSUM_PARTIAL` and GSO), which
/// is what a TAP opened with `IFF_VNET_HDR` takes and gives.
///
/// A partial checksum's field holds the folded pseudo-header sum (over the L4 length of the whole frame);
/// summing from ``checksumStart`` to the end of the frame, folded and inverted, gives the checksum. A
/// segmented frame's IP lengths and IPv4 header checksum are those of the whole frame, as Linux's stack makes
/// them for a GSO packet.
public struct FrameOffload: Equatable, Sendable {
    public enum Segmentation: Equatable, Sendable {
        case none
        case tcpIPv4
        case tcpIPv6
    }

    /// Where the checksummed bytes start (the L4 header), from the start of the frame.
    public var checksumStart: Int
    /// Where the checksum field is, after ``checksumStart`` (16 for TCP, 6 for UDP).
    public var checksumOffset: Int
    public var segmentation: Segmentation
    /// The TCP payload bytes of each segment but the last (the MSS); 0 without segmentation.
    public var segmentSize: Int
    /// Ethernet, IP and TCP headers together: what every segment repeats.
    public var headerLength: Int
    /// The frame had CWR set: only the first segment keeps it (`VIRTIO_NET_HDR_GSO_ECN`).
    public var explicitCongestion: Bool

    public init(checksumStart: Int, checksumOffset: Int, segmentation: Segmentation = .none, segmentSize: Int = 0,
                headerLength: Int = 0, explicitCongestion: Bool = false) {
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.segmentation = segmentation
        self.segmentSize = segmentSize
        self.headerLength = headerLength
        self.explicitCongestion = explicitCongestion
    }

    /// The same offload for the frame with `bytes` more in front of its L3 header (an 802.1Q tag inserted).
    func shifted(by bytes: Int) -> FrameOffload {
        var o = self
        o.checksumStart += bytes
        if o.segmentation != .none { o.headerLength += bytes }
        return o
    }
}
