#if canImport(Glibc)
import Glibc
#endif
import VMBusICProtocol
import VMBusTransport
import VMBusWire

/// Time sync: measures how far our clock is from the host's and, only when allowed, steps it with
/// `clock_settime` on a SYNC sample (Linux steps its clock only for ICTIMESYNCFLAG_SYNC). The answer is the
/// request back with HV_S_OK, as Linux sends it.
public final class TimeSyncResponder: ICResponder {
    public let service = ICService.timeSync
    public let mayBlock = false
    public let adjustClock: Bool

    /// One sample as we saw it.
    public struct Sample: Equatable, Sendable {
        /// The host's time minus ours, in nanoseconds, corrected for the delay since the host read its
        /// clock when the 4.0 layout carries the reference time.
        public var offsetNanoseconds: Int64
        public var flags: TimeSyncFlags
        /// Whether we stepped the clock for it.
        public var adjusted: Bool
        /// Why a step we were allowed to make failed (errno text).
        public var adjustError: String?
    }
    private let last = Condition<Sample?>(nil)
    private let samples = Condition<UInt64>(0)

    /// The reference counter the host stamps samples with: CLOCK_MONOTONIC in 100 ns units (one machine).
    let referenceTime: @Sendable () -> UInt64
    /// Longest delay between the host's stamp and our reading we correct for; a larger one is the host's
    /// mistake (or malice), not a delay, and is ignored.
    static let maximumCorrection: UInt64 = 10 * 10_000_000

    public init(adjustClock: Bool, referenceTime: @escaping @Sendable () -> UInt64 = { monotonicNanoseconds() / 100 }) {
        self.adjustClock = adjustClock
        self.referenceTime = referenceTime
    }

    public var lastSample: Sample? { last.withLock { $0 } }
    public var sampleCount: UInt64 { samples.withLock { $0 } }

    public func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply {
        guard request.header.icmsgtype == .timeSync else { return .failure(request) }
        let layout = TimeSyncLayout(serviceVersion: versions?.service ?? request.header.icvermsg)
        var hostTime: UInt64
        let flags: TimeSyncFlags
        switch layout {
        case .data:
            guard let d = try? request.decodeBody(TimeSyncData.self) else { return .failure(request) }
            hostTime = d.parenttime
            flags = d.flags
        case .reference:
            guard let d = try? request.decodeBody(TimeSyncReferenceData.self) else { return .failure(request) }
            hostTime = d.parenttime
            flags = d.flags
            let now = referenceTime()
            if now >= d.vmreferencetime, now - d.vmreferencetime <= Self.maximumCorrection {
                hostTime &+= now - d.vmreferencetime
            }
        }
        guard hostTime >= TimeSyncLayout.windowsEpochDelta else { return .failure(request) }
        let hostUnix100 = hostTime - TimeSyncLayout.windowsEpochDelta
        guard hostUnix100 < UInt64(Int64.max / 100) else { return .failure(request) }
        let hostNanoseconds = Int64(hostUnix100) * 100
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let ours = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        var sample = Sample(offsetNanoseconds: hostNanoseconds &- ours, flags: flags, adjusted: false, adjustError: nil)
        if flags.contains(.sync) && adjustClock {
            var target = timespec(tv_sec: Int(hostNanoseconds / 1_000_000_000), tv_nsec: Int(hostNanoseconds % 1_000_000_000))
            if clock_settime(CLOCK_REALTIME, &target) == 0 {
                sample.adjusted = true
            } else {
                sample.adjustError = String(cString: strerror(errno))
            }
        }
        last.withLock { $0 = sample }
        samples.withLock { $0 += 1 }
        return ICReply(request.linuxResponse(status: .ok))
    }
}
