import Testing
import VMBusLayoutTesting
import VMBusWire

/// An IC layout from the generated fixture, failing the test if it is missing.
func icLayout(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> LinuxLayout {
    try #require(ICLinuxLayouts.layout(name), "\(name) missing from ICLinuxReference.swift",
                 sourceLocation: sourceLocation)
}

/// A constant of the IC section of constants.txt, optionally from one source file (some names repeat).
func icConstant(_ name: String, in source: String? = nil,
                sourceLocation: SourceLocation = #_sourceLocation) throws -> UInt64 {
    let matches = ICLinuxConstants.all.filter { $0.name == name && (source == nil || $0.source == source) }
    let c = try #require(matches.first, "\(name) missing from the fixture", sourceLocation: sourceLocation)
    #expect(Set(matches.map(\.value)).count == 1, "\(name) has several values; name the source",
            sourceLocation: sourceLocation)
    return c.value
}

/// `count` bytes that differ from their neighbours and, with another `seed`, from another field's.
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) | 1 }
}

func encoded(_ value: some WireEncodable) -> [UInt8] { value.wireBytes }
