import VMBusNetVSP
import VMBusTransport

/// A NIC as the switch sees it, without VMBus: it records what is delivered and can answer busy a given
/// number of times first.
final class FakeNetPort: NetPort, @unchecked Sendable {
    let macAddress: [UInt8]
    let maxFrameSize = 9018
    private let state = Condition<(frames: [[UInt8]], busyLeft: Int)>(([], 0))

    init(_ last: UInt8) { macAddress = [0x02, 0, 0, 0, 0, last] }

    func answerBusy(_ times: Int) { state.update { $0.busyLeft = times } }

    func deliver(_ frame: UnsafeRawBufferPointer) -> NetDelivery {
        state.update { s in
            if s.busyLeft > 0 {
                s.busyLeft -= 1
                return .busy
            }
            s.frames.append([UInt8](frame))
            return .accepted
        }
    }

    /// Frames delivered with work left, and what was left, in order (busy answers apply as above).
    let offloaded = Condition<[([UInt8], FrameOffload)]>([])

    func deliver(_ frame: UnsafeRawBufferPointer, offload: FrameOffload) -> NetDelivery {
        let busy = state.update { s -> Bool in
            guard s.busyLeft > 0 else { return false }
            s.busyLeft -= 1
            return true
        }
        if busy { return .busy }
        let copy = [UInt8](frame)
        offloaded.update { $0.append((copy, offload)) }
        return .accepted
    }

    /// Waits (up to `seconds`) for `count` frames, then takes what there is.
    func take(_ count: Int, seconds: Double = 5) -> [[UInt8]] {
        _ = state.wait(timeoutNanoseconds: UInt64(seconds * 1e9)) { $0.frames.count >= count ? true : nil }
        return state.withLock { s in defer { s.frames = [] }; return s.frames }
    }

    /// A frame from this port to `destination` with a one-byte tag as payload.
    func frame(to destination: [UInt8], tag: UInt8) -> [UInt8] {
        destination + macAddress + [0x88, 0xB5, tag] + [UInt8](repeating: 0, count: 45)
    }
}
