import VMBusNetProtocol
import VMBusWire

/// The RNDIS miniport the host emulates, as a synchronous state machine: control messages in, the response
/// (if any) and what changed out. No I/O; ``NetVSP`` carries the messages.
///
/// OIDs answered are the ones Linux's `rndis_filter.c` uses (frame size, MAC, friendly name, offload
/// capabilities and parameters, media state, link speed, packet filter, the NetworkAddress parameter) plus a
/// few cheap GEN ones; any other QUERY or SET gets NOT_SUPPORTED, never silence.
public struct RNDISDevice: Sendable {
    public struct Configuration: Sendable {
        public var macAddress: [UInt8]
        /// The IP MTU; the largest frame is 14 more (VLAN tags ride in a PPI, not in the frame).
        public var mtu: Int
        /// In units of 100 bit/s (`OID_GEN_LINK_SPEED`): 100 000 000 is 10 Gbit/s, Hyper-V's figure.
        public var linkSpeed: UInt32
        public var friendlyName: String
        /// Whether TX checksum offload (IPv4 header, TCP, UDP over IPv4 and IPv6) is offered.
        public var offersChecksumOffload: Bool
        /// Whether LSOv2 for TCP over IPv4 and IPv6 is offered (``NetVSP`` segments).
        public var offersLargeSendOffload: Bool
        /// Whether receive segment coalescing (RSC) is offered (revision 3 of the offload structure, NVSP 5+):
        /// TCP segments a backend hands over unsegmented (a TAP's GSO) then reach the guest as one packet.
        public var offersReceiveCoalescing = true
        /// Receive queues offered through RSS (the primary channel and up to 63 sub-channels); 1: no RSS.
        public var receiveQueues = 1
        /// RNDIS INIT_C figures (OpenVMM: 8 packets per message, 8-byte alignment).
        public var maxPacketsPerMessage: UInt32 = 8
        public var packetAlignmentFactor: UInt32 = 3

        public init(macAddress: [UInt8], mtu: Int = 1500, linkSpeed: UInt32 = 100_000_000,
                    friendlyName: String = "Network Adapter", offersChecksumOffload: Bool = true,
                    offersLargeSendOffload: Bool = true) {
            self.macAddress = Array((macAddress + [UInt8](repeating: 0, count: 6)).prefix(6))
            self.mtu = mtu
            self.linkSpeed = linkSpeed
            self.friendlyName = friendlyName
            self.offersChecksumOffload = offersChecksumOffload
            self.offersLargeSendOffload = offersLargeSendOffload
        }
    }

    public enum Stage: Equatable, Sendable { case uninitialized, initialized, halted }

    /// What a message changed, for ``NetVSP`` to act on.
    public enum Effect: Equatable, Sendable {
        case none
        case initialized
        case halted
        case packetFilterChanged(NDISPacketFilter)
        case macAddressChanged([UInt8])
        /// RSS parameters were set (nil: RSS disabled).
        case receiveScalingChanged(ReceiveScaling?)
        /// RSS parameters that cannot work (empty table, entries past the queues, no key): refused.
        case receiveScalingRejected(String)
    }

    public let configuration: Configuration
    public private(set) var stage: Stage = .uninitialized
    public private(set) var packetFilter: NDISPacketFilter = []
    public private(set) var currentMACAddress: [UInt8]
    public private(set) var offloadParameters: NDISOffloadParams?
    public var linkUp = true

    /// Whether the guest turned RSC on (for IPv4, IPv6), and it was offered.
    public var receiveCoalescing: (ipv4: Bool, ipv6: Bool) {
        guard configuration.offersReceiveCoalescing, let p = offloadParameters else { return (false, false) }
        return (p.rscIPv4 == NDISOffloadParams.rscEnabled, p.rscIPv6 == NDISOffloadParams.rscEnabled)
    }
    /// OIDs answered with NOT_SUPPORTED, and messages of types a host does not take.
    public private(set) var unsupportedRequests = 0

    /// `RNDIS_MAJOR_VERSION`/minor as Linux's INIT carries them; OpenVMM's transfer size.
    static let maxTransferSize: UInt32 = 0xEFFF_FFFF

    public init(configuration: Configuration) {
        self.configuration = configuration
        currentMACAddress = configuration.macAddress
    }

    public var maxFrameSize: Int { configuration.mtu + 14 }

