#if canImport(Glibc)
import Glibc
#endif

/// `xproc-64B` against two C rings doing the same two-process 64-byte workload in the same run, interleaved
/// (ours, Linux, SPSC, ours, Linux, SPSC ...): Linux 6.12's `tools/hv/vmbus_bufring.c`, extracted from
/// Debian's linux-source-6.12 at benchmark time and never committed, and a plain C SPSC ring with the same
/// framing (Scripts/ring-baselines/baselines.c), the limit a ring with our rules can approach.
enum RingBaselineBenchmarks {
    static let rounds = 5

    static var sections: [BenchmarkSection] {
        [
            BenchmarkSection(
                name: "xproc-64B-baselines",
                summary: "xproc-64B (two processes) vs Linux's vmbus_bufring.c and a plain C SPSC ring, \(rounds) interleaved rounds (goals: >= 2x Linux, >= 0.6x SPSC)"
            ) { context in
                try compare(&context, payload: 64, packets: context.count(10_000_000))
            },
        ]
    }

    /// The repository root, from this file's path (the benchmark runs from a checkout).
    static var repository: String {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Sources/VMBusBenchmarks/<file>
        return parts.joined(separator: "/")
    }

    /// Runs `command` with /bin/sh and returns its exit status and standard output.
    static func shell(_ command: String) -> (status: Int32, output: String) {
        guard let pipe = popen(command, "r") else { return (-1, "") }
        var output = ""
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), pipe) != nil {
            output += String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let status = pclose(pipe)
        return ((status >> 8) & 0xff, output)
    }

    /// Builds the baseline executable (Scripts/ring-baselines/build.sh); nil with a message if it cannot.
    static func buildBaselines() -> String? {
        let work = "/tmp/vmbus-bench-ring-baselines-\(getuid())"
        let (status, output) = shell("'\(repository)/Scripts/ring-baselines/build.sh' '\(work)' 2>&1")
        guard status == 0, let path = output.split(separator: "\n").last.map(String.init) else {
            print("  skipped: cannot build the C baselines (exit \(status)): \(output)")
            return nil
        }
        return path
    }

    /// One run of the C baseline `mode`: packets per second, nil if the mode is unavailable (3) or failed.
    static func baseline(_ exe: String, _ mode: String, payload: Int, packets: Int, pin: Bool) -> Double? {
        let (status, output) = shell("'\(exe)' \(mode) \(payload) \(packets)\(pin ? "" : " --no-pin") 2>&1")
        guard status == 0, let value = output.split(separator: " ").last.flatMap({ Double($0.filter { !$0.isWhitespace }) })
        else {
            if status != 3 { print("  \(mode) baseline failed (exit \(status)): \(output)") }
            return nil
        }
        return value
    }

    static func compare(_ context: inout BenchmarkContext, payload: Int, packets: Int) throws {
        guard let exe = buildBaselines() else { return }
        let source = RingBenchmarks.PayloadSource(count: payload)
        var ours: [Double] = []
        var linux: [Double] = []
        var spsc: [Double] = []
        var haveLinux = true
        for _ in 0..<rounds {
            ours.append(try CrossProcessBenchmarks.packetRate(payload: payload, packets: packets, process: true,
                                                              pin: context.pin, source: source))
            if haveLinux {
                if let r = baseline(exe, "linux", payload: payload, packets: packets, pin: context.pin) {
                    linux.append(r)
                } else {
                    haveLinux = false
                    print("  skipped Linux's vmbus_bufring.c: linux-source-6.12 is not installed "
                        + "(apt-get install -y linux-source-6.12)")
                }
            }
            if let r = baseline(exe, "spsc", payload: payload, packets: packets, pin: context.pin) { spsc.append(r) }
        }
        context.row("ours", summary(ours, unit: 1e6, "M packets/s"))
        if !linux.isEmpty { context.row("linux", summary(linux, unit: 1e6, "M packets/s   (tools/hv/vmbus_bufring.c)")) }
        if !spsc.isEmpty { context.row("spsc", summary(spsc, unit: 1e6, "M packets/s   (plain C SPSC ring, same framing)")) }
        for (name, base, goal) in [("ours/linux", linux, 2.0), ("ours/spsc", spsc, 0.6)] where base.count == ours.count {
            let ratios = zip(ours, base).map { $0 / $1 }
            let (median, low, high) = spread(ratios)
            context.row("ratio", "\(name) median \(format(median, 3)) (\(format(low, 3))…\(format(high, 3)))   "
                        + "goal >= \(format(goal, 1)): \(median >= goal ? "met" : "NOT met")")
            context.record(name, median, unit: "ratio", low: low, high: high)
        }
        for (name, values) in [("ours", ours), ("linux vmbus_bufring.c", linux), ("C SPSC", spsc)] where !values.isEmpty {
            let (median, low, high) = spread(values)
            context.record(name, median / 1e6, unit: "M packets/s", low: low / 1e6, high: high / 1e6)
        }
    }

    /// Median, minimum and maximum.
    static func spread(_ values: [Double]) -> (median: Double, low: Double, high: Double) {
        let s = values.sorted()
        guard !s.isEmpty else { return (0, 0, 0) }
        return (s[s.count / 2], s[0], s[s.count - 1])
    }

    static func summary(_ values: [Double], unit: Double, _ label: String) -> String {
        let (median, low, high) = spread(values)
        return "median \(format(median / unit, 2)) (\(format(low / unit, 2))…\(format(high / unit, 2))) \(label)"
    }
}
