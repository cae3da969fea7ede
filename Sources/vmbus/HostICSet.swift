import VMBusControl
import VMBusICHost
import VMBusICProtocol
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// The integration services of a host's partitions, and the `ic …` commands of its control socket
/// (docs/CONTROL.md). Each partition gets its own six services; commands go to the newest live partition
/// unless `partition N` names one.
final class HostICSet: @unchecked Sendable {
    let configuration: ICHostServices.Configuration
    private let partitions = Condition<[(id: UInt64, services: ICHostServices)]>([])

    init(_ options: DeviceOptions) {
        let services = options.noIc ? [] : options.ic.isEmpty ? ICService.all : options.ic.map(\.service.icService)
        configuration = ICHostServices.Configuration(
            services: services, unresponsiveAfterNanoseconds: UInt64(options.heartbeatTimeout * 1e9))
    }

    /// A new partition's services; give them back with ``release(partition:)``.
    func services(partition: UInt64) -> ICHostServices {
        let s = ICHostServices(configuration: configuration)
        partitions.withLock { $0.append((partition, s)) }
        return s
    }

    func release(partition: UInt64) {
        partitions.withLock { $0.removeAll { $0.id == partition } }
    }

    // MARK: Control commands

    static let usage = "ic [partition N] heartbeat | shutdown [reboot] [force] [reason TEXT] | time [sync] | "
        + "kvp get|set|delete|list POOL [KEY [VALUE]] | vss freeze|thaw | copy SRC DEST [overwrite] [create-path]"

    func handle(_ words: [String]) -> ControlResponse {
        var args = Array(words.dropFirst())
        var partition: UInt64?
        if args.first == "partition" {
            guard args.count >= 2, let n = UInt64(args[1]) else { return .failure("partition: not a number") }
            partition = n
            args.removeFirst(2)
        }
        let found: ICHostServices? = partitions.withLock { p in
            partition.map { n in p.first { $0.id == n }?.services } ?? p.last?.services
        }
        guard let services = found else {
            return .failure(partition.map { "no partition \($0)" } ?? "no guest is connected")
        }
        do {
            switch args.first {
            case "heartbeat" where args.count == 1: return heartbeat(services)
            case "shutdown": return try shutdown(services, Array(args.dropFirst()))
            case "time" where args.count <= 2: return try time(services, sync: args.dropFirst().first == "sync")
            case "kvp": return try kvp(services, Array(args.dropFirst()))
            case "vss" where args.count == 2: return try vss(services, args[1])
            case "copy" where args.count >= 3: return try copy(services, Array(args.dropFirst()))
            default: return .failure("unknown command '\(words.joined(separator: " "))' (\(Self.usage))")
            }
        } catch {
            return .failure("\(error)")
        }
    }

    private func missing(_ name: String) -> ControlResponse { .failure("the \(name) service is not offered (see --ic)") }

    private func heartbeat(_ s: ICHostServices) -> ControlResponse {
        guard let hb = s.heartbeat else { return missing("heartbeat") }
        let st = hb.status
        let age = st.ageNanoseconds.map { "\(Double(Int($0 / 1_000_000)) / 1000) s" } ?? "-"
        let body = "\(st.isAlive ? "alive" : "unresponsive")\nsequence: \(st.lastSequence.map(String.init) ?? "-")\n"
            + "age: \(age)\nservice: \(st.phase)\n"
        return st.isAlive ? .success(body) : .failure(body)
    }

    private func shutdown(_ s: ICHostServices, _ args: [String]) throws(ICHostError) -> ControlResponse {
        guard let sd = s.shutdown else { return missing("shutdown") }
        var flags: ShutdownFlags = []
        var reason = ""
        var i = 0
        while i < args.count {
            switch args[i] {
            case "reboot": flags.insert(.restart)
            case "force": flags.insert(.force)
            case "hibernate": flags.insert(.hibernate)
            case "reason" where i + 1 < args.count: reason = args[i + 1]; i += 1
            default: return .failure("shutdown: unknown word '\(args[i])'")
            }
            i += 1
        }
        let status = try sd.request(flags, reason: reason)
        guard status == .ok else { return .failure("the guest refused: \(status)") }
        return .success("the guest is \(flags.contains(.restart) ? "restarting" : flags.contains(.hibernate) ? "hibernating" : "shutting down")\n")
    }