    /// Handles one control message. `nvspVersion` picks the offload structure's revision.
    public mutating func handle(_ message: RNDISMessage, nvspVersion: NVSPProtocolVersion) -> (RNDISMessage?, Effect) {
        switch message {
        case .initializeRequest(let m):
            stage = .initialized
            packetFilter = []
            let reply = RNDISInitializeComplete(
                requestID: m.requestID, status: .success, maxPacketsPerMessage: configuration.maxPacketsPerMessage,
                maxTransferSize: Self.maxTransferSize, packetAlignmentFactor: configuration.packetAlignmentFactor)
            return (.initializeComplete(reply), .initialized)
        case .halt:
            stage = .halted
            packetFilter = []
            return (nil, .halted)
        case .queryRequest(let m):
            let (status, info) = query(m, nvspVersion: nvspVersion)
            return (.queryComplete(RNDISQueryComplete(requestID: m.requestID, status: status, infoBuffer: info)), .none)
        case .setRequest(let m):
            let (status, effect) = set(m)
            return (.setComplete(RNDISSetComplete(requestID: m.requestID, status: status)), effect)
        case .resetRequest:
            // The filter and addresses survive: addressing_reset 0 (the guest need not set them again).
            return (.resetComplete(RNDISResetComplete(status: .success, addressingReset: 0)), .none)
        case .keepaliveRequest(let m):
            return (.keepaliveComplete(RNDISKeepaliveComplete(requestID: m.requestID, status: .success)), .none)
        default:
            unsupportedRequests += 1
            return (nil, .none)
        }
    }

    /// The INDICATE_STATUS for a link change.
    public static func linkIndication(up: Bool) -> RNDISMessage {
        .indicateStatus(RNDISIndicateStatus(status: up ? .mediaConnect : .mediaDisconnect))
    }

    // MARK: QUERY

