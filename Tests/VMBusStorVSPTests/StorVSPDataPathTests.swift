import Testing
import VMBusDiskBackend
import VMBusGuest
import VMBusHost
import VMBusProtocol
import VMBusRing
import VMBusSCSI
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// StorVSP behind a real VMBus host, driven by a raw guest that speaks VSTOR by hand (no StorVSC), so every
/// byte the host receives is chosen by the test.
@Suite(.serialized)
struct StorVSPDataPathTests {
    struct Rig {
        let system: InProcessSystem
        let vsp: StorVSP
        let backend: MemoryBackend
        let channel: GuestChannel
        let capture = CompletionCapture()
        var context: UInt64 = 1

        init(initialize: Bool = true, readOnly: Bool = false) throws {
            system = try InProcessSystem(memoryPages: 4096)
            backend = MemoryBackend(capacity: 8 << 20, readOnly: readOnly)
            vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(7), maxSubchannels: 2)
            vsp.luns.attach(SCSIDisk(backend: backend, serialNumber: "t", identifier: 1), at: 0)
            system.host.addDevice(vsp)
            try system.start()
            let device = try #require(system.guest.devices.first)
            channel = try device.open(userData: [UInt8](repeating: 0, count: 24), handler: capture)
            if initialize { try self.initialize() }
        }

        func control(_ p: VStorPacket) throws -> VStorPacket {
            try VStorPacket(wireBytes: try channel.request(p.wireBytes))
        }

        func initialize() throws {
            #expect(try control(VStorPacket(operation: .beginInitialization)).status == .success)
            var v = VStorPacket(operation: .queryProtocolVersion)
            v.version = StorageVersionBody(.win10)
            #expect(try control(v).status == .success)
            let props = try control(VStorPacket(operation: .queryProperties))
            #expect(props.properties.maxTransferBytes == 1 << 20)
            #expect(props.properties.maxChannelCount == 2)
            #expect(try control(VStorPacket(operation: .endInitialization)).status == .success)
        }

