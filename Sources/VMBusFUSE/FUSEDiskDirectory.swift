import VMBusStorVSC
import VMBusTransport

/// The directory a FUSE mount shows: one regular file per guest disk, named as Linux names SCSI disks
/// (`sda`, `sdb`, … in the order the disks appear), sized to the LUN. A name is never reused while the
/// directory lives, so a file that vanished on hot remove cannot come back as another disk.
public final class FUSEDiskDirectory: Sendable {
    private struct State {
        var byName: [String: StorVSCDisk] = [:]
        var named = 0
    }
    private let state = Condition(State())

    public init() {}

    /// Adds `disk` under the next free name; returns the name.
    @discardableResult
    public func add(_ disk: StorVSCDisk) -> String {
        state.withLock { s in
            if let existing = s.byName.first(where: { $0.value === disk })?.key { return existing }
            let name = Self.name(s.named)
            s.named += 1
            s.byName[name] = disk
            return name
        }
    }

    public func remove(_ disk: StorVSCDisk) {
        state.withLock { s in
            for (name, d) in s.byName where d === disk { s.byName[name] = nil }
        }
    }

    public func disk(named name: String) -> StorVSCDisk? {
        state.withLock { s in s.byName[name] }.flatMap { $0.isRemoved ? nil : $0 }
    }

    public var names: [String] {
        state.withLock { s in s.byName.filter { !$0.value.isRemoved }.keys.sorted() }
    }

    /// `sda` … `sdz`, `sdaa` …, as Linux's `sd_format_disk_name`.
    static func name(_ index: Int) -> String {
        var n = index
        var letters: [Character] = []
        repeat {
            letters.insert(Character(UnicodeScalar(UInt8(97 + n % 26))), at: 0)
            n = n / 26 - 1
        } while n >= 0
        return "sd" + String(letters)
    }
}
