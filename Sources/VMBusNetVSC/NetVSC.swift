import Atomics
import Logging
import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusProtocol
import VMBusRing
import VMBusSync
import VMBusTransport
import VMBusWire

/// The guest's synthetic NIC for one netvsc device (Linux's `netvsc.c` and `rndis_filter.c` for one
/// `hv_device`, without the net_device): NVSP and RNDIS initialization in Linux's order, the receive and send
/// buffers, and the data path.
///
/// Threads: ``send(_:offload:)`` runs on the caller's thread (serialised by one lock, no allocation, no
/// waiting: a full ring or no free section answers ``NetVSCSendResult/busy``). Received frames reach the
/// handler on the bus's interrupt thread. Receive completions are sent from there without waiting; the ones
/// that find the ring full queue up (`rx_comp_busy`) for the NIC's own retry thread, so the interrupt thread
/// never blocks on the host.
public final class NetVSC: GuestChannelHandler, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// NVSP versions in the order tried (Linux: 6.1, 6, 5, 4, 2, 1).
        public var versions: [NVSPProtocolVersion] = NVSPProtocolVersion.linuxTryOrder
        public var mtu = 1500
        /// Linux: 16 MiB receive, 1 MiB send.
        public var receiveBufferBytes = 2 << 20
        public var sendBufferBytes = 1 << 20
        /// Each ring, control page included.
        public var ringSize = 256 * 1024
        /// Buffers in guest memory for frames too large for a send section (sent GPA-direct).
        public var largeSendBuffers = 16
        public var packetFilter: NDISPacketFilter = .linuxDefault
        /// Per initialization step.
        public var controlTimeoutNanoseconds: UInt64 = 10_000_000_000
        /// Receive completions kept for retry at most (more means the host sends faster than it reads).
        public var maxPendingCompletions = 8192
        /// Ask for LSOv2 if the host offers it; the GPA-direct buffers then hold 64 KiB sends.
        public var largeSendOffload = false
        /// Turn on receive segment coalescing (RSC, NVSP 5+) when the host offers it for both IP versions, as
        /// Linux's LRO does by default: a coalesced TCP segment then arrives as one frame of up to 64 KiB
        /// (``ReceivedFrameInfo/fragments`` above 1).
        public var receiveCoalescing = true
        /// Receive queues to ask for (NVSP 5+, RSS): sub-channels beyond the primary, capped by the host's
        /// RSS capabilities and 64. With more than one, call ``start()`` off the bus's work thread: the
        /// sub-channel offers arrive there.
        public var queues = 1
        public init() {}
    }

    /// What to leave to the host for one frame: checksums (`TCPIP_CHKSUM_PKTINFO` transmit bits),
    /// segmentation (`TCP_LARGESEND_PKTINFO`, LSOv2) and the 802.1Q tag (`IEEE_8021Q_INFO`).
    public struct TransmitOffload: Sendable, Equatable {
        public var checksum: NDISTCPIPChecksumInfo?
        public var largeSend: NDISTCPLSOInfo?
        public var vlan: NDISPacket8021QInfo?
        public init(checksum: NDISTCPIPChecksumInfo? = nil, largeSend: NDISTCPLSOInfo? = nil,
                    vlan: NDISPacket8021QInfo? = nil) {
            self.checksum = checksum
            self.largeSend = largeSend
            self.vlan = vlan
        }
        /// A TCP segment of up to ``NetVSC/largeSendMaxSize`` bytes for the host to cut at `mss`.
        public static func tcpSegmentation(mss: Int, l4Offset: Int, ipv6: Bool) -> Self {
            Self(largeSend: .v2Transmit(mss: UInt32(mss), tcpHeaderOffset: UInt32(l4Offset), ipv6: ipv6))
        }
        /// TCP (or UDP) over IPv4 with the IP header checksum too; `l4Offset` is where the L4 header starts.
        public static func ipv4(tcp: Bool, l4Offset: Int) -> Self {
            var c = NDISTCPIPChecksumInfo()
            c.isIPv4 = true
            c.ipHeaderChecksum = true
            if tcp { c.tcpChecksum = true } else { c.udpChecksum = true }
            c.tcpHeaderOffset = UInt32(l4Offset)
            return Self(checksum: c)
        }
    }

    public let device: GuestDevice
    public let configuration: Configuration
    let logger: Logger
    let counters = NetVSCCounterSet()
    let receiveHandler: (@Sendable (UnsafeRawBufferPointer, ReceivedFrameInfo) -> Void)?
    let linkHandler: (@Sendable (Bool) -> Void)?

    /// Set by ``start()`` before traffic; read-only after.
    public internal(set) var version: NVSPProtocolVersion?
    public internal(set) var permanentMACAddress: [UInt8] = []
    public internal(set) var mtu = 0
    public internal(set) var linkSpeed: UInt32 = 0
    /// Whether the host offered TX checksum offload for TCP/UDP over IPv4 (and enabled it).
    public internal(set) var checksumOffload = false
    /// The same for TCP/UDP over IPv6.
    public internal(set) var checksumOffloadIPv6 = false
    /// Whether RSC is on (the host offered it and took the request).
    public internal(set) var receiveCoalescing = false
    /// The largest TCP segment (headers included) the host segments, 0 without LSO.
    public internal(set) var largeSendMaxSize = 0
    /// Whether LSOv2 covers IPv6 too (``largeSendMaxSize`` applies to both).
    public internal(set) var largeSendIPv6 = false
    public internal(set) var sendSectionSize = 0
    /// The most frames one send carries (the host's `max_pkt_per_msg`) and their alignment in a section.
    public internal(set) var batchLimit = 1
    public internal(set) var packetAlignment = 1
    public internal(set) var receiveSlotSize = 0
    let link = ManagedAtomic<Bool>(false)
    let running = ManagedAtomic<Bool>(false)

    var channel: GuestChannel?
    /// Open channels by sub-channel index (0 = primary), for completing on the channel a packet came on.
    var channelsByIndex = [GuestChannel?](repeating: nil, count: 64)
    /// The sub-channels in index order.
    var subchannels: [GuestChannel] = []
    var receiveBuffer: GuestPageBuffer?
    var receiveGPADL: UInt32?
    var sendBuffer: GuestPageBuffer?
    var sendGPADL: UInt32?
    var controlPage: GuestPageBuffer?
    var allPages: [UInt64] = []

    let transmit = Lock(TransmitState())
    /// Counts completions that freed a send resource while someone waits in ``waitForSendSpace(timeoutNanoseconds:)``.
    let sendSpace = Condition<Int>(0)
    let sendSpaceWaiters = ManagedAtomic<Int>(0)
    let control = Condition(ControlState())
    let receive = Lock(ReceiveState())
    let pendingCompletions = Condition(PendingCompletions())
    let retryThreadDone = Latch()
    var retryThreadStarted = false

    /// - Parameters:
    ///   - onReceive: called with each received frame (valid only during the call) on the bus's interrupt
    ///     thread; it must not block.
    ///   - onReceiveFrame: the same with what the host said about the frame; used instead of `onReceive`.
    ///   - onLinkChange: called on the interrupt thread when the host indicates MEDIA_CONNECT/DISCONNECT.
    public init(device: GuestDevice, configuration: Configuration = Configuration(), logger: Logger? = nil,
                onReceive: (@Sendable (UnsafeRawBufferPointer) -> Void)? = nil,
                onReceiveFrame: (@Sendable (UnsafeRawBufferPointer, ReceivedFrameInfo) -> Void)? = nil,
                onLinkChange: (@Sendable (Bool) -> Void)? = nil) throws(NetVSCError) {
        guard device.classID == DeviceClass.nic.classID else {
            throw .invalidArgument("device \(device.instanceID) is not a synthetic NIC")
        }
        guard configuration.mtu >= 68, configuration.mtu <= 65_000 else {
            throw .invalidArgument("MTU \(configuration.mtu)")
        }
        self.device = device
        self.configuration = configuration
        self.logger = logger ?? Logger(label: "vmbus.netvsc")
        receiveHandler = onReceiveFrame ?? onReceive.map { handler in { @Sendable frame, _ in handler(frame) } }
        linkHandler = onLinkChange
    }

    public var counterSnapshot: NetVSCCounters {
        var c = counters.snapshot
        c.malformed += Int(channel?.rejectedCompletions ?? 0)
        return c
    }
    public var linkUp: Bool { link.load(ordering: .acquiring) }
    /// Channels carrying receive traffic: the primary and the sub-channels opened for RSS.
    public var queueCount: Int { 1 + subchannels.count }
    /// Frames received per channel (0 = primary).
    public var receivePacketsPerQueue: [Int] { receive.withLock { Array($0.perQueue.prefix(queueCount)) } }
    public var isRunning: Bool { running.load(ordering: .acquiring) }
    /// The largest frame ``send(_:offload:)`` takes and the host delivers: MTU + 14, and one 802.1Q tag.
    public var maxFrameSize: Int { mtu + 18 }
    /// The MAC address in use (the permanent one unless changed).
    public var macAddress: [UInt8] { control.withLock { $0.currentMAC ?? permanentMACAddress } }
}

/// What the host said about a received frame.
public struct ReceivedFrameInfo: Equatable, Sendable {
    /// The host reported the TCP or UDP checksum (and IPv4's) verified (`TCPIP_CHKSUM_PKTINFO` receive bits):
    /// a stack may skip checking it, as Linux's netvsc marks the skb CHECKSUM_UNNECESSARY.
    public var checksumVerified: Bool
    /// The RSC fragments the frame was joined from (1: not coalesced).
    public var fragments: Int
    public init(checksumVerified: Bool = false, fragments: Int = 1) {
        self.checksumVerified = checksumVerified
        self.fragments = fragments
    }
}