    private func time(_ s: ICHostServices, sync: Bool) throws(ICHostError) -> ControlResponse {
        guard let ts = s.timeSync else { return missing("time sync") }
        let r = try ts.send(sync: sync)
        guard r.status == .ok else { return .failure("the guest answered \(r.status)") }
        let unix100 = r.hostTime &- TimeSyncLayout.windowsEpochDelta
        let seconds = Double(unix100) / 1e7
        return .success("sent \(sync ? "SYNC" : "SAMPLE") host time \(Self.iso8601(unix100)) (\(seconds) s since 1970, "
            + "\(r.layout == .reference ? "ictimesync_ref_data" : "ictimesync_data")): \(r.status)\n")
    }

    static func iso8601(_ unix100: UInt64) -> String {
        var t = time_t(unix100 / 10_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = (unix100 / 10_000) % 1000
        func p(_ v: Int32, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return "\(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2)).\(p(Int32(ms), 3))Z"
    }

    private func kvp(_ s: ICHostServices, _ args: [String]) throws(ICHostError) -> ControlResponse {
        guard let kvp = s.kvp else { return missing("KVP") }
        guard args.count >= 2, let n = UInt8(args[1]), KVPPool(rawValue: n).isValid else {
            return .failure("kvp: get|set|delete|list POOL [KEY [VALUE]], POOL 0...4")
        }
        let pool = KVPPool(rawValue: n)
        switch (args[0], args.count) {
        case ("get", 3):
            let a = try kvp.get(pool: pool, key: args[2])
            if a.status == .cont { return .failure("no key '\(args[2])' in pool \(n)") }
            return a.status == .ok ? .success(a.value + "\n") : .failure("the guest answered \(a.status)")
        case ("set", 4):
            let a = try kvp.set(pool: pool, key: args[2], value: args[3])
            return a.status == .ok ? .success("") : .failure("the guest answered \(a.status)")
        case ("delete", 3):
            let a = try kvp.delete(pool: pool, key: args[2])
            if a.status == .cont { return .failure("no key '\(args[2])' in pool \(n)") }
            return a.status == .ok ? .success("") : .failure("the guest answered \(a.status)")
        case ("list", 2):
            let l = try kvp.list(pool: pool)
            let body = l.pairs.map { "\($0.key)=\($0.value)\n" }.joined()
            return l.status == .ok ? .success(body) : .failure(body + "the guest answered \(l.status)")
        default:
            return .failure("kvp: get POOL KEY | set POOL KEY VALUE | delete POOL KEY | list POOL")
        }
    }

    private func vss(_ s: ICHostServices, _ what: String) throws(ICHostError) -> ControlResponse {
        guard let vss = s.vss else { return missing("VSS") }
        let a: HostVSS.Answer
        switch what {
        case "freeze": a = try vss.freeze()
        case "thaw": a = try vss.thaw()
        default: return .failure("vss: freeze | thaw")
        }
        return a.status == .ok ? .success(what == "freeze" ? "frozen\n" : "thawed\n") : .failure("the guest answered \(a.status)")
    }

    private func copy(_ s: ICHostServices, _ args: [String]) throws(ICHostError) -> ControlResponse {
        guard let fc = s.fileCopy else { return missing("file copy") }
        var flags: FCopyFlags = []
        for w in args.dropFirst(2) {
            switch w {
            case "overwrite": flags.insert(.overWrite)
            case "create-path": flags.insert(.createPath)
            default: return .failure("copy: unknown word '\(w)'")
            }
        }
        let o = try fc.copy(source: args[0], destination: args[1], flags: flags)
        guard o.status == .ok else {
            return .failure("\(o.failedStep.map { "\($0)" } ?? "copy"): the guest answered \(o.status)")
        }
        return .success("copied \(o.bytesWritten) bytes to \(args[1])\n")
    }
}

extension ICSpec.Service {
    var icService: ICService {
        switch self {
        case .heartbeat: return .heartbeat
        case .shutdown: return .shutdown
        case .timesync: return .timeSync
        case .kvp: return .kvp
        case .vss: return .vss
        case .fcopy: return .fcopy
        }
    }
}
