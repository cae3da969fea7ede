import Logging
import Testing
import VMBusControl
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct ControlServerTests {
    struct Rig {
        let path: String
        let server: ControlServer
        init(allowed: Set<UInt32> = [getuid()]) throws {
            path = "/tmp/vmbus-control-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ctl"
            server = try ControlServer(path: path, allowedUIDs: allowed, logger: Logger(label: "test")) { words in
                words.first == "echo" ? .success(words.dropFirst().joined(separator: "|")) : .failure("unknown")
            }
            try server.start()
        }
    }

    @Test func requestsAreAnsweredWordByWord() throws {
        let rig = try Rig()
        defer { rig.server.stop() }
        #expect(try ControlClient.request(path: rig.path, ["echo", "a b", "c,d=1"]) == .success("a b|c,d=1"))
        #expect(try ControlClient.request(path: rig.path, ["nope"]) == .failure("unknown"))
        #expect(try ControlClient.request(path: rig.path, ["version"]) == .success(ControlMessage.version))
    }

    @Test func theSocketFileIsOwnerOnly() throws {
        let rig = try Rig()
        defer { rig.server.stop() }
        var st = stat()
        #expect(lstat(rig.path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    @Test func aClientWhoseUIDIsNotAllowedIsRefused() throws {
        let rig = try Rig(allowed: [4_000_000_000])
        defer { rig.server.stop() }
        #expect(try ControlClient.request(path: rig.path, ["echo", "x"]) == .failure("permission denied"))
    }

    /// A raw client: malformed bytes, an oversized request, silence. Each gets an error answer or is dropped,
    /// and the server keeps serving.
    @Test func hostileClientsCostABoundedDelayAndNothingElse() throws {
        let rig = try Rig()
        defer { rig.server.stop() }
        func raw(_ bytes: [UInt8]) throws -> ControlResponse? {
            let c = try UnixSeqpacketSocket.connect(path: rig.path)
            defer { c.close() }
            try c.send(bytes: bytes)
            guard case .message(let reply)? = c.receiveMessage(maxBytes: 1 << 16, timeoutMilliseconds: 5000) else { return nil }
            return ControlResponse(decoding: reply)
        }
        #expect(try raw([0xFF, 0xFE])?.ok == false, "not UTF-8")
        #expect(try raw(Array("echo\n\nx".utf8))?.ok == false, "an empty word")
        #expect(try raw([UInt8](repeating: 0x41, count: ControlMessage.maxRequestBytes + 1))?.body.contains("longer") == true)
        let silent = try UnixSeqpacketSocket.connect(path: rig.path)
        defer { silent.close() }
        let start = monotonicNanoseconds()
        #expect(try ControlClient.request(path: rig.path, ["echo", "after"]) == .success("after"))
        #expect(monotonicNanoseconds() - start < 5_000_000_000, "a silent client holds the server at most its timeout")
        #expect(ControlMessage.encodeRequest(["a\nb"]) == nil)
        #expect(ControlMessage.encodeRequest([]) == nil)
    }
}
