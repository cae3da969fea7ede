import VMBusTransport

/// Polls `condition` every `intervalNanoseconds` until it holds or `seconds` pass; returns whether it held.
public func eventually(_ seconds: Double = 10, intervalNanoseconds: UInt64 = 5_000_000, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanoseconds() > deadline { return false }
        sleepNanoseconds(intervalNanoseconds)
    }
    return true
}
