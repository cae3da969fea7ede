import CVMBusTAP
import VMBusSync
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// Why a TAP operation failed: the call and its errno.
public struct TAPError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32
    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// A Linux TAP interface opened through /dev/net/tun with a virtio-net header before every frame
/// (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), non-blocking, and no offloads asked for (TUNSETOFFLOAD 0): the kernel
/// then hands over only complete frames (checksums filled, no GSO), and the rare one that is not is finished
/// or refused by ``TAPFrameReader``.
///
/// Writes never block (the descriptor is non-blocking): a full queue answers ``WriteResult/wouldBlock`` and the
/// caller drops the frame, as a NIC whose queue is full does. The descriptor stays valid when the interface is
/// moved to another network namespace (`ip link set NAME netns NS`).
public final class TAPDevice: @unchecked Sendable {
    /// The interface's name as the kernel has it.
    public let name: String
    public let fd: Int32
    /// Held by writers and ``close()``: a frame written by a NIC's worker as the TAP closes must not land in a
    /// descriptor the number was reused for. (Reads run on one thread that is stopped before closing.)
    private let closed = Lock(false)

    public enum WriteResult: Equatable, Sendable {
        case written
        /// The interface's queue is full (or the interface is down): the frame was not taken.
        case wouldBlock
        case failed(Int32)
    }

    /// What the kernel may hand over unfinished (TUNSETOFFLOAD's TUN_F_* bits).
    public struct Offloads: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `TUN_F_CSUM`: TCP and UDP checksums may be left partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`).
        public static let checksum = Offloads(rawValue: vmbus_tap_offload_csum())
        /// `TUN_F_TSO4`, `TUN_F_TSO6`, `TUN_F_TSO_ECN`: TCP segments of up to 64 KiB, cut by whoever takes
        /// them (each needs ``checksum`` too).
        public static let tcpSegmentationIPv4 = Offloads(rawValue: vmbus_tap_offload_tso4())
        public static let tcpSegmentationIPv6 = Offloads(rawValue: vmbus_tap_offload_tso6())
        public static let tcpSegmentationECN = Offloads(rawValue: vmbus_tap_offload_tso_ecn())
    }

    /// Opens (creating if needed) the TAP interface `name` (1...15 bytes). With no `offloads` (what the
    /// backends use) every frame the kernel hands over is complete.
    public init(name: String, offloads: Offloads = []) throws(TAPError) {
        guard !name.isEmpty, name.utf8.count < 16 else { throw TAPError("TAP name '\(name)'", errno: ENAMETOOLONG) }
        var actual = [CChar](repeating: 0, count: 16)
        let fd = vmbus_tap_open(name, &actual)
        guard fd >= 0 else { throw TAPError("open /dev/net/tun as \(name)", errno: errno) }
        self.fd = fd
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard vmbus_tap_set_offload(fd, offloads.rawValue) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw TAPError("TUNSETOFFLOAD \(name)", errno: e)
        }
    }

    deinit { close() }

    /// Changes what the kernel may hand over unfinished (TUNSETOFFLOAD).
    public func setOffloads(_ offloads: Offloads) throws(TAPError) {
        guard vmbus_tap_set_offload(fd, offloads.rawValue) == 0 else { throw TAPError("TUNSETOFFLOAD \(name)", errno: errno) }
    }

    /// Caps the GSO frames the kernel hands over at `bytes` (IFLA_GSO_MAX_SIZE), in the caller's namespace.
    public func setGSOMaxSize(_ bytes: Int) throws(TAPError) {
        guard vmbus_tap_set_gso_max_size(name, UInt32(clamping: bytes)) == 0 else {
            throw TAPError("IFLA_GSO_MAX_SIZE \(name) \(bytes)", errno: errno)
        }
    }

    public func close() {
        let was = closed.withLock { c -> Bool in defer { c = true }; return c }
        if !was { Glibc.close(fd) }
    }

    /// Sets the interface's Ethernet address (SIOCSIFHWADDR), in the caller's network namespace.
    public func setMACAddress(_ mac: [UInt8]) throws(TAPError) {
        guard mac.count == 6 else { throw TAPError("MAC address of \(mac.count) bytes", errno: EINVAL) }
        guard vmbus_tap_set_mac(name, mac) == 0 else { throw TAPError("SIOCSIFHWADDR \(name)", errno: errno) }
    }

    public func setMTU(_ mtu: Int) throws(TAPError) {
        guard vmbus_tap_set_mtu(name, Int32(clamping: mtu)) == 0 else { throw TAPError("SIOCSIFMTU \(name) \(mtu)", errno: errno) }
    }

    public func setUp() throws(TAPError) {
        guard vmbus_tap_set_up(name) == 0 else { throw TAPError("SIOCSIFFLAGS \(name) up", errno: errno) }
    }

    /// Sets the interface's carrier (TUNSETCARRIER), as a NIC's link state shows in `ip link` (LOWER_UP,
    /// NO-CARRIER); false if the kernel cannot (before Linux 5.0).
    @discardableResult
    public func setCarrier(_ on: Bool) -> Bool { vmbus_tap_set_carrier(fd, on ? 1 : 0) == 0 }

    /// The interface's MTU (SIOCGIFMTU), or nil if it is not in this namespace any more.
    public var mtu: Int? {
        var m: Int32 = 0
        return vmbus_tap_get_mtu(name, &m) == 0 ? Int(m) : nil
    }

    /// Writes `header` (encoded on the stack: no allocation per frame) and `frame` as one packet; never blocks.
    public func write(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) -> WriteResult {
        withUnsafeTemporaryAllocation(byteCount: VirtioNetHeader.size, alignment: 2) { h in
            header.encode(into: h)
            return closed.withLock { isClosed in
                isClosed ? .failed(EBADF) : writeOpen(header: UnsafeRawBufferPointer(h), frame: frame)
            }
        }
    }

    private func writeOpen(header h: UnsafeRawBufferPointer, frame: UnsafeRawBufferPointer) -> WriteResult {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors in
            vectors[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress), iov_len: h.count)
            vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: frame.baseAddress), iov_len: frame.count)
            while true {
                let n = writev(fd, vectors.baseAddress, 2)
                if n >= 0 { return .written }
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .wouldBlock
                case let e: return .failed(e)
                }
            }
        }
    }

    /// Reads one packet (virtio-net header and frame) into `buffer`; its length, or 0 if none is queued, or
    /// nil on an error other than EAGAIN (the interface went away).
    public func read(into buffer: inout [UInt8]) -> Int? {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: return nil
            }
        }
    }
}
