import VMBusICProtocol
import VMBusWire

/// A host's KVP request, as the guest hands it to hv_kvp_daemon (strings already decoded from UTF-16).
public enum KVPDaemonRequest: Equatable, Sendable {
    case get(pool: KVPPool, key: String)
    case set(pool: KVPPool, key: String, value: String)
    case delete(pool: KVPPool, key: String)
    case enumerate(pool: KVPPool, index: UInt32)
}

/// hv_kvp_daemon's answer.
public struct KVPDaemonAnswer: Equatable, Sendable {
    /// HV_S_OK, HV_S_CONT (no such key, or past the last index), HV_E_FAIL (timed out, daemon gone).
    public var status: ICStatus
    /// The key of an enumerated entry.
    public var key: String
    /// The value of a get or an enumerated entry.
    public var value: String

    public init(status: ICStatus, key: String = "", value: String = "") {
        self.status = status
        self.key = key
        self.value = value
    }
}

/// The kernel side of `/dev/vmbus/hv_kvp` (Linux's hv_kvp.c, towards its daemon): the daemon registers with
/// KVP_OP_REGISTER1 (or the older KVP_OP_REGISTER) in a whole `hv_kvp_msg` and is answered with the driver's
/// version string; each request is then one `hv_kvp_msg` with UTF-8 strings, and the daemon's answer is the
/// same struct with its status in `error` (an old KVP_OP_REGISTER daemon says "no such key" with an empty key).
public final class KVPDaemonLink: Sendable {
    public let device: UtilTransportDevice
    let session: DaemonSession
    public let timeoutNanoseconds: UInt64

    /// HV_DRV_VERSION (include/linux/hyperv.h), which the registration answer carries and the daemon reports
    /// as IntegrationServicesVersion.
    public static let HV_DRV_VERSION = "3.1"

    public init(device: UtilTransportDevice = UtilTransportDevice(name: "hv_kvp"),
                timeoutNanoseconds: UInt64 = HV_UTIL_TIMEOUT * 1_000_000_000) {
        self.device = device
        self.timeoutNanoseconds = timeoutNanoseconds
        session = DaemonSession(device: device, register: { bytes in
            guard bytes.count >= KVPMessage.wireSize else { return nil }
            let op = KVPOperation(rawValue: bytes[0])
            guard op == .register || op == .register1 else { return nil }
            var answer = KVPMessage(header: KVPHeader(operation: op, pool: .external))
            answer.setBody((try? KVPRegister(versionString: Self.HV_DRV_VERSION)) ?? KVPRegister())
            return (UInt32(op.rawValue), answer.wireBytes)
        }, answerSizeIsValid: { $0 >= KVPMessage.wireSize })
    }

    /// Whether hv_kvp_daemon is attached and registered.
    public var isAttached: Bool { session.isRegistered }

    /// Asks the daemon; nil when none is attached (the guest answers itself). A daemon that does not answer
    /// in time, goes away or answers garbage gives HV_E_FAIL, as Linux tells the host.
    public func perform(_ request: KVPDaemonRequest) -> KVPDaemonAnswer? {
        let message: KVPMessage
        do throws(WireError) {
            message = try Self.message(for: request)
        } catch {
            return KVPDaemonAnswer(status: .fail)
        }
        switch session.exchange(message.wireBytes, timeoutNanoseconds: timeoutNanoseconds) {
        case .noDaemon: return nil
        case .busy, .timedOut, .gone: return KVPDaemonAnswer(status: .fail)
        case .answered(let bytes): return Self.answer(bytes, to: request, registered: session.registeredVersion)
        }
    }

    /// The daemon's form of `request`: the strings in UTF-8, cut to fit as Linux does.
    static func message(for request: KVPDaemonRequest) throws(WireError) -> KVPMessage {
        switch request {
        case .get(let pool, let key):
            var v = KVPExchangeValue()
            try v.setKey(key, encoding: .utf8, overflow: .truncate)
            // The daemon copies out value_size bytes of the stored value. Linux leaves it 0 (its GET reaches the
            // host empty); we give the whole field, which the daemon accepts, so that a GET answers.
            v.valueSize = UInt32(KVPExchangeValue.maxValueSize)
            return KVPMessage(operation: .get, pool: pool, member: v)
        case .set(let pool, let key, let value):
            let v = try KVPExchangeValue(key: key, value: value, encoding: .utf8, overflow: .truncate)
            return KVPMessage(operation: .set, pool: pool, member: v)
        case .delete(let pool, let key):
            return KVPMessage(operation: .delete, pool: pool,
                              member: try KVPDelete(key: key, encoding: .utf8, overflow: .truncate))
        case .enumerate(let pool, let index):
            return KVPMessage(operation: .enumerate, pool: pool, member: KVPEnumerate(index: index))
        }
    }

    /// Reads the daemon's answer. Its strings are its own: unterminated ones end at their field's end.
    static func answer(_ bytes: [UInt8], to request: KVPDaemonRequest, registered: UInt32) -> KVPDaemonAnswer {
        var r = WireReader(bytes)
        guard let m = try? KVPMessage(from: &r) else { return KVPDaemonAnswer(status: .fail) }
        func text(_ field: [UInt8]) -> String {
            (try? ICString.decode(field, as: .utf8, termination: .tolerated, fieldName: "string")) ?? ""
        }
        var status = m.error
        if registered == UInt32(KVPOperation.register.rawValue) {
            // The old daemon's convention: an empty key is "not found".
            let key = (try? m.kvpEnumData().data.key) ?? []
            status = key.first == 0 ? .cont : .ok
        }
        guard status == .ok else { return KVPDaemonAnswer(status: status) }
        switch request {
        case .get:
            guard let v = try? m.kvpGet() else { return KVPDaemonAnswer(status: .fail) }
            return KVPDaemonAnswer(status: .ok, value: text(v.value))
        case .enumerate:
            guard let e = try? m.kvpEnumData() else { return KVPDaemonAnswer(status: .fail) }
            return KVPDaemonAnswer(status: .ok, key: text(e.data.key), value: text(e.data.value))
        case .set, .delete:
            return KVPDaemonAnswer(status: .ok)
        }
    }
}
