#if canImport(Glibc)
import Glibc
#endif

/// Whether this process runs under a sanitizer, so that tests scale their work and their time limits.
///
/// ThreadSanitizer slows this code 5–15×, AddressSanitizer 2–3×: a test that moves a million packets in
/// two seconds would otherwise hit its own time limit and fail for a reason that has nothing to do with
/// what it checks. Detected from the sanitizer runtime's own entry points, so `swift test --sanitize=thread`
/// needs no extra setting; `VMBUS_TEST_SCALE` overrides the work divisor (1 = full size).
public enum Sanitizer {
    public enum Kind: String, Sendable { case thread, address }

    /// The sanitizer this process was built with, if any.
    public static let active: Kind? = {
        if unsafe dlsym(nil, "__tsan_init") != nil { return .thread }
        if unsafe dlsym(nil, "__asan_init") != nil { return .address }
        return nil
    }()

    /// By how much to divide iteration counts.
    public static let workDivisor: Int = {
        if let raw = getenv("VMBUS_TEST_SCALE"), let v = Int(String(cString: raw)), v >= 1 { return v }
        switch active {
        case .thread?: return 20
        case .address?: return 4
        case nil: return 1
        }
    }()

    /// By how much to stretch time limits.
    public static let timeFactor: Double = {
        switch active {
        case .thread?: return 10
        case .address?: return 4
        case nil: return 1
        }
    }()

    /// `count` scaled down for the active sanitizer, never below `minimum`.
    public static func scaled(_ count: Int, minimum: Int = 1) -> Int {
        max(minimum, count / workDivisor)
    }

    /// `seconds` stretched for the active sanitizer.
    public static func seconds(_ seconds: Double) -> Double { seconds * timeFactor }

    /// `nanoseconds` stretched for the active sanitizer.
    public static func nanoseconds(_ ns: UInt64) -> UInt64 { UInt64(Double(ns) * timeFactor) }
}