    private mutating func query(_ m: RNDISQueryRequest, nvspVersion: NVSPProtocolVersion) -> (RNDISStatus, [UInt8]) {
        switch m.oid {
        case .genMaximumFrameSize:
            // Linux compares it with its MTU and lowers the MTU if it is smaller (OpenVMM answers MTU).
            return (.success, u32(UInt32(configuration.mtu)))
        case .genMaximumTotalSize:
            return (.success, u32(UInt32(maxFrameSize)))
        case .ieee802_3PermanentAddress:
            return (.success, configuration.macAddress)
        case .ieee802_3CurrentAddress:
            return (.success, currentMACAddress)
        case .ieee802_3MaximumListSize:
            return (.success, u32(32))
        case .genFriendlyName:
            // UTF-16LE with its terminating NUL, as Windows miniports answer.
            let name = (configuration.friendlyName.utf16 + [0]).flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] }
            return (.success, name)
        case .genMediaConnectStatus:
            return (.success, u32((linkUp ? RNDISMediaState.connected : .disconnected).rawValue))
        case .genLinkSpeed:
            return (.success, u32(configuration.linkSpeed))
        case .genCurrentPacketFilter:
            return (.success, u32(packetFilter.rawValue))
        case .genMediaSupported, .genMediaInUse:
            return (.success, u32(0))  // NdisMedium802_3
        case .genPhysicalMedium:
            return (.success, u32(0))
        case .tcpOffloadHardwareCapabilities:
            return (.success, offloadCapabilities(request: m.infoBuffer, nvspVersion: nvspVersion))
        case .genReceiveScaleCapabilities where configuration.receiveQueues > 1 && nvspVersion >= .v5:
            let caps = NDISReceiveScaleCapabilities(
                capabilityFlags: NDISReceiveScaleCapabilities.capsHashTypeTCPIPv4 | NDISReceiveScaleCapabilities.capsHashTypeTCPIPv6,
                interruptMessageCount: 1, receiveQueueCount: UInt32(configuration.receiveQueues),
                indirectionTableEntryCount: UInt16(NDISReceiveScaleParameters.linuxIndirectionTableEntries))
            var w = WireWriter(capacity: NDISReceiveScaleCapabilities.wireSize)
            caps.encode(into: &w)
            return (.success, w.bytes)
        default:
            // RSS capabilities when there is one queue: without them Linux runs one queue.
            unsupportedRequests += 1
            return (.notSupported, [])
        }
    }

    /// `struct ndis_offload` at the revision the guest's header asks for (Linux: 3/2/1 for NVSP ≥ 5 / 4 /
    /// older), or the one the version implies if the request carries no usable header.
    private func offloadCapabilities(request: [UInt8], nvspVersion: NVSPProtocolVersion) -> [UInt8] {
        var revision: UInt8 = nvspVersion >= .v5 ? NDISOffload.revision3 : nvspVersion >= .v4 ? NDISOffload.revision2 : NDISOffload.revision1
        var r = WireReader(request)
        if let h = try? NDISObjectHeader(from: &r), h.type == NDISObjectHeader.typeOffload,
           (NDISOffload.revision1...NDISOffload.revision3).contains(h.revision) {
            revision = h.revision
        }
        var caps = NDISOffload(header: NDISOffload.header(revision: revision))
        if configuration.offersChecksumOffload {
            caps.checksum.ip4TXEncapsulation = NDISOffload.encapsulation8023
            caps.checksum.ip4TXChecksum = NDISChecksumOffload.capIP4 | NDISChecksumOffload.allTCP4
                | NDISChecksumOffload.capUDP4 | NDISChecksumOffload.capIP4Options
            caps.checksum.ip6TXEncapsulation = NDISOffload.encapsulation8023
            caps.checksum.ip6TXChecksum = NDISChecksumOffload.allTCP6 | NDISChecksumOffload.capUDP6
        }
        if configuration.offersLargeSendOffload {
            caps.lsoV2.ip4Encapsulation = NDISOffload.encapsulation8023
            caps.lsoV2.ip4MaxSize = LargeSendOffload.maxOffloadSize
            caps.lsoV2.ip4MinSegments = 2
            caps.lsoV2.ip6Encapsulation = NDISOffload.encapsulation8023
            caps.lsoV2.ip6MaxSize = LargeSendOffload.maxOffloadSize
            caps.lsoV2.ip6MinSegments = 2
            caps.lsoV2.ip6Options = NDISLSOv2Offload.capIP6
        }
        if configuration.offersReceiveCoalescing && revision >= NDISOffload.revision3 {
            caps.rsc.ip4 = 1
            caps.rsc.ip6 = 1
        }
        var w = WireWriter(capacity: NDISOffload.wireSize)
        caps.encode(into: &w)
        return w.bytes
    }

    // MARK: SET

    private mutating func set(_ m: RNDISSetRequest) -> (RNDISStatus, Effect) {
        switch m.oid {
        case .genCurrentPacketFilter:
            guard m.infoBuffer.count >= 4 else { return (.invalidLength, .none) }
            var r = WireReader(m.infoBuffer)
            guard let raw = try? r.readUInt32() else { return (.invalidLength, .none) }
            packetFilter = NDISPacketFilter(rawValue: raw)
            return (.success, .packetFilterChanged(packetFilter))
        case .tcpOffloadParameters:
            var r = WireReader(m.infoBuffer)
            guard let p = try? NDISOffloadParams(from: &r) else { return (.invalidData, .none) }
            offloadParameters = p
            return (.success, .none)
        case .genRNDISConfigParameter:
            var r = WireReader(m.infoBuffer)
            guard let p = try? RNDISConfigParameterInfo(from: &r) else { return (.invalidData, .none) }
            guard p.nameString == RNDISConfigParameterInfo.networkAddressName,
                  let mac = Self.parseMAC(p.valueString) else {
                unsupportedRequests += 1
                return (.notSupported, .none)
            }
            currentMACAddress = mac
            return (.success, .macAddressChanged(mac))
        case .genReceiveScaleParameters where configuration.receiveQueues > 1:
            var r = WireReader(m.infoBuffer)
            guard let p = try? NDISReceiveScaleParameters(from: &r) else {
                return (.invalidData, .receiveScalingRejected("RSS parameters that do not decode"))
            }
            if p.flags & NDISReceiveScaleParameters.flagDisableRSS != 0 { return (.success, .receiveScalingChanged(nil)) }
            guard !p.indirectionTable.isEmpty, p.hashKey.count >= 4 else {
                return (.invalidData, .receiveScalingRejected("RSS with \(p.indirectionTable.count) table entries, a \(p.hashKey.count)-byte key"))
            }
            guard let bad = p.indirectionTable.first(where: { $0 >= UInt32(configuration.receiveQueues) }) else {
                return (.success, .receiveScalingChanged(ReceiveScaling(indirectionTable: p.indirectionTable, hashKey: p.hashKey)))
            }
            return (.invalidData, .receiveScalingRejected("RSS table entry \(bad) past \(configuration.receiveQueues) queues"))
        case .ieee802_3MulticastList, .genVLANID, .genCurrentLookahead:
            // Accepted and ignored: the NIC passes every multicast frame the filter lets through.
            return (.success, .none)
        default:
            unsupportedRequests += 1
            return (.notSupported, .none)
        }
    }

    /// "0011223344AA" or with separators (what Linux's `rndis_filter_set_device_mac` writes: 12 hex digits).
    static func parseMAC(_ s: String) -> [UInt8]? {
        let digits = s.unicodeScalars.filter { $0 != "-" && $0 != ":" }
        guard digits.count == 12 else { return nil }
        var out: [UInt8] = []
        var high: UInt8?
        for c in digits {
            guard let v = UInt8(String(c), radix: 16) else { return nil }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }

    private func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}
