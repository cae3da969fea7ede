/// Why a wire value could not be decoded. Errors carry numbers; `description` adds the prose.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before `needed` bytes at `offset` could be read (`available` were left).
    case truncated(offset: Int, needed: Int, available: Int)
    /// A field held a value the protocol does not allow.
    case invalidValue(field: String, value: UInt64)
    /// A count from the peer exceeds what the message can hold or what the protocol allows.
    case countTooLarge(field: String, count: Int, limit: Int)

    public var description: String {
        switch self {
        case .truncated(let offset, let needed, let available):
            return "truncated: needed \(needed) bytes at offset \(offset), \(available) available"
        case .invalidValue(let field, let value):
            return "invalid value \(value) (0x\(String(value, radix: 16))) in field \(field)"
        case .countTooLarge(let field, let count, let limit):
            return "count \(count) in field \(field) exceeds the limit \(limit)"
        }
    }
}
