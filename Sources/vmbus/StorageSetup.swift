import Logging
import VMBusDiskBackend
import VMBusFUSE
import VMBusGuest
import VMBusHost
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// The host's disks from `--disk` flags: backends opened (and created) once at start-up, so a bad path fails
/// the command before any guest connects. Each partition gets its own StorVSPs over these disks.
struct HostDisks: Sendable {
    struct Disk: Sendable {
        let spec: DiskSpec
        let scsi: SCSIDisk
        let backend: any BlockBackend
    }
    let disks: [Disk]

    /// The SCSI controller's instance id (LUN n is the n-th SCSI disk).
    static let scsiInstance = GUID(data1: 0xBA61_63D9, data2: 0x04A1, data3: 0x4D29, data4: (0xB6, 0x05, 0x72, 0xE2, 0xFF, 0xB1, 0xDC, 0x01))

    init(_ specs: [DiskSpec]) throws {
        var disks: [Disk] = []
        for (i, spec) in specs.enumerated() {
            if let f = spec.format, f != .raw {
                throw CommandError("--disk \(spec.path): the \(f.rawValue) image format is not built yet (raw files only)")
            }
            let backend: RawFileBackend
            do { backend = try RawFileBackend(path: spec.path, createSize: spec.size, readOnly: spec.readOnly) }
            catch { throw CommandError("--disk \(spec.path): \(error)") }
            let name = spec.path.split(separator: "/").last.map(String.init) ?? "disk"
            let scsi = SCSIDisk(backend: backend, serialNumber: "\(i)-\(name.prefix(24))", identifier: UInt64(i + 1))
            disks.append(Disk(spec: spec, scsi: scsi, backend: backend))
        }
        self.disks = disks
    }

    /// One SCSI controller with every non-IDE disk (LUN 0, 1, …), and one IDE controller per IDE disk.
    func providers() -> [StorVSP] {
        var out: [StorVSP] = []
        let scsi = disks.filter { !$0.spec.ide }
        if !scsi.isEmpty {
            let vsp = StorVSP(kind: .scsi, instanceID: Self.scsiInstance, maxSubchannels: 4)
            for (lun, d) in scsi.enumerated() { vsp.luns.attach(d.scsi, at: lun) }
            out.append(vsp)
        }
        for (i, d) in disks.filter(\.spec.ide).enumerated() {
            let vsp = StorVSP(kind: .ide, instanceID: IDELocation.instanceID(channel: UInt32(i / 2), device: UInt16(i % 2)))
            vsp.luns.attach(d.scsi, at: 0)
            out.append(vsp)
        }
        return out
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
            for d in controller.disks { directory.add(d) }
            controller.observe { added, removed in
                for d in removed { directory.remove(d) }
                for d in added { directory.add(d) }
            }
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
    func backendListing(_ host: HostDisks) -> String {
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
