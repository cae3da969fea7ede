/// The switch's forwarding table: which port each source MAC was last seen on, forgotten after the aging
/// time. Capped: a guest sending from ever new source addresses fills it, after which aged entries are swept
/// and, if none are, new addresses are not learned (their frames are flooded, as with an unknown address).
struct MACTable {
    struct Entry {
        var port: Int
        var lastSeen: UInt64
    }
    let agingNanoseconds: UInt64
    let capacity: Int
    private(set) var entries: [UInt64: Entry] = [:]

    init(agingNanoseconds: UInt64, capacity: Int) {
        self.agingNanoseconds = agingNanoseconds
        self.capacity = capacity
    }

    /// The six bytes at `at` as a key; bit 0 of the first byte (group addresses) is bit 40.
    static func key(_ frame: UnsafeRawBufferPointer, at: Int) -> UInt64 {
        var k: UInt64 = 0
        for i in 0..<6 { k = k << 8 | UInt64(frame[at + i]) }
        return k
    }

    static func isGroup(_ key: UInt64) -> Bool { key & (1 << 40) != 0 }

    mutating func learn(_ mac: UInt64, port: Int, now: UInt64) {
        guard !Self.isGroup(mac) else { return }
        if entries[mac] != nil {
            entries[mac] = Entry(port: port, lastSeen: now)
            return
        }
        if entries.count >= capacity { sweep(now: now) }
        guard entries.count < capacity else { return }
        entries[mac] = Entry(port: port, lastSeen: now)
    }

    /// The port `mac` was last seen on, unless that is longer ago than the aging time.
    mutating func lookup(_ mac: UInt64, now: UInt64) -> Int? {
        guard let e = entries[mac] else { return nil }
        guard now &- e.lastSeen <= agingNanoseconds else {
            entries[mac] = nil
            return nil
        }
        return e.port
    }

    mutating func forget(port: Int) {
        entries = entries.filter { $0.value.port != port }
    }

    mutating func sweep(now: UInt64) {
        entries = entries.filter { now &- $0.value.lastSeen <= agingNanoseconds }
    }
}
