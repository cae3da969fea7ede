import Logging
import VMBusControl
import VMBusDiskBackend
import VMBusFUSE
import VMBusNBD
import VMBusGuest
import VMBusHost
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport
import VMBusWire
#if canImport(Glibc)
import Glibc
#endif

/// The host's disks: the `--disk` flags at start-up, then whatever `vmbus disk attach|detach` changes through
/// the control socket. Backends are opened (and created) here once, so a bad path fails the command before any
/// guest connects; each partition gets its own StorVSPs over these disks, and hot changes reach the SCSI
/// controller of every live partition (and of partitions that connect later).
final class HostDiskSet: @unchecked Sendable {
    struct Disk: Sendable {
        let spec: DiskSpec
        let scsi: SCSIDisk
        let backend: any BlockBackend
        /// The LUN on the SCSI controller; nil for an IDE disk (LUN 0 of its own controller).
        let lun: Int?
    }
    private struct State {
        var disks: [Disk] = []
        var next = 0
        /// The SCSI controllers of live partitions.
        var controllers: [ObjectIdentifier: StorVSP] = [:]
    }
    private let state = Condition(State())

    /// The SCSI controller's instance id.
    static let scsiInstance = GUID(data1: 0xBA61_63D9, data2: 0x04A1, data3: 0x4D29, data4: (0xB6, 0x05, 0x72, 0xE2, 0xFF, 0xB1, 0xDC, 0x01))

    init(_ specs: [DiskSpec]) throws {
        var scsiLUN = 0
        for spec in specs {
            let d = try open(spec, lun: spec.ide ? nil : scsiLUN)
            if !spec.ide { scsiLUN += 1 }
            state.withLock { $0.disks.append(d) }
        }
    }

    private func open(_ spec: DiskSpec, lun: Int?) throws -> Disk {
        let backend: any BlockBackend
        do { backend = try Self.backend(for: spec) }
        catch let e as CommandError { throw e }
        catch { throw CommandError("--disk \(spec.path): \(error)") }
        let index = state.withLock { s -> Int in defer { s.next += 1 }; return s.next }
        let name = spec.path.split(separator: "/").last.map(String.init) ?? "disk"
        let scsi = SCSIDisk(backend: backend, serialNumber: "\(index)-\(name.prefix(24))", identifier: UInt64(index + 1))
        return Disk(spec: spec, scsi: scsi, backend: backend, lun: lun)
    }

    /// The backend `spec` names: an NBD export, or an image file (created when missing and a size is given) in
    /// the format named, or else the one its content or name shows.
    private static func backend(for spec: DiskSpec) throws -> any BlockBackend {
        if let uri = NBDBackend.uri(forDiskPath: spec.path) { return try NBDBackend(uri: uri, readOnly: spec.readOnly) }
        guard !spec.path.hasPrefix("nbd:") else {
            throw CommandError("--disk \(spec.path): an NBD disk is nbd:unix:PATH[:EXPORT] or nbd://HOST[:PORT]/EXPORT")
        }
        let exists = access(spec.path, F_OK) == 0
        let format: DiskImageFormat
        switch spec.format {
        case .raw?: format = .raw
        case .vhd?: format = .vhd
        case .vhdx?: format = .vhdx
        case nil:
            format = (exists ? DiskImageFormat.detect(path: spec.path) : nil)
                ?? (spec.path.hasSuffix(".vhdx") ? .vhdx : spec.path.hasSuffix(".vhd") ? .vhd : .raw)
        }
        if !exists, let size = spec.size {
            switch format {
            case .raw: return try RawFileBackend(path: spec.path, createSize: size, readOnly: spec.readOnly)
            case .vhd: try VHDBackend.create(path: spec.path, size: size, type: .dynamic)
            case .vhdx: try VHDXBackend.create(path: spec.path, size: size, type: .dynamic)
            }
        }
        return try format.open(path: spec.path, readOnly: spec.readOnly)
    }

    var disks: [Disk] { state.withLock { $0.disks } }

    /// A partition's storage: one SCSI controller with every SCSI disk at its LUN, one IDE controller per IDE
    /// disk. Give them back with ``release(_:)`` when the partition ends.
    func providers() -> [StorVSP] {
        state.withLock { s in
            var out: [StorVSP] = []
            let scsi = s.disks.filter { $0.lun != nil }
            if !scsi.isEmpty {
                let vsp = StorVSP(kind: .scsi, instanceID: Self.scsiInstance, maxSubchannels: 4)
                for d in scsi { if let lun = d.lun { vsp.luns.attach(d.scsi, at: lun) } }
                s.controllers[ObjectIdentifier(vsp)] = vsp
                out.append(vsp)
            }
            for (i, d) in s.disks.filter({ $0.lun == nil }).enumerated() {
                let vsp = StorVSP(kind: .ide, instanceID: IDELocation.instanceID(channel: UInt32(i / 2), device: UInt16(i % 2)))
                vsp.luns.attach(d.scsi, at: 0)
                out.append(vsp)
            }
            return out
        }
    }

    func release(_ providers: [StorVSP]) {
        state.withLock { s in for p in providers { s.controllers[ObjectIdentifier(p)] = nil } }
    }

    /// Every disk left clean (flushed; a VHDX's log closed), once the partitions are gone: a host that stops
    /// leaves images other tools open without a repair. Returns what failed.
    func close() -> [String] {
        disks.compactMap { d in
            do { try d.backend.closeCleanly(); return nil } catch { return "\(d.spec.path): \(error)" }
        }
    }

