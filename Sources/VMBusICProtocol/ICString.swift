import VMBusWire

/// How a string sits in a fixed-size IC field.
///
/// On VMBus, KVP keys and values, IP settings and file-copy names are UTF-16LE. Through the character
/// devices Linux hands them to its daemons as UTF-8 in the same fields (hv_kvp.c and hv_fcopy.c convert).
public enum ICStringEncoding: Sendable, Hashable {
    case utf16LE
    case utf8

    /// Bytes of the terminating NUL.
    public var terminatorSize: Int { self == .utf16LE ? 2 : 1 }
}

/// What to do with a string longer than its field.
public enum ICStringOverflow: Sendable, Hashable {
    /// Throw ``WireError/countTooLarge(field:count:limit:)``.
    case reject
    /// Keep the longest prefix of whole characters that fits with its NUL.
    case truncate
}

/// Whether a string read from a peer must end in a NUL inside its bytes.
public enum ICStringTermination: Sendable, Hashable {
    /// Unterminated, odd-sized or badly encoded strings throw. What a careful peer should use.
    case required
    /// Linux 6.12's leniency: the end of the bytes ends the string, bad sequences become U+FFFD.
    case tolerated
}

/// Encoding and decoding of NUL-terminated strings in fixed-size fields.
public enum ICString {
    /// `s` as `encoding` with its NUL, zero-padded to `capacity` bytes, and the size a `*_size` field
    /// reports (bytes including the NUL).
    public static func encode(_ s: String, as encoding: ICStringEncoding, capacity: Int,
                              overflow: ICStringOverflow = .reject,
                              field: String = "string") throws(WireError) -> (bytes: [UInt8], size: Int) {
        var out: [UInt8] = []
        let limit = max(0, capacity - encoding.terminatorSize)
        for scalar in s.unicodeScalars {
            let piece = bytes(of: scalar, encoding)
            if out.count + piece.count > limit {
                if overflow == .reject {
                    throw .countTooLarge(field: field, count: encodedCount(s, encoding) + encoding.terminatorSize,
                                         limit: capacity)
                }
                break
            }
            out.append(contentsOf: piece)
        }
        let size = min(capacity, out.count + encoding.terminatorSize)
        out.append(contentsOf: repeatElement(0, count: max(0, capacity - out.count)))
        return (out, size)
    }

    /// The string in `field`: its first `size` bytes (all of them when `size` is `nil`), up to the first NUL.
    ///
    /// A `size` past the field is ``WireError/countTooLarge(field:count:limit:)`` whatever `termination` says:
    /// Linux 6.12 would read past the field. With ``ICStringTermination/required`` (the default) the string
    /// must also be well formed: a NUL within the bytes (an empty `size` 0 is the empty string), an even
    /// `size` for UTF-16, valid UTF-16 or UTF-8; each failure is ``WireError/invalidValue(field:value:)``
    /// naming `fieldName`. ``ICStringTermination/tolerated`` reads as Linux's `utf16s_to_utf8s` does: the
    /// field or `size` ends an unterminated string, an odd byte is dropped, bad sequences become U+FFFD.
    public static func decode(_ field: [UInt8], size: Int? = nil, as encoding: ICStringEncoding,
                              termination: ICStringTermination = .required,
                              fieldName: String = "string") throws(WireError) -> String {
        let n = size ?? field.count
        guard n >= 0, n <= field.count else {
            throw .countTooLarge(field: fieldName, count: n, limit: field.count)
        }
        let strict = termination == .required
        switch encoding {
        case .utf8:
            let bytes = field.prefix(n)
            let nul = bytes.firstIndex(of: 0)
            if strict && nul == nil && n > 0 { throw .invalidValue(field: fieldName + " (no NUL)", value: UInt64(n)) }
            let text = bytes[..<(nul ?? bytes.endIndex)]
            if strict {
                guard let s = String(validating: text, as: UTF8.self) else {
                    throw .invalidValue(field: fieldName + " (bad UTF-8)", value: UInt64(text.count))
                }
                return s
            }
            return String(decoding: text, as: UTF8.self)
        case .utf16LE:
            if strict && n % 2 != 0 { throw .invalidValue(field: fieldName + " (odd UTF-16 size)", value: UInt64(n)) }
            var units: [UInt16] = []
            units.reserveCapacity(n / 2)
            var terminated = false
            var i = 0
            while i + 1 < n {
                let u = UInt16(field[i]) | UInt16(field[i + 1]) << 8
                if u == 0 { terminated = true; break }
                units.append(u)
                i += 2
            }
            if strict && !terminated && n > 0 {
                throw .invalidValue(field: fieldName + " (no NUL)", value: UInt64(n))
            }
            if strict {
                guard let s = String(validating: units, as: UTF16.self) else {
                    throw .invalidValue(field: fieldName + " (bad UTF-16)", value: UInt64(units.count))
                }
                return s
            }
            return String(decoding: units, as: UTF16.self)
        }
    }

    private static func bytes(of scalar: Unicode.Scalar, _ encoding: ICStringEncoding) -> [UInt8] {
        switch encoding {
        case .utf8:
            return Array(String(scalar).utf8)
        case .utf16LE:
            return String(scalar).utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        }
    }

    private static func encodedCount(_ s: String, _ encoding: ICStringEncoding) -> Int {
        encoding == .utf8 ? s.utf8.count : s.utf16.count * 2
    }
}
