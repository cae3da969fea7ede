import VMBusICProtocol
import VMBusTransport
import VMBusUtilTransport

/// The guest's own KVP pools, with hv_kvp_daemon's semantics, for when no daemon is attached.
///
/// Keys match exactly. SET adds or replaces in place (enumeration keeps insertion order, as the daemon's
/// pool files do); GET and DELETE of a missing key and ENUMERATE past the end answer HV_S_CONT. The auto
/// pool (2) enumerates ``KVPAutoFacts`` instead of stored pairs, as the daemon does. A pool holds at most
/// ``maximumEntries`` pairs: past that a SET fails, so a host cannot make us grow without bound.
public final class KVPStore: Sendable {
    public static let maximumEntries = 1024
    private let pools = Condition<[[(key: String, value: String)]]>(Array(repeating: [], count: KVPPool.count))
    let autoFacts: KVPAutoFacts

    public init(autoFacts: KVPAutoFacts = KVPAutoFacts()) { self.autoFacts = autoFacts }

    public func perform(_ request: KVPDaemonRequest) -> (status: ICStatus, key: String, value: String) {
        switch request {
        case .get(let pool, let key):
            let v = pools.withLock { p in p[Int(pool.rawValue)].first { $0.key == key }?.value }
            return v.map { (.ok, key, $0) } ?? (.cont, "", "")
        case .set(let pool, let key, let value):
            return pools.withLock { p -> (ICStatus, String, String) in
                let i = Int(pool.rawValue)
                if let j = p[i].firstIndex(where: { $0.key == key }) {
                    p[i][j].value = value
                } else {
                    guard p[i].count < Self.maximumEntries else { return (.fail, "", "") }
                    p[i].append((key, value))
                }
                return (.ok, "", "")
            }
        case .delete(let pool, let key):
            return pools.withLock { p -> (ICStatus, String, String) in
                let i = Int(pool.rawValue)
                guard let j = p[i].firstIndex(where: { $0.key == key }) else { return (.cont, "", "") }
                p[i].remove(at: j)
                return (.ok, "", "")
            }
        case .enumerate(let pool, let index):
            if pool == .auto {
                let facts = autoFacts.current()
                guard Int(index) < facts.count else { return (.cont, "", "") }
                return (.ok, facts[Int(index)].key, facts[Int(index)].value)
            }
            return pools.withLock { p -> (ICStatus, String, String) in
                let entries = p[Int(pool.rawValue)]
                guard Int(index) < entries.count else { return (.cont, "", "") }
                return (.ok, entries[Int(index)].key, entries[Int(index)].value)
            }
        }
    }

    /// Publishes a pair into a pool from the guest's side (the guest pool, 1, is the one the host reads).
    public func set(pool: KVPPool, key: String, value: String) -> ICStatus {
        guard pool.isValid else { return .fail }
        return perform(.set(pool: pool, key: key, value: value)).status
    }
}
