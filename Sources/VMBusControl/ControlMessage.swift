/// The host control protocol (docs/CONTROL.md): one request and one response per connection, each one
/// SOCK_SEQPACKET message of UTF-8 text.
///
/// A request is its words, one per line: `disk` `attach` `/path/disk.raw,size=1G`. A response starts with
/// `ok` or `error`, a newline, then the body (a listing, or the reason). Words may hold spaces and commas; they
/// cannot hold a newline. Text, not a binary format, so that a shell with `socat` can speak it, and new
/// command families (the integration services' `ic …`) add words, not wire versions.
public enum ControlMessage {
    /// Requests are short; anything longer is refused unread.
    public static let maxRequestBytes = 4096
    /// Listings of many disks fit; a response is one message.
    public static let maxResponseBytes = 64 * 1024
    /// The first word of the greeting-free protocol's version probe: `version` answers `ok\nvmbus-control 1`.
    public static let version = "vmbus-control 1"

    public static func encodeRequest(_ words: [String]) -> [UInt8]? {
        guard !words.isEmpty, words.allSatisfy({ !$0.contains("\n") && !$0.isEmpty }) else { return nil }
        let bytes = Array(words.joined(separator: "\n").utf8)
        return bytes.count <= maxRequestBytes ? bytes : nil
    }

    public static func decodeRequest(_ bytes: [UInt8]) -> [String]? {
        guard !bytes.isEmpty, bytes.count <= maxRequestBytes, let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let words = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard words.allSatisfy({ !$0.isEmpty }) else { return nil }
        return words
    }
}

/// A control command's answer.
public struct ControlResponse: Equatable, Sendable {
    public var ok: Bool
    public var body: String

    public init(ok: Bool, _ body: String) {
        self.ok = ok
        self.body = body
    }

    public static func success(_ body: String = "") -> Self { Self(ok: true, body) }
    public static func failure(_ why: String) -> Self { Self(ok: false, why) }

    public var encoded: [UInt8] {
        var bytes = Array(((ok ? "ok" : "error") + "\n" + body).utf8)
        if bytes.count > ControlMessage.maxResponseBytes {
            bytes = Array(bytes.prefix(ControlMessage.maxResponseBytes))
        }
        return bytes
    }

    public init?(decoding bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let (head, body) = text.firstIndex(of: "\n").map { (text[..<$0], text[text.index(after: $0)...]) } ?? (Substring(text), "")
        switch head {
        case "ok": ok = true
        case "error": ok = false
        default: return nil
        }
        self.body = String(body)
    }
}
