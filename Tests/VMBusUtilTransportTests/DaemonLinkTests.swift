#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusUtilTransport
import VMBusWire

/// A daemon played by the test through the device's own file operations, as FUSE calls them.
struct FakeDaemon {
    let device: UtilTransportDevice

    func write(_ bytes: [UInt8]) -> Int { bytes.withUnsafeBytes { device.write($0) } }

    /// Reads one message (waiting at most `seconds`), or the negative errno.
    func read(capacity: Int = 16 << 10, seconds: Double = 5) -> ([UInt8], Int) {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        let n = buffer.withUnsafeMutableBytes { device.read(into: $0, interrupted: { monotonicNanoseconds() > deadline }) }
        return (n > 0 ? Array(buffer[0..<n]) : [], n)
    }
}

/// Runs `body` on a thread of its own; the returned latch opens when it is done.
func background(_ body: @escaping @Sendable () -> Void) -> Latch {
    let done = Latch()
    _ = startThread(name: "fake-daemon") { body(); done.open() }
    return done
}

@Suite struct UtilTransportDeviceTests {
    @Test func oneDaemonAtATimeAndOneMessageAtATime() {
        let d = UtilTransportDevice(name: "hv_kvp")
        #expect(d.send([1]) == -EINVAL, "no daemon")
        #expect(d.open() == 0)
        #expect(d.open() == -EBUSY)
        #expect(d.poll(handle: nil) == 0)
        #expect(d.send([1, 2, 3]) == 0)
        #expect(d.send([4]) == -EFAULT, "the previous message is unread")
        #expect(d.poll(handle: nil) & Int16(POLLIN) != 0)
        let fake = FakeDaemon(device: d)
        #expect(fake.read(capacity: 2).1 == -Int(EINVAL), "a buffer shorter than the message")
        #expect(fake.read().0 == [1, 2, 3], "the message stayed for a long-enough read")
        #expect(fake.read(seconds: 0.1).1 == -Int(EINTR), "nothing to read: the wait ends when interrupted")
        #expect(d.send([5]) == 0)
        d.release()
        #expect(d.open() == 0, "free again")
        #expect(d.poll(handle: nil) == 0, "the next daemon does not see the last one's message")
        #expect(fake.write([UInt8](repeating: 0, count: UtilTransportDevice.maximumMessageSize + 1)) == -Int(EINVAL))
    }

    @Test func aPollHandleIsNotifiedOnceAndFreedWhenReplaced() {
        let notified = Condition<[Int]>([]), freed = Condition<[Int]>([])
        let d = UtilTransportDevice(name: "hv_vss", notifyPoll: { p in notified.update { $0.append(Int(bitPattern: p)) } },
                                    destroyPollHandle: { p in freed.update { $0.append(Int(bitPattern: p)) } })
        #expect(d.open() == 0)
        let h1 = UnsafeMutableRawPointer(bitPattern: 0x1000)!, h2 = UnsafeMutableRawPointer(bitPattern: 0x2000)!
        #expect(d.poll(handle: h1) == 0)
        #expect(d.poll(handle: h2) == 0)
        #expect(freed.withLock { $0 } == [0x1000], "the replaced handle")
        #expect(d.send([9]) == 0)
        #expect(notified.withLock { $0 } == [0x2000])
        #expect(freed.withLock { $0 } == [0x1000, 0x2000])
    }
}

@Suite struct DaemonLinkTests {
    static let fast: UInt64 = 300_000_000

    /// Registers a KVP daemon of `version` and returns it with the registration answer it read.
    func registeredKVP(_ link: KVPDaemonLink, version: KVPOperation = .register1) -> (FakeDaemon, KVPMessage?) {
        let fake = FakeDaemon(device: link.device)
        _ = link.device.open()
        #expect(fake.write(KVPMessage(header: KVPHeader(operation: version, pool: .external)).wireBytes) == KVPMessage.wireSize)
        var r = WireReader(fake.read().0)
        return (fake, try? KVPMessage(from: &r))
    }

