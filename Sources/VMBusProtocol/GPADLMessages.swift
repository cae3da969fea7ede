import VMBusWire

/// Why a GPADL could not be built or assembled. The host answers with a failed GPADL_CREATED.
public enum GPADLError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `rangecount` is 0, or no range was given to split.
    case noRanges
    /// `range_buflen` is not a whole number of 8-byte words.
    case rangeBufferLengthNotMultipleOf8(Int)
    /// `range_buflen` cannot hold `rangecount` ranges of at least 16 bytes each.
    case rangeBufferTooSmall(length: Int, rangeCount: Int)
    /// The range stream or range count does not fit the 16-bit header fields.
    case tooLarge(rangeBufferLength: Int, rangeCount: Int)
    /// A GPADL_BODY arrived after the stream was complete.
    case alreadyComplete(gpadl: UInt32)
    /// A GPADL_BODY for another handle was offered to this assembler.
    case gpadlMismatch(expected: UInt32, actual: UInt32)
    /// ``GPADLAssembler/ranges()`` before the last body arrived.
    case incomplete(received: Int, expected: Int)
    /// The completed stream does not decode as `rangecount` valid ranges.
    case invalidRange(WireError)

    public var description: String {
        switch self {
        case .noRanges: return "GPADL without ranges"
        case .rangeBufferLengthNotMultipleOf8(let length): return "GPADL range_buflen \(length) is not a multiple of 8"
        case .rangeBufferTooSmall(let length, let count):
            return "GPADL range_buflen \(length) cannot hold \(count) ranges"
        case .tooLarge(let length, let count):
            return "GPADL range stream of \(length) bytes in \(count) ranges exceeds the 16-bit header fields"
        case .alreadyComplete(let gpadl): return "GPADL_BODY for complete GPADL 0x\(String(gpadl, radix: 16))"
        case .gpadlMismatch(let expected, let actual):
            return "GPADL_BODY for GPADL 0x\(String(actual, radix: 16)) given to GPADL 0x\(String(expected, radix: 16))"
        case .incomplete(let received, let expected):
            return "GPADL incomplete: \(received) of \(expected) range bytes received"
        case .invalidRange(let error): return "GPADL range stream invalid: \(error)"
        }
    }
}

/// Splitting a GPA range stream into GPADL_HEADER + GPADL_BODY messages (guest side).
public enum GPADLMessages {
    /// Range-stream bytes that fit in a GPADL_HEADER in whole 8-byte words: 27 words, i.e. one range header and
    /// 26 PFNs, as Linux's `create_gpadl_header` packs it.
    public static let headerCapacity = GPADLHeader.maximumRangeDataLength / 8 * 8
    /// Range-stream bytes that fit in a GPADL_BODY: 28 PFNs.
    public static let bodyCapacity = GPADLBody.maximumDataLength / 8 * 8
    /// The first handle Linux allocates (`next_gpadl_handle` starts at 0xE1E10 and increments).
    public static let linuxFirstHandle: UInt32 = 0xE1E10

    /// Checks that `ranges` can be sent as one GPADL: at least one range, every range valid, and the stream
    /// length and range count within the 16-bit `range_buflen` and `rangecount`.
    public static func validateForSplit(ranges: [GPARange]) throws(GPADLError) {
        guard !ranges.isEmpty else { throw .noRanges }
        for range in ranges {
            do { try range.validate() } catch { throw .invalidRange(error) }
        }
        let length = GPARange.encodedLength(of: ranges)
        guard length <= Int(UInt16.max), ranges.count <= Int(UInt16.max) else {
            throw .tooLarge(rangeBufferLength: length, rangeCount: ranges.count)
        }
    }

