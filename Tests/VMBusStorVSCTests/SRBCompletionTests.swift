import Testing
import VMBusSCSI
import VMBusStorageProtocol
import VMBusStorVSC

@Suite struct SRBCompletionTests {
    static func packet(_ edit: (inout VMSCSIRequest) -> Void, operation: VStorOperation = .completeIO, size: Int = 64) -> [UInt8] {
        var srb = VMSCSIRequest()
        srb.srbStatus = .success
        edit(&srb)
        var p = VStorPacket(operation: operation, flags: 0, srb: srb).wireBytes
        p = Array(p.prefix(size))
        return p
    }

    static func parse(_ bytes: [UInt8], requested: Int = 4096) throws(StorVSCError) -> SRBCompletion {
        let r: Result<SRBCompletion, StorVSCError> = bytes.withUnsafeBytes { b in
            do throws(StorVSCError) { return .success(try SRBCompletion.parse(b, requestedLength: requested)) }
            catch { return .failure(error) }
        }
        return try r.get()
    }

    @Test func aGoodCompletionParses() throws {
        let c = try Self.parse(Self.packet { $0.dataTransferLength = 4096 })
        #expect(c.transferred == 4096)
        #expect(c.disposition(lun: 0) == .success)
    }

    @Test func shortWrongAndInconsistentCompletionsAreRefused() {
        for bytes in [Self.packet({ _ in }, size: 63), Self.packet({ _ in }, size: 0),
                      Self.packet({ _ in }, operation: .executeSRB),
                      Self.packet { $0.senseInfoLength = 21 },
                      Self.packet { $0.dataTransferLength = 4097 }] {
            #expect(throws: StorVSCError.self) { _ = try Self.parse(bytes) }
        }
    }

    @Test func successWithAutosenseSetIsNotASuccess() throws {
        let c = try Self.parse(Self.packet { $0.srbStatus = SRBStatus.success.withAutosense() })
        #expect(c.disposition(lun: 0) != .success, "Linux compares the whole byte")
    }

    @Test func senseIsClassified() throws {
        func with(key: UInt8, asc: UInt8, ascq: UInt8 = 0, scsi: UInt8 = SAMStatus.CHECK_CONDITION) throws -> SRBCompletion.Disposition {
            try Self.parse(Self.packet { s in
                s.srbStatus = SRBStatus.error.withAutosense()
                s.scsiStatus = scsi
                s.senseInfoLength = 18
                let d = FixedSenseData(key: key, AdditionalSense(asc, ascq))
                for i in 0..<18 { s.dataArea[i] = d.byte(i) }
            }).disposition(lun: 2)
        }
        #expect(try with(key: SenseKey.UNIT_ATTENTION, asc: 0x29) == .retry)
        #expect(try with(key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x01) == .retry)
        #expect(try with(key: SenseKey.MEDIUM_ERROR, asc: 0x11) == .failure(.mediumError(asc: 0x11, ascq: 0)))
        #expect(try with(key: SenseKey.DATA_PROTECT, asc: 0x27) == .failure(.writeProtected))
        #expect(try with(key: SenseKey.ILLEGAL_REQUEST, asc: 0x21) == .failure(.checkCondition(senseKey: 5, asc: 0x21, ascq: 0)))
        #expect(try Self.parse(Self.packet { $0.srbStatus = .invalidLUN }).disposition(lun: 2) == .failure(.lunRemoved(lun: 2)))
        #expect(try Self.parse(Self.packet { $0.srbStatus = .busy }).disposition(lun: 2) == .retry)
        #expect(try Self.parse(Self.packet { $0.scsiStatus = SAMStatus.BUSY }).disposition(lun: 2) == .retry)
        #expect(try Self.parse(Self.packet { $0.srbStatus = .error }).disposition(lun: 2)
                == .failure(.srbFailed(srbStatus: 0x04, scsiStatus: 0)))
    }
}
