#if canImport(Glibc)
import Glibc
#endif
import VMBusUtilTransport

/// The auto pool (KVP_POOL_AUTO) as hv_kvp_daemon fills it: ten facts about the guest, enumerated by
/// index in this fixed order.
public struct KVPAutoFacts: Sendable {
    /// The keys, in the daemon's index order.
    public static let keys = [
        "FullyQualifiedDomainName", "IntegrationServicesVersion", "NetworkAddressIPv4", "NetworkAddressIPv6",
        "OSBuildNumber", "OSName", "OSMajorVersion", "OSMinorVersion", "OSVersion", "ProcessorArchitecture",
    ]

    /// Where os-release lives (a test may point elsewhere).
    let osReleasePath: String

    public init(osReleasePath: String = "/etc/os-release") { self.osReleasePath = osReleasePath }

    /// The facts now (addresses change, so they are read per enumeration).
    public func current() -> [(key: String, value: String)] {
        var u = utsname()
        uname(&u)
        func field<T>(_ t: inout T) -> String {
            withUnsafeBytes(of: &t) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let sysname = field(&u.sysname), release = field(&u.release), machine = field(&u.machine)
        let osRelease = Self.parseOSRelease(readFile(osReleasePath) ?? "")
        let versionID = osRelease["VERSION_ID"] ?? ""
        let parts = versionID.split(separator: ".", maxSplits: 1).map(String.init)
        let (v4, v6) = Self.addresses()
        let values = [
            Self.fqdn(), KVPDaemonLink.HV_DRV_VERSION, v4, v6, release, osRelease["NAME"] ?? sysname,
            parts.first ?? "", parts.count > 1 ? parts[1] : "", osRelease["VERSION"] ?? versionID, machine,
        ]
        return Array(zip(Self.keys, values)).map { (key: $0.0, value: $0.1) }
    }

    /// `KEY=value` and `KEY="value"` lines.
    static func parseOSRelease(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            var v = String(line[line.index(after: eq)...])
            if v.count >= 2, let f = v.first, f == "\"" || f == "'", v.last == f { v = String(v.dropFirst().dropLast()) }
            out[String(line[..<eq])] = v
        }
        return out
    }

    /// The host name, qualified by the resolver if it can.
    static func fqdn() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "" }
        let name = Self.cString(buf)
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &res) == 0, let res else { return name }
        defer { freeaddrinfo(res) }
        return res.pointee.ai_canonname.map { String(cString: $0) } ?? name
    }

    /// Every address of every interface but loopback, IPv4 and IPv6 apart, each list joined with ';' as the
    /// daemon joins them.
    static func addresses() -> (String, String) {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return ("", "") }
        defer { freeifaddrs(list) }
        var v4: [String] = [], v6: [String] = []
        var p = list
        while let a = p {
            defer { p = a.pointee.ifa_next }
            guard let sa = a.pointee.ifa_addr, (a.pointee.ifa_flags & UInt32(IFF_LOOPBACK)) == 0 else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let family = Int32(sa.pointee.sa_family)
            let len = family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
            guard family == AF_INET || family == AF_INET6,
                  getnameinfo(sa, socklen_t(len), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
            let text = Self.cString(host)
            if family == AF_INET { v4.append(text) } else { v6.append(text) }
        }
        return (v4.joined(separator: ";"), v6.joined(separator: ";"))
    }

    private static func cString(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < 1 << 16 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