    /// Splits `ranges` into one GPADL_HEADER and as many GPADL_BODY messages as needed, in sending order.
    ///
    /// Matches Linux for its single whole-buffer range: the header carries the range header and up to 26 PFNs,
    /// each body up to 28 more, and `msgnumber` stays 0. Several ranges are packed into the same stream.
    /// Sending ranges that fail ``validateForSplit(ranges:)`` is a programming error and traps.
    public static func split(
        childRelID: UInt32, gpadl: UInt32, ranges: [GPARange]
    ) -> (header: GPADLHeader, bodies: [GPADLBody]) {
        do {
            try validateForSplit(ranges: ranges)
        } catch {
            preconditionFailure("GPADLMessages.split: \(error)")
        }
        var writer = WireWriter(capacity: GPARange.encodedLength(of: ranges))
        GPARange.encodeList(ranges, into: &writer)
        let stream = writer.bytes

        let headerEnd = min(stream.count, headerCapacity)
        let header = GPADLHeader(
            childRelID: childRelID, gpadl: gpadl, rangeBufferLength: UInt16(stream.count),
            rangeCount: UInt16(ranges.count), rangeData: Array(stream[0..<headerEnd]))
        var bodies: [GPADLBody] = []
        var start = headerEnd
        while start < stream.count {
            let end = min(stream.count, start + bodyCapacity)
            bodies.append(GPADLBody(messageNumber: 0, gpadl: gpadl, data: Array(stream[start..<end])))
            start = end
        }
        return (header, bodies)
    }
}

/// Collects a GPADL's range stream from its GPADL_HEADER and GPADL_BODY messages (host side).
///
/// Never holds more than `range_buflen` bytes (≤ 65535). A message may carry more bytes than the stream still
/// needs (UEFI always sends maximum-length bodies): only whole 8-byte words up to the remaining length are
/// used, the rest is ignored, as OpenVMM does. Words left over after the last range are ignored too.
public struct GPADLAssembler: Equatable, Sendable {
    public let childRelID: UInt32
    public let gpadl: UInt32
    /// `rangecount` from the header.
    public let rangeCount: Int
    /// `range_buflen` from the header.
    public let rangeBufferLength: Int
    private var stream: [UInt8]

    /// Starts assembling from a header; throws if its counts cannot describe a valid stream.
    public init(header: GPADLHeader) throws(GPADLError) {
        let length = Int(header.rangeBufferLength)
        let count = Int(header.rangeCount)
        guard count != 0 else { throw .noRanges }
        guard length % 8 == 0 else { throw .rangeBufferLengthNotMultipleOf8(length) }
        guard length >= count * GPARange.minimumEncodedLength else {
            throw .rangeBufferTooSmall(length: length, rangeCount: count)
        }
        childRelID = header.childRelID
        gpadl = header.gpadl
        rangeCount = count
        rangeBufferLength = length
        stream = []
        stream.reserveCapacity(length)
        append(header.rangeData)
    }

    /// Bytes of the stream received so far.
    public var receivedLength: Int { stream.count }
    /// Bytes still expected.
    public var remainingLength: Int { rangeBufferLength - stream.count }
    /// Whether the whole stream has arrived (then the host answers GPADL_CREATED).
    public var isComplete: Bool { stream.count == rangeBufferLength }

    /// Adds the next GPADL_BODY; returns whether the stream is now complete.
    @discardableResult
    public mutating func add(body: GPADLBody) throws(GPADLError) -> Bool {
        guard body.gpadl == gpadl else { throw .gpadlMismatch(expected: gpadl, actual: body.gpadl) }
        guard !isComplete else { throw .alreadyComplete(gpadl: gpadl) }
        append(body.data)
        return isComplete
    }

    private mutating func append(_ data: [UInt8]) {
        let useful = min(data.count / 8 * 8, remainingLength)
        stream.append(contentsOf: data[0..<useful])
    }

    /// Decodes the completed stream into `rangecount` validated ranges.
    public func ranges() throws(GPADLError) -> [GPARange] {
        guard isComplete else { throw .incomplete(received: stream.count, expected: rangeBufferLength) }
        var reader = WireReader(stream)
        do {
            return try GPARange.decodeList(count: rangeCount, from: &reader, countField: "vmbus_channel_gpadl_header.rangecount")
        } catch {
            throw .invalidRange(error)
        }
    }
}
