import Testing
import VMBusStorageProtocol
import VMBusWire

@Suite struct VStorPacketTests {
    @Test func aShortPacketReadsAsZerosPastItsEnd() throws {
        var srb = VMSCSIRequest()
        srb.lun = 3
        srb.setCDB([0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0])
        srb.dataTransferLength = 512
        let full = VStorPacket(operation: .executeSRB, srb: srb)
        var w = WireWriter()
        full.encode(into: &w, size: StorageProtocolVersion.win7.packetSize)
        #expect(w.count == 48)
        let decoded = try VStorPacket(wireBytes: w.bytes)
        #expect(decoded.srb.lun == 3)
        #expect(decoded.srb.cdbLength == 10)
        #expect(decoded.srb.cdb(0) == 0x28)
        #expect(decoded.srb.srbFlags == 0)
    }

    @Test func lessThanTheHeaderIsRefused() {
        #expect(throws: WireError.self) { try VStorPacket(wireBytes: [1, 0, 0, 0, 0, 0, 0, 0]) }
    }

    @Test func aCompletionCanBeMadeAsLongAsItsRequest() {
        let p = VStorPacket(operation: .completeIO, flags: 0)
        for size in [12, 48, 60, 64, 72] {
            var w = WireWriter()
            p.encode(into: &w, size: size)
            #expect(w.count == size)
        }
    }

    @Test func setCDBClearsTheRestAndClampsItsLength() {
        var s = VMSCSIRequest()
        for i in 0..<20 { s.dataArea[i] = 0xFF }
        s.setCDB([0x12, 1, 0x80, 0, 0xFF, 0])
        #expect(s.cdbLength == 6)
        #expect(s.dataArea[6] == 0 && s.dataArea[19] == 0)
        s.setCDB([UInt8](repeating: 7, count: 32))
        #expect(s.cdbLength == 16)
        #expect(s.dataDirection == VMSCSIRequest.DataDirection.none)
        s.dataIn = 9
        #expect(s.dataDirection == nil)
    }
}