        /// Sends EXECUTE_SRB for `cdb` with `length` bytes at guest page `pfn` (+`offset`), GPA-direct.
        mutating func srb(_ cdb: [UInt8], lun: UInt8 = 0, direction: VMSCSIRequest.DataDirection, length: Int,
                          pfns: [UInt64] = [], offset: UInt32 = 0, rangeBytes: UInt32? = nil, cdbLength: UInt8? = nil) throws -> VStorPacket {
            var s = VMSCSIRequest()
            s.lun = lun
            s.setCDB(cdb)
            if let cdbLength { s.cdbLength = cdbLength }
            s.dataIn = direction.rawValue
            s.dataTransferLength = UInt32(length)
            s.senseInfoLength = 20
            let p = VStorPacket(operation: .executeSRB, srb: s)
            context += 1
            if pfns.isEmpty {
                try send(p.wireBytes, on: channel, context: context)
            } else {
                let range = GPARange(byteCount: rangeBytes ?? UInt32(length), byteOffset: offset, pfns: pfns)
                try channel.sendGPADirectRequest(ranges: [range], payload: p.wireBytes, context: context)
            }
            let reply = try #require(capture.wait(context))
            #expect(reply.count == 64, "a completion is as long as its request")
            return try VStorPacket(wireBytes: reply)
        }
    }

    @Test func writeThenReadThroughGuestPages() throws {
        var rig = try Rig()
        defer { rig.system.stop() }
        let memory = rig.system.partition.memory
        let pages = try rig.system.partition.pages.allocate(pages: 3, scattered: true)
        let data = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        // 8 KiB starting 512 bytes into the first page: three pages, not adjacent.
        try memory.writeBytes(gpa: pages[0] * 4096 + 512, Array(data[0..<3584]))
        try memory.writeBytes(gpa: pages[1] * 4096, Array(data[3584..<7680]))
        try memory.writeBytes(gpa: pages[2] * 4096, Array(data[7680...]))
        let w = try rig.srb([0x2A, 0, 0, 0, 0, 16, 0, 0, 16, 0], direction: .write, length: 8192, pfns: pages, offset: 512)
        #expect(w.operation == .completeIO && w.status == .success)
        #expect(w.srb.srbStatus == .success && w.srb.dataTransferLength == 8192)
        // Read it back into other pages.
        let back = try rig.system.partition.pages.allocate(pages: 2)
        let r = try rig.srb([0x28, 0, 0, 0, 0, 16, 0, 0, 16, 0], direction: .read, length: 8192, pfns: back)
        #expect(r.srb.srbStatus == .success)
        #expect(try memory.readBytes(gpa: back[0] * 4096, count: 8192) == data)
    }

    @Test func scsiErrorsCarrySenseAndAbsentLUNsAreInvalid() throws {
        var rig = try Rig(readOnly: true)
        defer { rig.system.stop() }
        let pages = try rig.system.partition.pages.allocate(pages: 1)
        let w = try rig.srb([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .write, length: 512, pfns: pages)
        #expect(w.srb.srbStatus == SRBStatus.error.withAutosense())
        #expect(w.srb.scsiStatus == SAMStatus.CHECK_CONDITION)
        #expect(w.srb.senseInfoLength == 18)
        #expect(w.srb.dataArea[2] == SenseKey.DATA_PROTECT && w.srb.dataArea[12] == 0x27)
        #expect(w.status.rawValue == 0xC000_0185)
        let tur = try rig.srb([0x00, 0, 0, 0, 0, 0], lun: 5, direction: .none, length: 0)
        #expect(tur.srb.srbStatus == .invalidLUN && tur.status.rawValue == 0xC000_00C0)
        let inquiry = try rig.srb([0x12, 0, 0, 0, 36, 0], lun: 5, direction: .read, length: 36, pfns: pages)
        #expect(inquiry.srb.srbStatus == .success && inquiry.srb.dataTransferLength == 36)
    }

    @Test func malformedRequestsAreAnsweredWithAnErrorAndTheChannelGoesOn() throws {
        var rig = try Rig()
        defer { rig.system.stop() }
        let pages = try rig.system.partition.pages.allocate(pages: 2)
        // CDB length over 16.
        let long = try rig.srb([0x00, 0, 0, 0, 0, 0], direction: .none, length: 0, cdbLength: 17)
        #expect(long.srb.srbStatus == .invalidRequest)
        // A range shorter than the transfer.
        let short = try rig.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], direction: .read, length: 4096, pfns: [pages[0]],
                                rangeBytes: 2048)
        #expect(short.srb.srbStatus == .invalidRequest)
        // A PFN outside guest memory.
        let outside = try rig.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], direction: .read, length: 4096, pfns: [1 << 30])
        #expect(outside.srb.srbStatus == .invalidRequest)
        // Data without a GPA range (in-band), and a huge length.
        let inband = try rig.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], direction: .read, length: 4096)
        #expect(inband.srb.srbStatus == .invalidRequest)
        let huge = try rig.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], direction: .read, length: Int(UInt32.max), pfns: pages,
                               rangeBytes: 8192)
        #expect(huge.srb.srbStatus == .invalidRequest)
        // A GPA range whose PFN list does not match its length is refused before the SRB is looked at.
        let lying = try rig.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], direction: .read, length: 4096, pfns: pages,
                                rangeBytes: UInt32.max)
        #expect(lying.status == .invalidParameter)
        // A bad data direction byte.
        var s = VMSCSIRequest()
        s.setCDB([0, 0, 0, 0, 0, 0])
        s.dataIn = 7
        let bad = try rig.control(VStorPacket(operation: .executeSRB, srb: s))
        #expect(bad.srb.srbStatus == .invalidRequest)
        // A packet shorter than the VSTOR header.
        let tiny = try VStorPacket(wireBytes: try rig.channel.request([3, 0, 0, 0, 1, 0, 0, 0]) + [0, 0, 0, 0])
        #expect(tiny.status == .invalidParameter)
        #expect(rig.vsp.counterSnapshot.protocolErrors >= 1)
        // Still serving.
        let ok = try rig.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], direction: .read, length: 4096, pfns: [pages[0]])
        #expect(ok.srb.srbStatus == .success)
    }

    @Test func ioBeforeInitializationIsRefused() throws {
        var rig = try Rig(initialize: false)
        defer { rig.system.stop() }
        let r = try rig.srb([0x00, 0, 0, 0, 0, 0], direction: .none, length: 0)
        #expect(r.status == .invalidDeviceRequest)
        try rig.initialize()
        #expect(rig.vsp.stage == .ready)
        let ok = try rig.srb([0x00, 0, 0, 0, 0, 0], direction: .none, length: 0)
        #expect(ok.srb.srbStatus == .success)
    }

    @Test func subchannelsAreOfferedAndServeIO() throws {
        var rig = try Rig()
        defer { rig.system.stop() }
        var ask = VStorPacket(operation: .createSubChannels)
        ask.subChannelCount = 2
        #expect(try rig.control(ask).status == .success)
        let device = try #require(rig.system.guest.devices.first)
        let offers = try device.waitForSubchannels(2)
        let capture = CompletionCapture()
        let sub = try device.open(offers[0], handler: capture)
        var s = VMSCSIRequest()
        s.setCDB([0x00, 0, 0, 0, 0, 0])
        try send(VStorPacket(operation: .executeSRB, srb: s).wireBytes, on: sub, context: 99)
        let reply = try VStorPacket(wireBytes: try #require(capture.wait(99)))
        #expect(reply.srb.srbStatus == .success)
        // Control operations belong to the primary.
        let refused = try VStorPacket(wireBytes: try sub.request(VStorPacket(operation: .queryProperties).wireBytes))
        #expect(refused.status == .invalidParameter)
    }
}

/// Sends `bytes` as an in-band request whose completion reaches the channel's handler with `context`.
func send(_ bytes: [UInt8], on channel: GuestChannel, context: UInt64) throws {
    let r: Result<UInt64, GuestError> = bytes.withUnsafeBytes { p in Result { () throws(GuestError) in try channel.sendRequest(p, context: context) } }
    _ = try r.get()
}
