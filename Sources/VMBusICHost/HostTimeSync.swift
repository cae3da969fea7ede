#if canImport(Glibc)
import Glibc
#endif
import VMBusICProtocol
import VMBusTransport
import VMBusWire

/// The time-sync service: hands the guest the host's clock, in the layout the negotiated version uses.
///
/// Times are Windows file times (100 ns since 1601). The partition reference time of the 4.0 layout is
/// CLOCK_MONOTONIC in 100 ns units: host and guest run on one machine, so both read the same counter, as a
/// Hyper-V guest reads the partition reference TSC.
public final class HostTimeSync: Sendable {
    public let channel: ICHostChannel

    public init(channel: ICHostChannel, syncOnConnect: Bool = true) {
        self.channel = channel
        // Hyper-V sets a guest's clock once it connects; posted, since this runs on the channel worker.
        if syncOnConnect {
            channel.onReady { [weak channel] versions in
                guard let channel else { return }
                try? channel.post(.timeSync, body: Self.sample(.sync, versions: versions).body,
                                  timeoutNanoseconds: 5_000_000_000)
            }
        }
    }

    /// The host's time now, as a Windows file time.
    public static func hostTime() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let ticks = UInt64(max(0, ts.tv_sec)) &* 10_000_000 &+ UInt64(max(0, ts.tv_nsec)) / 100
        return ticks &+ TimeSyncLayout.windowsEpochDelta
    }

    /// The reference counter: CLOCK_MONOTONIC in 100 ns units.
    public static func referenceTime() -> UInt64 { monotonicNanoseconds() / 100 }

    /// A sample's body and the host time it carries.
    static func sample(_ flags: TimeSyncFlags, versions: ICNegotiatedVersions) -> (body: [UInt8], hostTime: UInt64) {
        let now = hostTime()
        switch TimeSyncLayout(serviceVersion: versions.service) {
        case .data:
            return (TimeSyncData(parenttime: now, flags: flags).wireBytes, now)
        case .reference:
            return (TimeSyncReferenceData(parenttime: now, vmreferencetime: referenceTime(), flags: flags).wireBytes, now)
        }
    }

    /// What a sample did.
    public struct Result: Equatable, Sendable {
        public var status: ICStatus
        /// The host time sent (Windows file time).
        public var hostTime: UInt64
        public var layout: TimeSyncLayout
    }

    /// Sends a sample (or, with `sync`, a SYNC that tells the guest to step its clock) and waits for the answer.
    public func send(sync: Bool, timeoutNanoseconds: UInt64 = 10_000_000_000) throws(ICHostError) -> Result {
        let versions = try channel.readyVersions()
        let (body, time) = Self.sample(sync ? .sync : .sample, versions: versions)
        let answer = try channel.transact(.timeSync, body: body, timeoutNanoseconds: timeoutNanoseconds)
        return Result(status: answer.header.status, hostTime: time, layout: TimeSyncLayout(serviceVersion: versions.service))
    }
}
