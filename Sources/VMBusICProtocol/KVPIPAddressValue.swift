import VMBusWire

/// `struct hv_kvp_ipaddr_value` (7426 bytes, no padding): an adapter's IP settings, for
/// KVP_OP_GET_IP_INFO and KVP_OP_SET_IP_INFO.
///
/// The text fields are `__u16` arrays. On VMBus they hold UTF-16LE; through /dev/vmbus/hv_kvp Linux puts
/// UTF-8 in the same arrays, at most as many bytes as the array has elements (`MAX_ADAPTER_ID_SIZE`,
/// `MAX_IP_ADDR_SIZE`, `MAX_GATEWAY_SIZE`). Several addresses are separated by `;`.
public struct KVPIPAddressValue: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_ipaddr_value"
    public static let wireSize = 7426
    /// `MAX_ADAPTER_ID_SIZE`
    public static let maxAdapterIDSize = 128
    /// `MAX_IP_ADDR_SIZE`
    public static let maxIPAddrSize = 1024
    /// `MAX_GATEWAY_SIZE`
    public static let maxGatewaySize = 512

    /// `ADDR_FAMILY_NONE`
    public static let addrFamilyNone: UInt8 = 0
    /// `ADDR_FAMILY_IPV4`
    public static let addrFamilyIPv4: UInt8 = 1
    /// `ADDR_FAMILY_IPV6`
    public static let addrFamilyIPv6: UInt8 = 2

    /// The text members, with their `__u16` element counts.
    public enum TextField: CaseIterable, Sendable {
        case adapterID, ipAddr, subNet, gateWay, dnsAddr

        public var elementCount: Int {
            switch self {
            case .adapterID: return KVPIPAddressValue.maxAdapterIDSize
            case .gateWay: return KVPIPAddressValue.maxGatewaySize
            case .ipAddr, .subNet, .dnsAddr: return KVPIPAddressValue.maxIPAddrSize
            }
        }

        /// Bytes a string may take in `encoding`, NUL included.
        public func capacity(_ encoding: ICStringEncoding) -> Int {
            encoding == .utf16LE ? elementCount * 2 : elementCount
        }
    }

    /// `adapter_id[128]`, raw.
    public var adapterID: [UInt8]
    public var addrFamily: UInt8
    public var dhcpEnabled: UInt8
    /// `ip_addr[1024]`, raw.
    public var ipAddr: [UInt8]
    /// `sub_net[1024]`, raw.
    public var subNet: [UInt8]
    /// `gate_way[512]`, raw.
    public var gateWay: [UInt8]
    /// `dns_addr[1024]`, raw.
    public var dnsAddr: [UInt8]

    public init(addrFamily: UInt8 = 0, dhcpEnabled: UInt8 = 0) {
        self.addrFamily = addrFamily
        self.dhcpEnabled = dhcpEnabled
        adapterID = Array(repeating: 0, count: TextField.adapterID.elementCount * 2)
        ipAddr = Array(repeating: 0, count: TextField.ipAddr.elementCount * 2)
        subNet = ipAddr
        gateWay = Array(repeating: 0, count: TextField.gateWay.elementCount * 2)
        dnsAddr = ipAddr
    }

    private func raw(_ f: TextField) -> [UInt8] {
        switch f {
        case .adapterID: return adapterID
        case .ipAddr: return ipAddr
        case .subNet: return subNet
        case .gateWay: return gateWay
        case .dnsAddr: return dnsAddr
        }
    }

    /// A text member in `encoding`, up to its NUL. A member with no NUL in its capacity throws unless
    /// `termination` is `.tolerated`.
    public func string(_ f: TextField, encoding: ICStringEncoding,
                       termination: ICStringTermination = .required) throws(WireError) -> String {
        try ICString.decode(Array(raw(f).prefix(f.capacity(encoding))), as: encoding, termination: termination,
                            fieldName: "\(f)")
    }

    /// Stores `s` in a text member; over-long strings throw unless `overflow` is `.truncate`.
    public mutating func setString(_ s: String, for f: TextField, encoding: ICStringEncoding,
                                   overflow: ICStringOverflow = .reject) throws(WireError) {
        let encoded = try ICString.encode(s, as: encoding, capacity: f.capacity(encoding), overflow: overflow,
                                          field: "\(f)").bytes
        let bytes = fixedField(encoded, f.elementCount * 2)
        switch f {
        case .adapterID: adapterID = bytes
        case .ipAddr: ipAddr = bytes
        case .subNet: subNet = bytes
        case .gateWay: gateWay = bytes
        case .dnsAddr: dnsAddr = bytes
        }
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        adapterID = try r.readBytes(TextField.adapterID.elementCount * 2)
        addrFamily = try r.readUInt8()
        dhcpEnabled = try r.readUInt8()
        ipAddr = try r.readBytes(TextField.ipAddr.elementCount * 2)
        subNet = try r.readBytes(TextField.subNet.elementCount * 2)
        gateWay = try r.readBytes(TextField.gateWay.elementCount * 2)
        dnsAddr = try r.readBytes(TextField.dnsAddr.elementCount * 2)
    }

    public func encode(into w: inout WireWriter) {
        w.writeField(adapterID, TextField.adapterID.elementCount * 2)
        w.writeUInt8(addrFamily)
        w.writeUInt8(dhcpEnabled)
        w.writeField(ipAddr, TextField.ipAddr.elementCount * 2)
        w.writeField(subNet, TextField.subNet.elementCount * 2)
        w.writeField(gateWay, TextField.gateWay.elementCount * 2)
        w.writeField(dnsAddr, TextField.dnsAddr.elementCount * 2)
    }
}
