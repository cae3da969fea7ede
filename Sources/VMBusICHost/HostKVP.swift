import VMBusICProtocol
import VMBusWire

/// The KVP service: the host reads and writes the guest's key-value pools.
///
/// Strings travel as UTF-16LE. Status codes are the guest's (its daemon's): HV_S_CONT for a missing key or
/// an index past the last entry.
public struct HostKVP: Sendable {
    public let channel: ICHostChannel
    /// Longer than the guest's own daemon timeout (HV_UTIL_TIMEOUT, 30 s), so its HV_E_FAIL reaches us.
    public static let defaultTimeoutNanoseconds: UInt64 = 35_000_000_000

    public init(channel: ICHostChannel) { self.channel = channel }

    /// The guest's answer to one KVP request.
    public struct Answer: Equatable, Sendable {
        public var status: ICStatus
        public var key: String
        public var value: String
    }

    public func get(pool: KVPPool, key: String, timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds) throws(ICHostError) -> Answer {
        let v = try build { () throws(WireError) in try KVPExchangeValue(key: key, value: "", encoding: .utf16LE) }
        return try exchange(.get(pool: pool, v), timeoutNanoseconds)
    }

    public func set(pool: KVPPool, key: String, value: String,
                    timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds) throws(ICHostError) -> Answer {
        let v = try build { () throws(WireError) in try KVPExchangeValue(key: key, value: value, encoding: .utf16LE) }
        return try exchange(.set(pool: pool, v), timeoutNanoseconds)
    }

    public func delete(pool: KVPPool, key: String, timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds) throws(ICHostError) -> Answer {
        let d = try build { () throws(WireError) in try KVPDelete(key: key, encoding: .utf16LE) }
        return try exchange(.delete(pool: pool, d), timeoutNanoseconds)
    }

    public func enumerate(pool: KVPPool, index: UInt32,
                          timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds) throws(ICHostError) -> Answer {
        try exchange(.enumerate(pool: pool, KVPEnumerate(index: index)), timeoutNanoseconds)
    }

    /// Every pair of `pool`, by enumerating from index 0 until the guest says HV_S_CONT (or fails). At most
    /// `limit` entries, so a guest that never ends the list cannot hold us; each step waits `timeoutNanoseconds`.
    public func list(pool: KVPPool, limit: Int = 4096, timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds)
        throws(ICHostError) -> (pairs: [(key: String, value: String)], status: ICStatus) {
        var out: [(key: String, value: String)] = []
        for i in 0..<UInt32(max(0, limit)) {
            let a = try enumerate(pool: pool, index: i, timeoutNanoseconds: timeoutNanoseconds)
            guard a.status == .ok else { return (out, a.status == .cont ? .ok : a.status) }
            out.append((a.key, a.value))
        }
        return (out, .ok)
    }

    private func build<T>(_ body: () throws(WireError) -> T) throws(ICHostError) -> T {
        do throws(WireError) { return try body() } catch { throw .invalidRequest("\(error)") }
    }

    private func exchange(_ request: KVPRequest, _ timeout: UInt64) throws(ICHostError) -> Answer {
        let answer = try channel.transact(.kvpExchange, body: request.wireBytes(form: .vmbus), timeoutNanoseconds: timeout)
        let status = answer.header.status
        guard status == .ok else { return Answer(status: status, key: "", value: "") }
        let message: KVPMessage
        do throws(WireError) { message = try KVPMessage(wireBytes: answer.body) } catch {
            throw .malformedAnswer("KVP: \(error)")
        }
        // The guest's strings are its own: decode leniently (a field's end ends an unterminated string).
        func text(_ v: KVPExchangeValue) -> (String, String) {
            let k = (try? v.keyString(encoding: .utf16LE, termination: .tolerated)) ?? ""
            let value: String
            switch v.valueType {
            case .u32: value = String(v.valueU32)
            case .u64: value = String(v.valueU64)
            default: value = (try? v.stringValue(encoding: .utf16LE, termination: .tolerated)) ?? ""
            }
            return (k, value)
        }
        switch request {
        case .get:
            guard let v = try? message.kvpGet() else { throw .malformedAnswer("KVP GET answer too short") }
            return Answer(status: status, key: "", value: text(v).1)
        case .enumerate:
            guard let e = try? message.kvpEnumData() else { throw .malformedAnswer("KVP ENUMERATE answer too short") }
            let (k, v) = text(e.data)
            return Answer(status: status, key: k, value: v)
        default:
            return Answer(status: status, key: "", value: "")
        }
    }
}
