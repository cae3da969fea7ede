import Testing
import VMBusICProtocol
import VMBusLayoutTesting
import VMBusProtocol
import VMBusWire

/// Our constants, version lists and class GUIDs against the values compiled into hv_utils.ko.
@Suite struct ICConstantsTests {
    @Test func versionListsAreLinuxsTablesInTryOrder() throws {
        let tables: [(String, [ICVersion])] = [
            ("hv_util.fw_versions", ICService.fwVersions), ("sd_versions", ICService.sdVersions),
            ("ts_versions", ICService.tsVersions), ("hb_versions", ICService.hbVersions),
            ("hv_kvp.fw_versions", ICService.kvpFWVersions), ("kvp_versions", ICService.kvpVersions),
            ("hv_snapshot.fw_versions", ICService.vssFWVersions), ("vss_versions", ICService.vssVersions),
        ]
        for (name, ours) in tables {
            let linux = try #require(ICLinuxConstants.versionTables[name], "\(name)")
            #expect(ours.map(\.packed) == linux, "\(name)")
        }
        // Counts Linux passes along with each table.
        #expect(try icConstant("SD_VER_COUNT") == UInt64(ICService.sdVersions.count))
        #expect(try icConstant("TS_VER_COUNT") == UInt64(ICService.tsVersions.count))
        #expect(try icConstant("HB_VER_COUNT") == UInt64(ICService.hbVersions.count))
        #expect(try icConstant("KVP_VER_COUNT") == UInt64(ICService.kvpVersions.count))
        #expect(try icConstant("VSS_VER_COUNT") == UInt64(ICService.vssVersions.count))
        #expect(try icConstant("FW_VER_COUNT", in: "drivers/hv/hv_snapshot.c") == UInt64(ICService.vssFWVersions.count))
    }