    // MARK: Control commands

    /// `disk list`, `disk attach SPEC`, `disk detach LUN`.
    func handle(_ words: [String]) -> ControlResponse {
        switch words.dropFirst().first {
        case "list" where words.count == 2:
            return .success(listing)
        case "attach" where words.count == 3:
            guard let spec = DiskSpec(argument: words[2]) else { return .failure("malformed disk: \(words[2])") }
            return attach(spec)
        case "detach" where words.count == 3:
            guard let lun = Int(words[2]), lun >= 0, lun < 64 else { return .failure("not a LUN: \(words[2])") }
            return detach(lun: lun)
        default:
            return .failure("unknown command '\(words.joined(separator: " "))' (disk list | disk attach SPEC | disk detach LUN)")
        }
    }

    func attach(_ spec: DiskSpec) -> ControlResponse {
        guard !spec.ide else { return .failure("IDE disks cannot be hot-added (as on Hyper-V); attach it on the SCSI controller") }
        let lun: Int? = state.withLock { s in
            let used = Set(s.disks.compactMap(\.lun))
            return (0..<64).first { !used.contains($0) }
        }
        guard let lun else { return .failure("the SCSI controller has no free LUN") }
        let disk: Disk
        do { disk = try open(spec, lun: lun) } catch { return .failure("\(error)") }
        let controllers: [StorVSP] = state.withLock { s in
            s.disks.append(disk)
            return Array(s.controllers.values)
        }
        for c in controllers { c.attach(disk.scsi, at: lun) }
        let note = controllers.isEmpty ? " (no partition has a SCSI controller: start the host with a --disk for hot add)" : ""
        return .success("attached \(spec.path) as LUN \(lun), \(formatBytes(disk.backend.info.capacity))\(note)\n")
    }

    func detach(lun: Int) -> ControlResponse {
        let (removed, controllers): (Disk?, [StorVSP]) = state.withLock { s in
            guard let i = s.disks.firstIndex(where: { $0.lun == lun }) else { return (nil, []) }
            return (s.disks.remove(at: i), Array(s.controllers.values))
        }
        guard let removed else { return .failure("no disk at LUN \(lun)") }
        for c in controllers { c.detach(lun: lun) }
        return .success("detached LUN \(lun) (\(removed.spec.path))\n")
    }

    /// One line per disk: controller, LUN, capacity, access and backend.
    var listing: String {
        disks.map { d in
            let place = d.lun.map { "scsi LUN \($0)" } ?? "ide"
            let info = d.backend.info
            return "\(place)\t\(formatBytes(info.capacity))\t\(info.isReadOnly ? "ro" : "rw")\t\(info.description)\n"
        }.joined()
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The guest's storage: the StorVSC driver, and with `--fuse DIR` every disk as a file there.
final class GuestStorage: @unchecked Sendable {
    let driver: StorVSCDriver
    let directory = FUSEDiskDirectory()
    private(set) var mount: FUSEMount?

    init(logger: Logger) {
        let directory = self.directory
        driver = StorVSCDriver(logger: logger) { controller in
            // Observe first: a rescan between the two steps is then seen twice (adding is idempotent), not lost.
            controller.observe { added, removed in
                for d in removed { directory.remove(d) }
                for d in added { directory.add(d) }
            }
            for d in controller.disks { directory.add(d) }
        }
    }

    func mount(at path: String) throws {
        mount = try FUSEMount(directory: directory, at: path)
    }

    /// One line per disk: name, LUN, capacity and controller.
    var listing: String {
        var lines: [String] = []
        for name in directory.names {
            guard let d = directory.disk(named: name), let c = d.controller else { continue }
            lines.append("  \(name): \(c.kind) LUN \(d.lun), \(formatBytes(d.capacityBytes)), \(d.identity.vendor) \(d.identity.product)\(d.isReadOnly ? ", read-only" : "")")
        }
        return lines.isEmpty ? "" : "disks:\n" + lines.joined(separator: "\n") + "\n"
    }

    /// ``listing`` with each disk's backend, for a host in this process.
    func backendListing(_ host: HostDiskSet) -> String {
        var lines: [String] = []
        for c in driver.controllers {
            for d in c.disks {
                let backend = host.disks.first { $0.scsi.serialNumber == d.identity.serialNumber }?.backend.info.description ?? "?"
                lines.append("  \(c.kind) LUN \(d.lun): \(formatBytes(d.capacityBytes))\(d.isReadOnly ? ", read-only" : ""), \(backend)")
            }
        }
        return lines.isEmpty ? "" : "disks:\n" + lines.joined(separator: "\n") + "\n"
    }

    func stop() {
        mount?.stop()
        mount = nil
    }

    /// Requests and bytes moved so far over every controller.
    var counters: (requests: UInt64, bytes: UInt64) {
        driver.controllers.reduce((0, 0)) { acc, c in
            (acc.0 + c.requestsSent.load(ordering: .relaxed),
             acc.1 + c.bytesRead.load(ordering: .relaxed) + c.bytesWritten.load(ordering: .relaxed))
        }
    }
}

func formatBytes(_ v: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var x = Double(v), i = 0
    while x >= 1024 && i < units.count - 1 { x /= 1024; i += 1 }
    return i == 0 ? "\(v) B" : "\(Double(Int(x * 10)) / 10) \(units[i])"
}