    @Test func kvpRegistrationIsCheckedAndAnswered() throws {
        let link = KVPDaemonLink(timeoutNanoseconds: Self.fast)
        let fake = FakeDaemon(device: link.device)
        #expect(link.perform(.get(pool: .external, key: "k")) == nil, "no daemon: the guest answers itself")
        _ = link.device.open()
        #expect(fake.write([100, 0, 0, 0]) == -Int(EINVAL), "a registration shorter than hv_kvp_msg")
        #expect(fake.write(KVPMessage(header: KVPHeader(operation: .get, pool: .external)).wireBytes) == -Int(EINVAL),
                "not a registration")
        #expect(!link.isAttached)
        link.device.release()
        let (_, answer) = registeredKVP(link)
        #expect(link.isAttached)
        #expect(answer?.kvpHeader.operation == .register1)
        #expect(try answer?.kvpRegister().versionString == KVPDaemonLink.HV_DRV_VERSION)
    }

    @Test func kvpRequestsReachTheDaemonInUTF8AndItsAnswersComeBack() throws {
        let link = KVPDaemonLink(timeoutNanoseconds: 5_000_000_000)
        let (fake, _) = registeredKVP(link)
        let seen = Condition<KVPMessage?>(nil)
        let done = background {
            var r = WireReader(fake.read().0)
            guard var m = try? KVPMessage(from: &r) else { return }
            seen.update { $0 = m }
            var v = (try? m.kvpGet()) ?? KVPExchangeValue()
            try? v.setStringValue("välue", encoding: .utf8)
            m.setBody(v)
            m.error = .ok
            _ = fake.write(m.wireBytes)
        }
        #expect(link.perform(.get(pool: .guest, key: "Schlüssel")) == KVPDaemonAnswer(status: .ok, value: "välue"))
        #expect(done.wait(timeoutNanoseconds: 5_000_000_000))
        let m = try #require(seen.withLock { $0 })
        #expect(m.kvpHeader.operation == .get && m.kvpHeader.pool == .guest)
        #expect(try m.kvpGet().keyString(encoding: .utf8) == "Schlüssel")
    }

    @Test func aRequestRightAfterTheRegistrationWaitsForItsAnswerToBeRead() throws {
        let link = KVPDaemonLink(timeoutNanoseconds: 5_000_000_000)
        let fake = FakeDaemon(device: link.device)
        _ = link.device.open()
        #expect(fake.write(KVPMessage(header: KVPHeader(operation: .register1, pool: .external)).wireBytes) == KVPMessage.wireSize)
        #expect(link.isAttached)
        // The daemon is slow to read the registration's answer: the request must wait for the slot, not give up.
        let done = background {
            sleepNanoseconds(200_000_000)
            _ = fake.read()
            var r = WireReader(fake.read().0)
            guard var m = try? KVPMessage(from: &r) else { return }
            m.error = .ok
            _ = fake.write(m.wireBytes)
        }
        #expect(link.perform(.set(pool: .external, key: "k", value: "v")) == KVPDaemonAnswer(status: .ok))
        #expect(done.wait(timeoutNanoseconds: 5_000_000_000))
    }

    @Test func aSilentDaemonTimesOutAndAStrayAnswerIsRefused() {
        let link = KVPDaemonLink(timeoutNanoseconds: Self.fast)
        let (fake, _) = registeredKVP(link)
        #expect(link.perform(.enumerate(pool: .auto, index: 0)) == KVPDaemonAnswer(status: .fail))
        #expect(link.device.poll(handle: nil) == 0, "the unread request was taken back")
        #expect(fake.write(KVPMessage(header: KVPHeader(operation: .get, pool: .external)).wireBytes) == -Int(EINVAL),
                "an answer nobody waits for")
        #expect(link.isAttached, "the daemon stays attached")
    }

    @Test func aDaemonThatGoesAwayFailsItsRequestAtOnce() {
        let link = KVPDaemonLink(timeoutNanoseconds: 30_000_000_000)
        let (fake, _) = registeredKVP(link)
        let done = background {
            _ = fake.read()
            link.device.release()
        }
        let start = monotonicNanoseconds()
        #expect(link.perform(.set(pool: .external, key: "k", value: "v")) == KVPDaemonAnswer(status: .fail))
        #expect(monotonicNanoseconds() - start < 10_000_000_000)
        #expect(done.wait(timeoutNanoseconds: 5_000_000_000))
        #expect(!link.isAttached)
        #expect(link.perform(.get(pool: .external, key: "k")) == nil)
    }

    @Test func anOldDaemonSaysNotFoundWithAnEmptyKey() {
        let link = KVPDaemonLink(timeoutNanoseconds: 5_000_000_000)
        let (fake, _) = registeredKVP(link, version: .register)
        let done = background {
            var r = WireReader(fake.read().0)
            guard var m = try? KVPMessage(from: &r) else { return }
            m.setBody(KVPEnumerate(index: 0))
            _ = fake.write(m.wireBytes)
        }
        #expect(link.perform(.enumerate(pool: .external, index: 3))?.status == .cont)
        #expect(done.wait(timeoutNanoseconds: 5_000_000_000))
    }

    @Test func vssAndFCopyRegistrationsAndAnswersAreSizeChecked() throws {
        let vss = VSSDaemonLink(timeoutNanoseconds: 5_000_000_000)
        let v = FakeDaemon(device: vss.device)
        _ = vss.device.open()
        #expect(v.write(Array(VSSMessage(operation: .register1).wireBytes.prefix(11))) == -Int(EINVAL))
        #expect(v.write(VSSMessage(operation: .freeze).wireBytes) == -Int(EINVAL), "not a registration")
        #expect(v.write(VSSMessage(operation: .register1).wireBytes) == VSSMessage.wireSize)
        #expect(v.read().0 == [129, 0, 0, 0], "our version, VSS_OP_REGISTER1")
        let vssDone = background {
            let (bytes, _) = v.read()
            #expect(bytes.first == VSSOperation.freeze.rawValue)
            #expect(v.write([0, 0, 0, 0]) == -Int(EINVAL), "an answer of the wrong size")
            var answer = bytes
            answer.replaceSubrange(0..<4, with: [0x05, 0x40, 0x00, 0x80])  // HV_E_FAIL
            _ = v.write(answer)
        }
        #expect(vss.perform(.freeze)?.status == .fail)
        #expect(vssDone.wait(timeoutNanoseconds: 5_000_000_000))
        #expect(vss.perform(.getDMInfo)?.status == .fail, "not an operation for the daemon")

        let fcopy = FCopyDaemonLink(timeoutNanoseconds: 5_000_000_000)
        let c = FakeDaemon(device: fcopy.device)
        _ = fcopy.device.open()
        #expect(c.write([7, 0, 0, 0]) == -Int(EINVAL), "an unknown version")
        #expect(c.write([1, 0, 0, 0]) == 4)
        #expect(c.read().0 == [1, 0, 0, 0], "FCOPY_CURRENT_VERSION")
        let copyDone = background {
            let (bytes, _) = c.read()
            #expect(bytes.count == FCopyStart.wireSize)
            var r = WireReader(bytes)
            let start = try? FCopyStart(from: &r)
            #expect((try? start?.fileNameString(encoding: .utf8)) == "ä.txt", "names in UTF-8 for the daemon")
            #expect(c.write([0, 0]) == -Int(EINVAL))
            _ = c.write([0x50, 0x00, 0x07, 0x80])  // HV_ERROR_ALREADY_EXISTS
        }
        let start = try FCopyStart(fileName: "ä.txt", pathName: "/tmp", encoding: .utf16LE, copyFlags: [], fileSize: 1)
        #expect(fcopy.start(start) == .errorAlreadyExists)
        #expect(copyDone.wait(timeoutNanoseconds: 5_000_000_000))
    }
}