    @Test func namedVersionsMatchLinux() throws {
        let pairs: [(ICVersion, String, String?)] = [
            (.utilFWVersion, "UTIL_FW_VERSION", nil), (.utilWS2K8FWVersion, "UTIL_WS2K8_FW_VERSION", nil),
            (.sdVersion3_2, "SD_VERSION_3_2", nil), (.sdVersion3_1, "SD_VERSION_3_1", nil),
            (.sdVersion, "SD_VERSION", nil), (.sdVersion1, "SD_VERSION_1", nil),
            (.tsVersion, "TS_VERSION", nil), (.tsVersion3, "TS_VERSION_3", nil), (.tsVersion1, "TS_VERSION_1", nil),
            (.hbVersion, "HB_VERSION", nil), (.hbVersion1, "HB_VERSION_1", nil),
            (.kvpWin8SrvVersion, "WIN8_SRV_VERSION", "drivers/hv/hv_kvp.c"),
            (.kvpWin7SrvVersion, "WIN7_SRV_VERSION", "drivers/hv/hv_kvp.c"),
            (.kvpWS2008SrvVersion, "WS2008_SRV_VERSION", "drivers/hv/hv_kvp.c"),
            (.vssVersion, "VSS_VERSION", nil),
            (.fcopyWin8SrvVersion, "WIN8_SRV_VERSION", "tools/hv/hv_fcopy_uio_daemon.c"),
        ]
        for (v, name, source) in pairs { #expect(try icConstant(name, in: source) == UInt64(v.packed), "\(name)") }
        #expect(try icConstant("FCOPY_VER_COUNT") == UInt64(ICService.fcopyVersions.count))
        #expect(try icConstant("FW_VER_COUNT", in: "tools/hv/hv_fcopy_uio_daemon.c") == UInt64(ICService.fcopyFWVersions.count))
        #expect(ICVersion(packed: 0x0003_0002) == .sdVersion3_2)
        #expect(ICVersion(3, 2).description == "3.2")
        #expect(ICVersion(4, 0) > ICVersion(3, 65535))
    }

    @Test func framingConstantsMatchLinux() throws {
        let types: [(ICMessageType, String)] = [
            (.negotiate, "ICMSGTYPE_NEGOTIATE"), (.heartbeat, "ICMSGTYPE_HEARTBEAT"),
            (.kvpExchange, "ICMSGTYPE_KVPEXCHANGE"), (.shutdown, "ICMSGTYPE_SHUTDOWN"),
            (.timeSync, "ICMSGTYPE_TIMESYNC"), (.vss, "ICMSGTYPE_VSS"), (.fcopy, "ICMSGTYPE_FCOPY"),
        ]
        for (t, name) in types {
            #expect(try icConstant(name) == UInt64(t.rawValue), "\(name)")
            #expect(t.description == name)
        }
        #expect(try icConstant("ICMSGHDRFLAG_TRANSACTION") == UInt64(ICMessageFlags.transaction.rawValue))
        #expect(try icConstant("ICMSGHDRFLAG_REQUEST") == UInt64(ICMessageFlags.request.rawValue))
        #expect(try icConstant("ICMSGHDRFLAG_RESPONSE") == UInt64(ICMessageFlags.response.rawValue))
        #expect(try icConstant("IC_VERSION_NEGOTIATION_MAX_VER_COUNT") == UInt64(ICNegotiateMessage.maxVersionCount))
        #expect(try icConstant("ICTIMESYNCFLAG_PROBE") == UInt64(TimeSyncFlags.probe.rawValue))
        #expect(try icConstant("ICTIMESYNCFLAG_SYNC") == UInt64(TimeSyncFlags.sync.rawValue))
        #expect(try icConstant("ICTIMESYNCFLAG_SAMPLE") == UInt64(TimeSyncFlags.sample.rawValue))
        #expect(try icConstant("WLTIMEDELTA") == TimeSyncLayout.windowsEpochDelta)
    }

    @Test func statusCodesMatchLinux() throws {
        let codes: [(ICStatus, String)] = [
            (.ok, "HV_S_OK"), (.fail, "HV_E_FAIL"), (.cont, "HV_S_CONT"),
            (.errorNotSupported, "HV_ERROR_NOT_SUPPORTED"), (.errorMachineLocked, "HV_ERROR_MACHINE_LOCKED"),
            (.errorDeviceNotConnected, "HV_ERROR_DEVICE_NOT_CONNECTED"), (.invalidArg, "HV_INVALIDARG"),
            (.guidNotFound, "HV_GUID_NOTFOUND"), (.errorAlreadyExists, "HV_ERROR_ALREADY_EXISTS"),
            (.errorDiskFull, "HV_ERROR_DISK_FULL"),
        ]
        for (s, name) in codes {
            #expect(try icConstant(name) == UInt64(s.rawValue), "\(name)")
            #expect(s.description == name)
        }
    }

    @Test func serviceConstantsMatchLinux() throws {
        func e(_ name: String) throws -> Int64 { try #require(ICLinuxConstants.enumValues[name], "\(name)") }
        let kvpOps: [(KVPOperation, String)] = [
            (.get, "KVP_OP_GET"), (.set, "KVP_OP_SET"), (.delete, "KVP_OP_DELETE"), (.enumerate, "KVP_OP_ENUMERATE"),
            (.getIPInfo, "KVP_OP_GET_IP_INFO"), (.setIPInfo, "KVP_OP_SET_IP_INFO"), (.count, "KVP_OP_COUNT"),
        ]
        for (op, name) in kvpOps { #expect(try e(name) == Int64(op.rawValue), "\(name)") }
        #expect(try icConstant("KVP_OP_REGISTER") == UInt64(KVPOperation.register.rawValue))
        #expect(try icConstant("KVP_OP_REGISTER1") == UInt64(KVPOperation.register1.rawValue))
        let pools: [(KVPPool, String)] = [
            (.external, "KVP_POOL_EXTERNAL"), (.guest, "KVP_POOL_GUEST"), (.auto, "KVP_POOL_AUTO"),
            (.autoExternal, "KVP_POOL_AUTO_EXTERNAL"), (.autoInternal, "KVP_POOL_AUTO_INTERNAL"),
        ]
        for (p, name) in pools { #expect(try e(name) == Int64(p.rawValue), "\(name)") }
        #expect(try e("KVP_POOL_COUNT") == Int64(KVPPool.count))
        #expect(KVPPool.all.allSatisfy(\.isValid) && !KVPPool(rawValue: 5).isValid)
        #expect(try icConstant("REG_SZ") == UInt64(KVPValueType.sz.rawValue))
        #expect(try icConstant("REG_U32") == UInt64(KVPValueType.u32.rawValue))
        #expect(try icConstant("REG_U64") == UInt64(KVPValueType.u64.rawValue))
        #expect(try icConstant("HV_KVP_EXCHANGE_MAX_KEY_SIZE") == UInt64(KVPExchangeValue.maxKeySize))
        #expect(try icConstant("HV_KVP_EXCHANGE_MAX_VALUE_SIZE") == UInt64(KVPExchangeValue.maxValueSize))
        #expect(try icConstant("MAX_ADAPTER_ID_SIZE") == UInt64(KVPIPAddressValue.maxAdapterIDSize))
        #expect(try icConstant("MAX_IP_ADDR_SIZE") == UInt64(KVPIPAddressValue.maxIPAddrSize))
        #expect(try icConstant("MAX_GATEWAY_SIZE") == UInt64(KVPIPAddressValue.maxGatewaySize))
        #expect(try icConstant("ADDR_FAMILY_NONE") == UInt64(KVPIPAddressValue.addrFamilyNone))
        #expect(try icConstant("ADDR_FAMILY_IPV4") == UInt64(KVPIPAddressValue.addrFamilyIPv4))
        #expect(try icConstant("ADDR_FAMILY_IPV6") == UInt64(KVPIPAddressValue.addrFamilyIPv6))

        let vssOps: [(VSSOperation, String)] = [
            (.create, "VSS_OP_CREATE"), (.delete, "VSS_OP_DELETE"), (.hotBackup, "VSS_OP_HOT_BACKUP"),
            (.getDMInfo, "VSS_OP_GET_DM_INFO"), (.buComplete, "VSS_OP_BU_COMPLETE"), (.freeze, "VSS_OP_FREEZE"),
            (.thaw, "VSS_OP_THAW"), (.autoRecover, "VSS_OP_AUTO_RECOVER"), (.count, "VSS_OP_COUNT"),
        ]
        for (op, name) in vssOps { #expect(try e(name) == Int64(op.rawValue), "\(name)") }
        #expect(try icConstant("VSS_OP_REGISTER") == UInt64(VSSOperation.register.rawValue))
        #expect(try icConstant("VSS_OP_REGISTER1") == UInt64(VSSOperation.register1.rawValue))
        #expect(try icConstant("VSS_HBU_NO_AUTO_RECOVERY") == UInt64(VSSCheckFeature.hbuNoAutoRecovery))

        let fcopyOps: [(FCopyOperation, String)] = [
            (.startFileCopy, "START_FILE_COPY"), (.writeToFile, "WRITE_TO_FILE"),
            (.completeFCopy, "COMPLETE_FCOPY"), (.cancelFCopy, "CANCEL_FCOPY"),
        ]
        for (op, name) in fcopyOps { #expect(try e(name) == Int64(op.rawValue), "\(name)") }
        #expect(try icConstant("OVER_WRITE") == UInt64(FCopyFlags.overWrite.rawValue))
        #expect(try icConstant("CREATE_PATH") == UInt64(FCopyFlags.createPath.rawValue))
        #expect(try icConstant("W_MAX_PATH") == UInt64(FCopyStart.maxPath))
        #expect(try icConstant("DATA_FRAGMENT") == UInt64(FCopyData.dataFragment))
    }

    @Test func classGUIDsAreLinuxsWireBytes() throws {
        let names: [(ICService, String)] = [
            (.heartbeat, "HV_HEART_BEAT_GUID"), (.shutdown, "HV_SHUTDOWN_GUID"), (.timeSync, "HV_TS_GUID"),
            (.kvp, "HV_KVP_GUID"), (.vss, "HV_VSS_GUID"), (.fcopy, "HV_FCOPY_GUID"),
        ]
        for (service, name) in names {
            let linux = try #require(LinuxConstants.guids[name], "\(name)")
            #expect(service.classID.wireBytes == linux.bytes, "\(name)")
            #expect(service.classID.description == linux.string, "\(name)")
            #expect(service.deviceClass.cName == name)
            #expect(ICService.lookup(service.classID) == service)
        }
        #expect(ICService.all.count == 6)
        #expect(Set(ICService.all.map(\.classID)).count == 6)
        #expect(ICService.lookup(DeviceClass.scsi.guid) == nil)
    }
}
