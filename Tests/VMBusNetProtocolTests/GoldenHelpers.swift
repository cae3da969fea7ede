import Testing
import VMBusLayoutTesting
import VMBusWire

/// Encodes `value` and checks it against the C layout `cName`: `sizeof`, every listed member, zero for the
/// reserved ones, and that no member was left unchecked.
func checkGolden<T: WireEncodable>(_ value: T, _ cName: String, size: Int? = nil, _ fields: KeyValuePairs<String, UInt64>,
                                   zero: [String] = [], ignoring: Set<String> = [],
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
    let bytes = value.wireBytes
    var c = LayoutCheck(try linuxLayout(cName, sourceLocation: sourceLocation), bytes)
    if let size {
        #expect(c.layout.size == size, "\(cName) sizeof", sourceLocation: sourceLocation)
    } else {
        c.size(sourceLocation: sourceLocation)
    }
    for (name, v) in fields { c.value(name, v, sourceLocation: sourceLocation) }
    for name in zero { c.zero(name, sourceLocation: sourceLocation) }
    c.complete(ignoring: ignoring, sourceLocation: sourceLocation)
}

/// Checks members of a union-bearing message (`nvsp_message`, `rndis_message`) at their absolute offsets;
/// the other union members overlay the same bytes, so completeness is not asked.
func checkMessageGolden(_ bytes: [UInt8], _ cName: String, checkSize: Bool = true,
                        _ fields: KeyValuePairs<String, UInt64>,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    var c = LayoutCheck(try linuxLayout(cName, sourceLocation: sourceLocation), bytes)
    if checkSize { c.size(sourceLocation: sourceLocation) }
    for (name, v) in fields { c.value(name, v, sourceLocation: sourceLocation) }
}

/// Every member name of `cName` under `prefix` (to ignore a union member as a whole).
func members(of cName: String, under prefix: String) -> Set<String> {
    guard let l = LinuxLayouts.layout(cName) else { return [] }
    return Set(l.fields.map(\.name).filter { $0 == prefix || $0.hasPrefix(prefix + ".") || $0.hasPrefix(prefix + "[].") })
}

/// Compares two byte arrays without handing big arrays to `#expect` (which is slow to print on failure).
func expectBytes(_ actual: [UInt8], _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "length", sourceLocation: sourceLocation)
    if let i = zip(actual, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
        Issue.record("first difference at byte \(i): \(actual[i]) != \(expected[i])", sourceLocation: sourceLocation)
    }
}
