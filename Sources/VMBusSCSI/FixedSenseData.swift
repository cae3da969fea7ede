/// Fixed-format sense data (SPC, response code 0x70): 18 bytes. A value type encoded byte by byte, so building
/// it on the I/O path allocates nothing.
public struct FixedSenseData: Equatable, Sendable {
    public static let length = 18
    /// Current error, fixed format.
    public static let responseCodeCurrent: UInt8 = 0x70

    public var key: UInt8
    public var additional: AdditionalSense
    /// The INFORMATION field (an LBA), if valid.
    public var information: UInt32?

    public init(key: UInt8, _ additional: AdditionalSense, information: UInt32? = nil) {
        self.key = key
        self.additional = additional
        self.information = information
    }

    /// Byte `i` of the encoded sense (0..<18).
    public func byte(_ i: Int) -> UInt8 {
        switch i {
        case 0: return Self.responseCodeCurrent | (information != nil ? 0x80 : 0)
        case 2: return key & 0x0F
        case 3...6:
            guard let information else { return 0 }
            return UInt8(truncatingIfNeeded: information >> (8 * UInt32(6 - i)))
        case 7: return UInt8(Self.length - 8)  // additional sense length
        case 12: return additional.asc
        case 13: return additional.ascq
        default: return 0
        }
    }

    public var bytes: [UInt8] { (0..<Self.length).map(byte) }

    /// Decodes fixed (0x70/0x71) or descriptor (0x72/0x73) sense; nil if `bytes` is too short or neither.
    public init?(decoding bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        guard b.count >= 4 else { return nil }
        switch b[0] & 0x7F {
        case 0x70, 0x71:
            guard b.count >= 14 else { return nil }
            let info = b[0] & 0x80 != 0 ? UInt32(b[3]) << 24 | UInt32(b[4]) << 16 | UInt32(b[5]) << 8 | UInt32(b[6]) : nil
            self.init(key: b[2] & 0x0F, AdditionalSense(b[12], b[13]), information: info)
        case 0x72, 0x73:
            self.init(key: b[1] & 0x0F, AdditionalSense(b[2], b[3]))
        default:
            return nil
        }
    }
}
