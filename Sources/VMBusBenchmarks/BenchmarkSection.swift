import CMallocCounter
import CVMBusShims

/// One named benchmark. Add sections to `allSections` in main.swift; `--filter` selects them by substring.
struct BenchmarkSection: Sendable {
    /// Short, unique, greppable (`ring-64B`).
    let name: String
    /// One line saying what is measured.
    let summary: String
    /// Runs once per repetition and reports through the context.
    let run: @Sendable (inout BenchmarkContext) throws -> Void
}

/// Options and output shared by all sections.
struct BenchmarkContext {
    /// Scale factor for iteration counts (`--quick` makes it 0.1).
    var scale: Double = 1
    /// Whether worker threads are pinned to CPUs 0 and 1.
    var pin: Bool = vmbus_shim_cpu_count() >= 2
    /// Failed hard requirements (for example an allocation in a measured loop); non-empty makes the exit status 1.
    var failures: [String] = []

    func count(_ n: Int) -> Int { max(1, Int(Double(n) * scale)) }

    /// Prints one result row.
    func row(_ label: String, _ text: String) {
        print("  " + label.padding(12) + text)
    }

    /// Figures for `--json` and the chart (BenchmarkResults.swift); main.swift sets `section` before each run.
    var records: [BenchmarkRecord] = []
    var section = ""

    /// Records one figure of the current section: `series` is what was measured ("ours", a baseline's name, or
    /// a ratio such as "ours/linux" with unit "ratio"), with the spread over rounds where there were several.
    mutating func record(_ series: String, _ value: Double, unit: String, low: Double? = nil, high: Double? = nil) {
        records.append(BenchmarkRecord(section: section, series: series, value: value, unit: unit, low: low, high: high))
    }

    /// Records a violated hard requirement.
    mutating func require(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition {
            failures.append(message())
            print("  FAILED: \(message())")
        }
    }
}

/// Nanoseconds on the monotonic clock.
@inline(__always)
func now() -> UInt64 { vmbus_shim_monotonic_ns() }

/// Process-wide malloc/calloc/realloc/posix_memalign calls so far (CMallocCounter interposes them).
@inline(__always)
func mallocCount() -> UInt64 { malloc_counter_total() }

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

/// `x` with `decimals` digits after the point (no Foundation: `String(format:)` is not available).
func format(_ x: Double, _ decimals: Int = 2) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let negative = x < 0
    let n = UInt64((abs(x) * scale).rounded())
    let whole = n / UInt64(scale)
    var fraction = String(n % UInt64(scale))
    while fraction.count < decimals { fraction = "0" + fraction }
    return (negative ? "-" : "") + "\(whole)" + (decimals > 0 ? "." + fraction : "")
}
