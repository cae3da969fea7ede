import ArgumentParser

/// `--disk PATH[,format=raw|vhdx|vhd][,size=N][,ide][,ro]`
struct DiskSpec: ExpressibleByArgument, Equatable {
    enum Format: String { case raw, vhdx, vhd }
    var path: String
    var format: Format?
    var size: UInt64?
    var ide = false
    var readOnly = false

    init?(argument: String) {
        var parts = argument.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let p = parts.first, !p.isEmpty else { return nil }
        path = p
        parts.removeFirst()
        for option in parts {
            // `split` drops empty pieces, so "a,,ro" yields an option with no key at all.
            let kv = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let key = kv.first, !key.isEmpty else { return nil }
            switch (key, kv.count == 2 ? kv[1] : nil) {
            case ("format", let v?): guard let f = Format(rawValue: v) else { return nil }; format = f
            case ("size", let v?): guard let s = DiskSpec.parseSize(v) else { return nil }; size = s
            case ("ide", nil): ide = true
            case ("ro", nil): readOnly = true
            default: return nil
            }
        }
    }

    /// `N`, `NK`, `NM`, `NG`, `NT` (binary units).
    static func parseSize(_ s: String) -> UInt64? {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        if let last = s.last, let m = units[Character(last.uppercased())] {
            return UInt64(s.dropLast()).flatMap { $0.multipliedReportingOverflow(by: m).overflow ? nil : $0 * m }
        }
        return UInt64(s)
    }

    static var defaultValueDescription: String { "PATH[,format=raw|vhdx|vhd][,size=N][,ide][,ro]" }
}

/// `--nic switch[:NAME]|tap:NAME[,mac=…][,mtu=N]`
struct NICSpec: ExpressibleByArgument, Equatable {
    enum Backend: Equatable { case internalSwitch(String), tap(String) }
    var backend: Backend
    var mac: [UInt8]?
    /// The largest MTU the NIC offers the guest (RNDIS frame size): 1500 unless `mtu=` (68...9000) says more.
    var mtu = 1500

    init?(argument: String) {
        var parts = argument.split(separator: ",").map(String.init)
        guard let first = parts.first else { return nil }
        parts.removeFirst()
        if first == "switch" {
            backend = .internalSwitch("default")
        } else if first.hasPrefix("switch:"), first.count > 7 {
            backend = .internalSwitch(String(first.dropFirst(7)))
        } else if first.hasPrefix("tap:"), first.count > 4, first.count <= 4 + 15 {
            backend = .tap(String(first.dropFirst(4)))
        } else {
            return nil
        }
        for option in parts {
            if option.hasPrefix("mtu=") {
                guard let m = Int(option.dropFirst(4)), m >= 68, m <= 9000 else { return nil }
                mtu = m
                continue
            }
            guard option.hasPrefix("mac=") else { return nil }
            let bytes = option.dropFirst(4).split(separator: ":").compactMap { UInt8($0, radix: 16) }
            guard bytes.count == 6 else { return nil }
            mac = bytes
        }
    }
}

extension NICSpec {
    /// `switch:NAME` or `tap:NAME`, as `--nic` spells it.
    var backendName: String {
        switch backend {
        case .internalSwitch(let name): return "switch:\(name)"
        case .tap(let name): return "tap:\(name)"
        }
    }

    /// The spec as `--nic` takes it, for sending it to a host: `NICSpec(argument: spec.argument) == spec`.
    var argument: String {
        backendName + (mac.map { ",mac=" + macString($0) } ?? "") + (mtu == 1500 ? "" : ",mtu=\(mtu)")
    }
}

/// `--ic heartbeat|shutdown|timesync|kvp|vss|fcopy`
struct ICSpec: ExpressibleByArgument, Equatable {
    enum Service: String, CaseIterable { case heartbeat, shutdown, timesync, kvp, vss, fcopy }
    var service: Service
    init?(argument: String) {
        guard let s = Service(rawValue: argument) else { return nil }
        service = s
    }
}

/// The device flags every command that builds a host accepts.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Add a synthetic disk (StorVSP).", valueName: "PATH[,format=raw|vhdx|vhd][,size=N][,ide][,ro]"))
    var disk: [DiskSpec] = []

    @Option(name: .long, help: ArgumentHelp("Add a synthetic NIC (NetVSP) on an internal switch or a TAP device.", valueName: "switch[:NAME]|tap:NAME[,mac=xx:xx:xx:xx:xx:xx][,mtu=N]"))
    var nic: [NICSpec] = []

    @Option(name: .long, help: ArgumentHelp("Offer only these integration services (repeatable; all six by default).", valueName: ICSpec.Service.allCases.map(\.rawValue).joined(separator: "|")))
    var ic: [ICSpec] = []

    @Flag(name: .long, help: "Offer no integration services at all.")
    var noIc = false

    @Option(name: .long, help: "Report a guest unresponsive when no heartbeat answer came for this many seconds.")
    var heartbeatTimeout: Double = 5

    @Option(name: .long, help: "Number of echo test devices (swift-vmbus's own test device class).")
    var echo: Int = 1

    func validate() throws {
        guard echo >= 0 && echo <= 64 else { throw ValidationError("--echo must be 0...64") }
        for d in disk where d.readOnly && d.size != nil {
            throw ValidationError("--disk \(d.path): a read-only disk is not created; drop size= or ro")
        }
        guard disk.filter({ !$0.ide }).count <= 64 else { throw ValidationError("--disk: at most 64 SCSI disks (LUNs 0...63)") }
        guard disk.filter(\.ide).count <= 4 else { throw ValidationError("--disk: at most 4 IDE disks") }
        guard nic.count <= 64 else { throw ValidationError("--nic: at most 64 NICs") }
        let taps = nic.compactMap { n -> String? in if case .tap(let name) = n.backend { return name } else { return nil } }
        guard Set(taps).count == taps.count else { throw ValidationError("--nic: a TAP serves one NIC; each tap:NAME once") }
        if noIc && !ic.isEmpty { throw ValidationError("--no-ic and --ic exclude each other") }
        guard heartbeatTimeout >= 0.1 && heartbeatTimeout <= 3600 else { throw ValidationError("--heartbeat-timeout must be 0.1...3600 s") }
    }
}
