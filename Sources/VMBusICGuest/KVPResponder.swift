import VMBusICProtocol
import VMBusUtilTransport
import VMBusWire

/// KVP: parses the host's request strictly (a bad pool, an oversized or unterminated string, a short body
/// get HV_E_FAIL), then asks hv_kvp_daemon when one is attached, else our own ``KVPStore``. The answer is
/// the request's bytes with the status and, for GET and ENUMERATE, the pair filled in (UTF-16LE).
public final class KVPResponder: ICResponder {
    public let service = ICService.kvp
    public let mayBlock = true
    public let store: KVPStore
    public let daemon: KVPDaemonLink?

    public init(store: KVPStore = KVPStore(), daemon: KVPDaemonLink? = nil) {
        self.store = store
        self.daemon = daemon
    }

    public func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply {
        guard request.header.icmsgtype == .kvpExchange, let parsed = try? KVPRequest(body: request.body, form: .vmbus),
              let asked = try? Self.decoded(parsed) else {
            return .failure(request)
        }
        let answer = daemon?.perform(asked) ?? {
            let r = store.perform(asked)
            return KVPDaemonAnswer(status: r.status, key: r.key, value: r.value)
        }()
        guard answer.status == .ok else { return .failure(request, answer.status) }
        guard var message = try? KVPMessage(wireBytes: request.body) else { return .failure(request) }
        switch parsed {
        case .get(_, var v):
            // Cut to fit, as Linux cuts the daemon's UTF-8 when it converts it.
            guard (try? v.setStringValue(answer.value, encoding: .utf16LE, overflow: .truncate)) != nil else {
                return .failure(request)
            }
            message.setBody(v)
        case .enumerate(_, var e):
            guard (try? e.data.setKey(answer.key, encoding: .utf16LE, overflow: .truncate)) != nil,
                  (try? e.data.setStringValue(answer.value, encoding: .utf16LE, overflow: .truncate)) != nil else {
                return .failure(request)
            }
            message.setBody(e)
        default:
            break
        }
        var w = WireWriter(capacity: request.body.count)
        message.encode(into: &w, size: request.body.count)
        return ICReply(request.linuxResponse(status: .ok, body: w.bytes))
    }

    /// The request with its strings decoded strictly from UTF-16LE. IP settings are not key-value requests:
    /// they throw (HV_E_FAIL), as Linux answers them without a daemon that can.
    static func decoded(_ r: KVPRequest) throws(WireError) -> KVPDaemonRequest {
        switch r {
        case .get(let pool, let v): return .get(pool: pool, key: try v.keyString(encoding: .utf16LE))
        case .set(let pool, let v):
            // A string value must be well formed too; numbers become decimal text, as Linux hands them on.
            let value = v.valueType == .sz ? try v.stringValue(encoding: .utf16LE) : try v.daemonValueString()
            return .set(pool: pool, key: try v.keyString(encoding: .utf16LE), value: value)
        case .delete(let pool, let d): return .delete(pool: pool, key: try d.keyString(encoding: .utf16LE))
        case .enumerate(let pool, let e): return .enumerate(pool: pool, index: e.index)
        case .getIPInfo, .setIPInfo:
            throw .invalidValue(field: "kvp_hdr.operation", value: UInt64(r.operation.rawValue))
        }
    }
}
