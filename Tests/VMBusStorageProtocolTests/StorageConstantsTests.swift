import Testing
import VMBusLayoutTesting
import VMBusProtocol
import VMBusStorageProtocol
import VMBusWire

/// Our constants against the values compiled into hv_storvsc.ko.
@Suite struct StorageConstantsTests {
    func linux(_ name: String) throws -> UInt64 {
        try #require(LinuxConstants.values[name], "\(name) missing from the fixture")
    }

    @Test func versionsAndTryOrderMatchLinux() throws {
        #expect(StorageProtocolVersion.linuxTryOrder.map(\.rawValue) == LinuxConstants.storvscProtocolVersions)
        let pairs: [(StorageProtocolVersion, String)] = [
            (.win6, "VMSTOR_PROTO_VERSION_WIN6"), (.win7, "VMSTOR_PROTO_VERSION_WIN7"),
            (.win8, "VMSTOR_PROTO_VERSION_WIN8"), (.win8_1, "VMSTOR_PROTO_VERSION_WIN8_1"),
            (.win10, "VMSTOR_PROTO_VERSION_WIN10"),
        ]
        for (v, name) in pairs { #expect(try linux(name) == UInt64(v.rawValue), "\(name)") }
        #expect(StorageProtocolVersion.win10.description == "6.2")
    }

    @Test func theSizeRuleOfPreWin8Protocols() {
        #expect(StorageProtocolVersion.win10.packetSize == 64)
        #expect(StorageProtocolVersion.win8.packetSize == 64)
        #expect(StorageProtocolVersion.win7.packetSize == 48)
        #expect(StorageProtocolVersion.win6.packetSize == 48)
        #expect(!StorageProtocolVersion.win7.supportsMultiChannel)
        #expect(StorageProtocolVersion.win8.supportsMultiChannel)
    }

    @Test func srbStatusAndFlagsMatchLinux() throws {
        let statuses: [(SRBStatus, String)] = [
            (.success, "SRB_STATUS_SUCCESS"), (.aborted, "SRB_STATUS_ABORTED"), (.error, "SRB_STATUS_ERROR"),
            (.invalidRequest, "SRB_STATUS_INVALID_REQUEST"), (.timeout, "SRB_STATUS_TIMEOUT"),
            (.selectionTimeout, "SRB_STATUS_SELECTION_TIMEOUT"), (.busReset, "SRB_STATUS_BUS_RESET"),
            (.dataOverrun, "SRB_STATUS_DATA_OVERRUN"), (.invalidLUN, "SRB_STATUS_INVALID_LUN"),
            (.internalError, "SRB_STATUS_INTERNAL_ERROR"),
        ]
        for (s, name) in statuses { #expect(try linux(name) == UInt64(s.rawValue), "\(name)") }
        #expect(try linux("SRB_STATUS_AUTOSENSE_VALID") == UInt64(SRBStatus.autosenseValidFlag))
        #expect(try linux("SRB_STATUS_QUEUE_FROZEN") == UInt64(SRBStatus.queueFrozenFlag))
        let flags: [(UInt32, String)] = [
            (VMSCSIRequest.flagQueueActionEnable, "SRB_FLAGS_QUEUE_ACTION_ENABLE"),
            (VMSCSIRequest.flagDisableSynchTransfer, "SRB_FLAGS_DISABLE_SYNCH_TRANSFER"),
            (VMSCSIRequest.flagDataIn, "SRB_FLAGS_DATA_IN"), (VMSCSIRequest.flagDataOut, "SRB_FLAGS_DATA_OUT"),
            (VMSCSIRequest.flagNoQueueFreeze, "SRB_FLAGS_NO_QUEUE_FREEZE"),
        ]
        for (f, name) in flags { #expect(try linux(name) == UInt64(f), "\(name)") }
        #expect(try linux("SP_UNTAGGED") == UInt64(VMSCSIRequest.untagged))
        #expect(try linux("SRB_SIMPLE_TAG_REQUEST") == UInt64(VMSCSIRequest.simpleTagRequest))
        #expect(try linux("STORVSC_MAX_CMD_LEN") == UInt64(VMSCSIRequest.maxCDBLength))
        #expect(try linux("STORVSC_SENSE_BUFFER_SIZE") == UInt64(VMSCSIRequest.senseBufferSize))
        #expect(try linux("STORVSC_MAX_PKT_SIZE") == UInt64(StorageLimits.maxGuestInboundPacket))
        #expect(try linux("REQUEST_COMPLETION_FLAG") == UInt64(VStorPacket.requestCompletionFlag))
        #expect(try linux("STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL") == UInt64(StorageChannelProperties.flagSupportsMultiChannel))
        #expect(try linux("STORAGE_CHANNEL_EMULATED_IDE_FLAG") == UInt64(StorageLimits.emulatedIDEFlag))
        #expect(try linux("STORAGE_CHANNEL_REMOVABLE_FLAG") == UInt64(StorageLimits.removableFlag))
    }

    @Test func controllerLimitsMatchLinux() throws {
        #expect(try linux("STORVSC_MAX_LUNS_PER_TARGET") == UInt64(StorageControllerKind.scsi.maxLUNsPerTarget))
        #expect(try linux("STORVSC_MAX_TARGETS") == UInt64(StorageControllerKind.scsi.maxTargets))
        #expect(try linux("STORVSC_MAX_CHANNELS") == UInt64(StorageControllerKind.scsi.maxChannels))
        #expect(try linux("STORVSC_IDE_MAX_LUNS_PER_TARGET") == UInt64(StorageControllerKind.ide.maxLUNsPerTarget))
        #expect(try linux("STORVSC_IDE_MAX_TARGETS") == UInt64(StorageControllerKind.ide.maxTargets))
        #expect(try linux("STORVSC_IDE_MAX_CHANNELS") == UInt64(StorageControllerKind.ide.maxChannels))
        #expect(StorageControllerKind(classID: DeviceClass.scsi.guid) == .scsi)
        #expect(StorageControllerKind(classID: DeviceClass.ide.guid) == .ide)
        #expect(StorageControllerKind(classID: DeviceClass.nic.guid) == nil)
    }

    @Test func ntStatusMappingIsOpenVMMs() {
        #expect(SRBStatus.success.ntStatus == .success)
        #expect(SRBStatus.invalidLUN.ntStatus.rawValue == 0xC000_00C0)
        #expect(SRBStatus.noDevice.ntStatus.rawValue == 0xC000_00C0)
        #expect(SRBStatus.busy.ntStatus.rawValue == 0x8000_0011)
        #expect(SRBStatus.dataOverrun.ntStatus.rawValue == 0x8000_0005)
        #expect(SRBStatus.error.withAutosense().ntStatus.rawValue == 0xC000_0185)
        #expect(SRBStatus.error.withAutosense().code == .error)
        #expect(SRBStatus.error.withAutosense().autosenseValid)
    }

    @Test func ideLocationIsWhereLinuxReadsIt() throws {
        let id = IDELocation.instanceID(channel: 1, device: 1)
        let bytes = id.wireBytes
        #expect(bytes[0..<4] == [1, 0, 0, 0])
        // Linux: the target id is instance bytes 4–5.
        #expect(UInt16(bytes[4]) | UInt16(bytes[5]) << 8 == 1)
        #expect(IDELocation.targetID(fromInstance: id) == 1)
        #expect(bytes[6..<8] == [0x99, 0x88])
        let ud = IDELocation.userDefined(pathID: 1, targetID: 0)
        #expect(ud.count == 24)
        #expect(ud[2] == 1 && ud[3] == 0)
        #expect(ud[8..<12] == [2, 0, 0, 0])
    }
}
