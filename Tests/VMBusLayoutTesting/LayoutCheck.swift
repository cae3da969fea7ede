import Testing
import VMBusWire

/// Checks encoded bytes field by field against a C layout from the fixture and remembers which fields were
/// looked at, so a test can demand that every member of the C struct was accounted for.
public struct LayoutCheck {
    public let layout: LinuxLayout
    public let bytes: [UInt8]
    public private(set) var checked: Set<String> = []

    public init(_ layout: LinuxLayout, _ bytes: [UInt8]) {
        self.layout = layout
        self.bytes = bytes
    }

    private func field(_ name: String, _ location: SourceLocation) -> LinuxField? {
        guard let f = layout.field(name) else {
            Issue.record("\(layout.name) has no member \(name)", sourceLocation: location)
            return nil
        }
        return f
    }

    private func raw(_ f: LinuxField, count: Int, _ location: SourceLocation) -> [UInt8]? {
        guard f.offset >= 0, f.offset + count <= bytes.count else {
            Issue.record("\(layout.name).\(f.name) at \(f.offset)+\(count) lies beyond the \(bytes.count) encoded bytes",
                         sourceLocation: location)
            return nil
        }
        return Array(bytes[f.offset..<(f.offset + count)])
    }

    /// The integer (or bitfield) at the member's offset equals `expected`.
    public mutating func value(_ name: String, _ expected: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        checked.insert(name)
        guard let f = field(name, sourceLocation) else { return }
        guard f.size <= 8 else {
            Issue.record("\(layout.name).\(name) is \(f.size) bytes, not an integer", sourceLocation: sourceLocation)
            return
        }
        guard let b = raw(f, count: f.size, sourceLocation) else { return }
        var v: UInt64 = 0
        for (i, byte) in b.enumerated() { v |= UInt64(byte) << (8 * UInt64(i)) }
        if let bit = f.bit, let bits = f.bits {
            v >>= UInt64(bit)
            if bits < 64 { v &= (UInt64(1) << UInt64(bits)) - 1 }
        }
        #expect(v == expected, "\(layout.name).\(name) at offset \(f.offset)", sourceLocation: sourceLocation)
    }

    /// The bytes at the member's offset equal `expected` (a flexible array member takes `expected.count`).
    public mutating func bytes(_ name: String, _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        checked.insert(name)
        guard let f = field(name, sourceLocation) else { return }
        if f.size != 0 {
            #expect(f.size == expected.count, "\(layout.name).\(name) is \(f.size) bytes", sourceLocation: sourceLocation)
        }
        guard let b = raw(f, count: expected.count, sourceLocation) else { return }
        #expect(b == expected, "\(layout.name).\(name) at offset \(f.offset)", sourceLocation: sourceLocation)
    }

    public mutating func guid(_ name: String, _ expected: GUID, sourceLocation: SourceLocation = #_sourceLocation) {
        bytes(name, expected.wireBytes, sourceLocation: sourceLocation)
    }

    /// A reserved or padding member is written as zero.
    public mutating func zero(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let f = layout.field(name) else {
            checked.insert(name)
            Issue.record("\(layout.name) has no member \(name)", sourceLocation: sourceLocation)
            return
        }
        if f.bits != nil || f.size <= 8 {
            value(name, 0, sourceLocation: sourceLocation)
        } else {
            bytes(name, [UInt8](repeating: 0, count: f.size), sourceLocation: sourceLocation)
        }
    }

    /// `bytes.count == sizeof`.
    public func size(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(bytes.count == layout.size, "encoded \(layout.name) length", sourceLocation: sourceLocation)
    }

    /// Every innermost member of the layout was checked (directly or through an enclosing member).
    public func complete(ignoring: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) {
        let covered = checked.union(ignoring)
        for leaf in layout.leafFields where !Self.ancestors(of: leaf.name).contains(where: covered.contains) {
            Issue.record("\(layout.name).\(leaf.name) (offset \(leaf.offset), \(leaf.size) bytes) is not checked",
                         sourceLocation: sourceLocation)
        }
    }

    /// "a.b[].c" → ["a", "a.b", "a.b[].c"] plus the "[]"-less spellings.
    public static func ancestors(of name: String) -> [String] {
        let parts = name.split(separator: ".").map(String.init)
        var out: [String] = []
        for i in 1...parts.count {
            let path = parts[0..<i].joined(separator: ".")
            out.append(path)
            if path.hasSuffix("[]") { out.append(String(path.dropLast(2))) }
        }
        return out
    }
}

/// Little-endian bytes of an integer.
public func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
}

/// A fixture layout, failing the test if it is missing.
public func linuxLayout(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> LinuxLayout {
    try #require(LinuxLayouts.layout(name), "\(name) missing from LinuxLayouts.swift", sourceLocation: sourceLocation)
}
