import Testing
import VMBusLayoutTesting
import VMBusNetProtocol

/// Our constants against the values compiled into hv_netvsc.ko (constants.txt and enums.txt).
@Suite struct NetConstantsTests {
    func linux(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> UInt64 {
        try #require(LinuxConstants.values[name], "\(name) missing from the fixture", sourceLocation: sourceLocation)
    }

    func linuxEnum(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> UInt64 {
        UInt64(try #require(LinuxConstants.enumValues[name], "\(name) missing from the fixture",
                            sourceLocation: sourceLocation))
    }

    func check(_ pairs: [(UInt64, String)], enums: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (ours, name) in pairs {
            let theirs = enums ? try linuxEnum(name, sourceLocation: sourceLocation)
                               : try linux(name, sourceLocation: sourceLocation)
            #expect(ours == theirs, "\(name)", sourceLocation: sourceLocation)
        }
    }

    @Test func versionsAndTheLinuxTryOrder() throws {
        #expect(NVSPProtocolVersion.all.map(\.rawValue) == LinuxConstants.netvscVersionList)
        #expect(NVSPProtocolVersion.linuxTryOrder.map(\.rawValue) == LinuxConstants.netvscVersionList.reversed())
        try check([
            (UInt64(NVSPProtocolVersion.v1.rawValue), "NVSP_PROTOCOL_VERSION_1"),
            (UInt64(NVSPProtocolVersion.v2.rawValue), "NVSP_PROTOCOL_VERSION_2"),
            (UInt64(NVSPProtocolVersion.v4.rawValue), "NVSP_PROTOCOL_VERSION_4"),
            (UInt64(NVSPProtocolVersion.v5.rawValue), "NVSP_PROTOCOL_VERSION_5"),
            (UInt64(NVSPProtocolVersion.v6.rawValue), "NVSP_PROTOCOL_VERSION_6"),
            (UInt64(NVSPProtocolVersion.v61.rawValue), "NVSP_PROTOCOL_VERSION_61"),
            (UInt64(NVSPProtocolVersion.invalid.rawValue), "NVSP_INVALID_PROTOCOL_VERSION"),
        ])
        #expect(NVSPProtocolVersion.v61.description == "6.1")
        #expect(NVSPProtocolVersion.v61.messageSize == 40)
        #expect(NVSPProtocolVersion.v6.messageSize == 28)
    }

    @Test func nvspMessageTypesMatchLinux() throws {
        let types: [(NVSPMessageType, String)] = [
            (.none, "NVSP_MSG_TYPE_NONE"), (.`init`, "NVSP_MSG_TYPE_INIT"), (.initComplete, "NVSP_MSG_TYPE_INIT_COMPLETE"),
            (.versionMessageStart, "NVSP_VERSION_MSG_START"),
            (.sendNDISVersion, "NVSP_MSG1_TYPE_SEND_NDIS_VER"), (.sendReceiveBuffer, "NVSP_MSG1_TYPE_SEND_RECV_BUF"),
            (.sendReceiveBufferComplete, "NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE"),
            (.revokeReceiveBuffer, "NVSP_MSG1_TYPE_REVOKE_RECV_BUF"), (.sendSendBuffer, "NVSP_MSG1_TYPE_SEND_SEND_BUF"),
            (.sendSendBufferComplete, "NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE"),
            (.revokeSendBuffer, "NVSP_MSG1_TYPE_REVOKE_SEND_BUF"), (.sendRNDISPacket, "NVSP_MSG1_TYPE_SEND_RNDIS_PKT"),
            (.sendRNDISPacketComplete, "NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE"),
            (.sendChimneyDelegatedBuffer, "NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF"),
            (.sendChimneyDelegatedBufferComplete, "NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF_COMP"),
            (.revokeChimneyDelegatedBuffer, "NVSP_MSG2_TYPE_REVOKE_CHIMNEY_DELEGATED_BUF"),
            (.resumeChimneyRXIndication, "NVSP_MSG2_TYPE_RESUME_CHIMNEY_RX_INDICATION"),
            (.terminateChimney, "NVSP_MSG2_TYPE_TERMINATE_CHIMNEY"),
            (.terminateChimneyComplete, "NVSP_MSG2_TYPE_TERMINATE_CHIMNEY_COMP"),
            (.indicateChimneyEvent, "NVSP_MSG2_TYPE_INDICATE_CHIMNEY_EVENT"),
            (.sendChimneyPacket, "NVSP_MSG2_TYPE_SEND_CHIMNEY_PKT"),
            (.sendChimneyPacketComplete, "NVSP_MSG2_TYPE_SEND_CHIMNEY_PKT_COMP"),
            (.postChimneyReceiveRequest, "NVSP_MSG2_TYPE_POST_CHIMNEY_RECV_REQ"),
            (.postChimneyReceiveRequestComplete, "NVSP_MSG2_TYPE_POST_CHIMNEY_RECV_REQ_COMP"),
            (.allocateReceiveBuffer, "NVSP_MSG2_TYPE_ALLOC_RXBUF"),
            (.allocateReceiveBufferComplete, "NVSP_MSG2_TYPE_ALLOC_RXBUF_COMP"),
            (.freeReceiveBuffer, "NVSP_MSG2_TYPE_FREE_RXBUF"), (.sendVMQRNDISPacket, "NVSP_MSG2_TYPE_SEND_VMQ_RNDIS_PKT"),
            (.sendVMQRNDISPacketComplete, "NVSP_MSG2_TYPE_SEND_VMQ_RNDIS_PKT_COMP"),
            (.sendNDISConfig, "NVSP_MSG2_TYPE_SEND_NDIS_CONFIG"),
            (.allocateChimneyHandle, "NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE"),
            (.allocateChimneyHandleComplete, "NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE_COMP"), (.message2Max, "NVSP_MSG2_MAX"),
            (.sendVFAssociation, "NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION"), (.switchDataPath, "NVSP_MSG4_TYPE_SWITCH_DATA_PATH"),
            (.uplinkConnectStateDeprecated, "NVSP_MSG4_TYPE_UPLINK_CONNECT_STATE_DEPRECATED"),
            (.message4Max, "NVSP_MSG4_MAX"), (.oidQueryEx, "NVSP_MSG5_TYPE_OID_QUERY_EX"),
            (.oidQueryExComplete, "NVSP_MSG5_TYPE_OID_QUERY_EX_COMP"), (.subchannel, "NVSP_MSG5_TYPE_SUBCHANNEL"),
            (.sendIndirectionTable, "NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE"), (.message5Max, "NVSP_MSG5_MAX"),
            (.pdAPI, "NVSP_MSG6_TYPE_PD_API"), (.pdPostBatch, "NVSP_MSG6_TYPE_PD_POST_BATCH"), (.message6Max, "NVSP_MSG6_MAX"),
        ]
        try check(types.map { (UInt64($0.0.rawValue), $0.1) }, enums: true)
        // Every number Linux defines has a version; nothing past the last one does.
        for n in UInt32(100)...136 { #expect(NVSPMessageType(rawValue: n).minimumVersion != nil) }
        #expect(NVSPMessageType(rawValue: 137).minimumVersion == nil)
        #expect(NVSPMessageType.sendVFAssociation.minimumVersion == .v4)
        #expect(NVSPMessageType.subchannel.minimumVersion == .v5)
        #expect(NVSPMessageType.pdAPI.minimumVersion == .v6)
    }

    @Test func nvspStatusAndSmallEnumsMatchLinux() throws {
        let statuses: [(NVSPStatus, String)] = [
            (.none, "NVSP_STAT_NONE"), (.success, "NVSP_STAT_SUCCESS"), (.fail, "NVSP_STAT_FAIL"),
            (.protocolTooNew, "NVSP_STAT_PROTOCOL_TOO_NEW"), (.protocolTooOld, "NVSP_STAT_PROTOCOL_TOO_OLD"),
            (.invalidRNDISPacket, "NVSP_STAT_INVALID_RNDIS_PKT"), (.busy, "NVSP_STAT_BUSY"),
            (.protocolUnsupported, "NVSP_STAT_PROTOCOL_UNSUPPORTED"), (.max, "NVSP_STAT_MAX"),
        ]
        try check(statuses.map { (UInt64($0.0.rawValue), $0.1) }, enums: true)
        try check([
            (UInt64(NVSPDataPath.synthetic.rawValue), "NVSP_DATAPATH_SYNTHETIC"),
            (UInt64(NVSPDataPath.vf.rawValue), "NVSP_DATAPATH_VF"), (UInt64(NVSPDataPath.max.rawValue), "NVSP_DATAPATH_MAX"),
            (UInt64(NVSPSubchannelOperation.none.rawValue), "NVSP_SUBCHANNEL_NONE"),
            (UInt64(NVSPSubchannelOperation.allocate.rawValue), "NVSP_SUBCHANNEL_ALLOCATE"),
            (UInt64(NVSPSubchannelOperation.max.rawValue), "NVSP_SUBCHANNEL_MAX"),
            (UInt64(NVSPPacketDirectOperation.config.rawValue), "PD_API_OP_CONFIG"),
            (UInt64(NVSPPacketDirectOperation.switchDataPath.rawValue), "PD_API_OP_SW_DATAPATH"),
            (UInt64(NVSPPacketDirectOperation.openProvider.rawValue), "PD_API_OP_OPEN_PROVIDER"),
            (UInt64(NVSPPacketDirectOperation.closeProvider.rawValue), "PD_API_OP_CLOSE_PROVIDER"),
            (UInt64(NVSPPacketDirectOperation.createQueue.rawValue), "PD_API_OP_CREATE_QUEUE"),
            (UInt64(NVSPPacketDirectOperation.flushQueue.rawValue), "PD_API_OP_FLUSH_QUEUE"),
            (UInt64(NVSPPacketDirectOperation.freeQueue.rawValue), "PD_API_OP_FREE_QUEUE"),
            (UInt64(NVSPPacketDirectOperation.allocateCommonBuffer.rawValue), "PD_API_OP_ALLOC_COM_BUF"),
            (UInt64(NVSPPacketDirectOperation.freeCommonBuffer.rawValue), "PD_API_OP_FREE_COM_BUF"),
            (UInt64(NVSPPacketDirectOperation.max.rawValue), "PD_API_OP_MAX"),
        ], enums: true)
        try check([
            (UInt64(NVSPSendReceiveBuffer.linuxBufferID), "NETVSC_RECEIVE_BUFFER_ID"),
            (UInt64(NVSPSendSendBuffer.linuxBufferID), "NETVSC_SEND_BUFFER_ID"),
            (UInt64(NVSPSendIndirectionTable.linuxEntryCount), "VRSS_SEND_TAB_SIZE"),
        ])
        // -1 in Linux's int, written into the u32 field.
        #expect(NVSPSendRNDISPacket.noSection == UInt32(truncatingIfNeeded: try linux("NETVSC_INVALID_INDEX")))
    }

    @Test func vscCapabilityBitsMatchTheBitfield() throws {
        let layout = try linuxLayout("nvsp_2_vsc_capability")
        let pairs: [(NVSPVSCCapability, String)] = [
            (.vmq, "vmq"), (.chimney, "chimney"), (.sriov, "sriov"), (.ieee8021q, "ieee8021q"),
            (.correlationID, "correlation_id"), (.teaming, "teaming"), (.virtualSubnetID, "vsubnetid"), (.rsc, "rsc"),
        ]
        for (flag, name) in pairs {
            let bit = try #require(layout.field(name)?.bit, "\(name)")
            #expect(flag.rawValue == UInt64(1) << UInt64(bit), "\(name)")
        }
    }

    @Test func rndisMessageTypesStatusesAndOIDsMatchLinux() throws {
        let types: [(RNDISMessageType, String)] = [
            (.packet, "RNDIS_MSG_PACKET"), (.initialize, "RNDIS_MSG_INIT"), (.initializeComplete, "RNDIS_MSG_INIT_C"),
            (.halt, "RNDIS_MSG_HALT"), (.query, "RNDIS_MSG_QUERY"), (.queryComplete, "RNDIS_MSG_QUERY_C"),
            (.set, "RNDIS_MSG_SET"), (.setComplete, "RNDIS_MSG_SET_C"), (.reset, "RNDIS_MSG_RESET"),
            (.resetComplete, "RNDIS_MSG_RESET_C"), (.indicateStatus, "RNDIS_MSG_INDICATE"),
            (.keepalive, "RNDIS_MSG_KEEPALIVE"), (.keepaliveComplete, "RNDIS_MSG_KEEPALIVE_C"), (.bus, "RNDIS_MSG_BUS"),
        ]
        try check(types.map { (UInt64($0.0.rawValue), $0.1) })
        try check([(UInt64(RNDISMessageType.completionFlag), "RNDIS_MSG_COMPLETION"),
                   (UInt64(RNDISMessage.headerSize), "RNDIS_HEADER_SIZE"),
                   (UInt64(RNDISMessage.linuxMaxControlResponseLength), "RNDIS_EXT_LEN"),
                   (UInt64(RNDISInitializeRequest.majorVersion), "RNDIS_MAJOR_VERSION"),
                   (UInt64(RNDISInitializeRequest.minorVersion), "RNDIS_MINOR_VERSION"),
                   (UInt64(RNDISInitializeComplete.deviceFlagConnectionless), "RNDIS_DF_CONNECTIONLESS"),
                   (UInt64(RNDISInitializeComplete.medium802_3), "RNDIS_MEDIUM_802_3"),
                   (UInt64(RNDISMediaState.connected.rawValue), "RNDIS_MEDIA_STATE_CONNECTED"),
                   (UInt64(RNDISMediaState.disconnected.rawValue), "RNDIS_MEDIA_STATE_DISCONNECTED"),
                   (UInt64(RNDISConfigParameterInfo.typeInteger), "RNDIS_CONFIG_PARAM_TYPE_INTEGER"),
                   (UInt64(RNDISConfigParameterInfo.typeString), "RNDIS_CONFIG_PARAM_TYPE_STRING")])
        let statuses: [(RNDISStatus, String)] = [
            (.success, "RNDIS_STATUS_SUCCESS"), (.pending, "RNDIS_STATUS_PENDING"), (.failure, "RNDIS_STATUS_FAILURE"),
            (.notSupported, "RNDIS_STATUS_NOT_SUPPORTED"), (.invalidOID, "RNDIS_STATUS_INVALID_OID"),
            (.bufferOverflow, "RNDIS_STATUS_BUFFER_OVERFLOW"), (.invalidData, "RNDIS_STATUS_INVALID_DATA"),
            (.invalidLength, "RNDIS_STATUS_INVALID_LENGTH"), (.bufferTooShort, "RNDIS_STATUS_BUFFER_TOO_SHORT"),
            (.resources, "RNDIS_STATUS_RESOURCES"), (.mediaConnect, "RNDIS_STATUS_MEDIA_CONNECT"),
            (.mediaDisconnect, "RNDIS_STATUS_MEDIA_DISCONNECT"), (.networkChange, "RNDIS_STATUS_NETWORK_CHANGE"),
            (.linkSpeedChange, "RNDIS_STATUS_LINK_SPEED_CHANGE"), (.tokenRingOpenError, "RNDIS_STATUS_TOKEN_RING_OPEN_ERROR"),
        ]
        try check(statuses.map { (UInt64($0.0.rawValue), $0.1) })
        #expect(RNDISStatus.failure.isError && !RNDISStatus.mediaConnect.isError && !RNDISStatus.success.isError)
    }

    @Test func everyStatusAndOIDWeNameIsLinuxsValue() throws {
        // The generated lists: every RNDIS_STATUS_* and RNDIS_OID_GEN_*/802_3_* of rndis.h is declared, by
        // value, so each of Linux's values is one of ours.
        let ourStatuses: Set<UInt32> = [
            RNDISStatus.success, .pending, .notRecognized, .notCopied, .notAccepted, .callActive, .online, .resetStart,
            .resetEnd, .ringStatus, .closed, .wanLineUp, .wanLineDown, .wanFragment, .mediaConnect, .mediaDisconnect,
            .hardwareLineUp, .hardwareLineDown, .interfaceUp, .interfaceDown, .mediaBusy, .mediaSpecificIndication,
            .linkSpeedChange, .networkChange, .notResettable, .softErrors, .hardErrors, .bufferOverflow, .failure,
            .resources, .notSupported, .closing, .badVersion, .badCharacteristics, .adapterNotFound, .openFailed,
            .deviceFailed, .multicastFull, .multicastExists, .multicastNotFound, .requestAborted, .resetInProgress,
            .closingIndicating, .invalidPacket, .openListFull, .adapterNotReady, .adapterNotOpen, .notIndicating,
            .invalidLength, .invalidData, .bufferTooShort, .invalidOID, .adapterRemoved, .unsupportedMedia,
            .groupAddressInUse, .fileNotFound, .errorReadingFile, .alreadyMapped, .resourceConflict, .noCable,
            .invalidSAP, .sapInUse, .invalidAddress, .vcNotActivated, .destOutOfOrder, .vcNotAvailable,
            .cellrateNotAvailable, .incompatableQoS, .aalParamsUnsupported, .noRouteToDestination, .tokenRingOpenError,
        ].reduce(into: []) { $0.insert($1.rawValue) }
        let linuxStatuses = LinuxConstants.values.filter { $0.key.hasPrefix("RNDIS_STATUS_") }
        #expect(linuxStatuses.count == ourStatuses.count)
        for (name, v) in linuxStatuses { #expect(ourStatuses.contains(UInt32(v)), "\(name)") }

        let linuxOIDs = LinuxConstants.values.filter {
            ($0.key.hasPrefix("RNDIS_OID_GEN_") && !$0.key.contains("_CO_")) || $0.key.hasPrefix("RNDIS_OID_802_3_")
        }
        #expect(linuxOIDs.count == 74)
        let used: [(RNDISOID, String)] = [
            (.genMaximumFrameSize, "RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE"), (.genLinkSpeed, "RNDIS_OID_GEN_LINK_SPEED"),
            (.genCurrentPacketFilter, "RNDIS_OID_GEN_CURRENT_PACKET_FILTER"),
            (.genMediaConnectStatus, "RNDIS_OID_GEN_MEDIA_CONNECT_STATUS"),
            (.genFriendlyName, "RNDIS_OID_GEN_FRIENDLY_NAME"),
            (.genRNDISConfigParameter, "RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER"),
            (.genVendorID, "RNDIS_OID_GEN_VENDOR_ID"), (.genMACOptions, "RNDIS_OID_GEN_MAC_OPTIONS"),
            (.genRcvCRCError, "RNDIS_OID_GEN_RCV_CRC_ERROR"), (.genXmitOK, "RNDIS_OID_GEN_XMIT_OK"),
            (.genSupportedList, "RNDIS_OID_GEN_SUPPORTED_LIST"), (.genResetVerifyParameters, "RNDIS_OID_GEN_RESET_VERIFY_PARAMETERS"),
            (.ieee802_3PermanentAddress, "RNDIS_OID_802_3_PERMANENT_ADDRESS"),
            (.ieee802_3CurrentAddress, "RNDIS_OID_802_3_CURRENT_ADDRESS"),
            (.ieee802_3MulticastList, "RNDIS_OID_802_3_MULTICAST_LIST"),
            (.ieee802_3MaximumListSize, "RNDIS_OID_802_3_MAXIMUM_LIST_SIZE"),
            (.ieee802_3XmitLateCollisions, "RNDIS_OID_802_3_XMIT_LATE_COLLISIONS"),
            (.genReceiveScaleCapabilities, "OID_GEN_RECEIVE_SCALE_CAPABILITIES"),
            (.genReceiveScaleParameters, "OID_GEN_RECEIVE_SCALE_PARAMETERS"),
            (.offloadEncapsulation, "OID_OFFLOAD_ENCAPSULATION"),
            (.tcpOffloadCurrentConfig, "OID_TCP_OFFLOAD_CURRENT_CONFIG"),
            (.tcpOffloadParameters, "OID_TCP_OFFLOAD_PARAMETERS"),
            (.tcpOffloadHardwareCapabilities, "OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES"),
            (.tcpConnectionOffloadCurrentConfig, "OID_TCP_CONNECTION_OFFLOAD_CURRENT_CONFIG"),
            (.tcpConnectionOffloadHardwareCapabilities, "OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES"),
        ]
        try check(used.map { (UInt64($0.0.rawValue), $0.1) })
    }

    @Test func ndisConstantsMatchLinux() throws {
        try check([
            (UInt64(NDISObjectHeader.typeDefault), "NDIS_OBJECT_TYPE_DEFAULT"),
            (UInt64(NDISObjectHeader.typeRSSCapabilities), "NDIS_OBJECT_TYPE_RSS_CAPABILITIES"),
            (UInt64(NDISObjectHeader.typeRSSParameters), "NDIS_OBJECT_TYPE_RSS_PARAMETERS"),
            (UInt64(NDISObjectHeader.typeOffload), "NDIS_OBJECT_TYPE_OFFLOAD"),
            (UInt64(NDISReceiveScaleCapabilities.revision2), "NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2"),
            (UInt64(NDISReceiveScaleParameters.revision2), "NDIS_RECEIVE_SCALE_PARAMETERS_REVISION_2"),
            (UInt64(NDISReceiveScaleCapabilities.capsMessageSignaledInterrupts), "NDIS_RSS_CAPS_MESSAGE_SIGNALED_INTERRUPTS"),
            (UInt64(NDISReceiveScaleCapabilities.capsClassificationAtISR), "NDIS_RSS_CAPS_CLASSIFICATION_AT_ISR"),
            (UInt64(NDISReceiveScaleCapabilities.capsClassificationAtDPC), "NDIS_RSS_CAPS_CLASSIFICATION_AT_DPC"),
            (UInt64(NDISReceiveScaleCapabilities.capsUsingMSIX), "NDIS_RSS_CAPS_USING_MSI_X"),
            (UInt64(NDISReceiveScaleCapabilities.capsRSSAvailableOnPorts), "NDIS_RSS_CAPS_RSS_AVAILABLE_ON_PORTS"),
            (UInt64(NDISReceiveScaleCapabilities.capsSupportsMSIX), "NDIS_RSS_CAPS_SUPPORTS_MSI_X"),
            (UInt64(NDISReceiveScaleCapabilities.capsHashTypeTCPIPv4), "NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4"),
            (UInt64(NDISReceiveScaleCapabilities.capsHashTypeTCPIPv6), "NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6"),
            (UInt64(NDISReceiveScaleCapabilities.capsHashTypeTCPIPv6Ex), "NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6_EX"),
            (UInt64(NDISReceiveScaleParameters.flagBaseCPUUnchanged), "NDIS_RSS_PARAM_FLAG_BASE_CPU_UNCHANGED"),
            (UInt64(NDISReceiveScaleParameters.flagHashInfoUnchanged), "NDIS_RSS_PARAM_FLAG_HASH_INFO_UNCHANGED"),
            (UInt64(NDISReceiveScaleParameters.flagIndirectionTableUnchanged), "NDIS_RSS_PARAM_FLAG_ITABLE_UNCHANGED"),
            (UInt64(NDISReceiveScaleParameters.flagHashKeyUnchanged), "NDIS_RSS_PARAM_FLAG_HASH_KEY_UNCHANGED"),
            (UInt64(NDISReceiveScaleParameters.flagDisableRSS), "NDIS_RSS_PARAM_FLAG_DISABLE_RSS"),
            (UInt64(NDISReceiveScaleParameters.maxIndirectionTableEntries), "ITAB_NUM_MAX"),
            (UInt64(NDISReceiveScaleParameters.linuxIndirectionTableEntries), "ITAB_NUM"),
            (UInt64(NDISReceiveScaleParameters.maxHashKeySize), "NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_2"),
            (UInt64(NDISReceiveScaleParameters.maxHashKeySize), "NETVSC_HASH_KEYLEN"),
            (UInt64(NDISHashInfo.toeplitz.rawValue), "NDIS_HASH_FUNC_TOEPLITZ"),
            (UInt64(NDISHashInfo.ipv4.rawValue), "NDIS_HASH_IPV4"), (UInt64(NDISHashInfo.tcpIPv4.rawValue), "NDIS_HASH_TCP_IPV4"),
            (UInt64(NDISHashInfo.ipv6.rawValue), "NDIS_HASH_IPV6"), (UInt64(NDISHashInfo.ipv6Ex.rawValue), "NDIS_HASH_IPV6_EX"),
            (UInt64(NDISHashInfo.tcpIPv6.rawValue), "NDIS_HASH_TCP_IPV6"),
            (UInt64(NDISHashInfo.tcpIPv6Ex.rawValue), "NDIS_HASH_TCP_IPV6_EX"),
            (UInt64(NDISOffload.wireSize), "NDIS_OFFLOAD_SIZE"), (UInt64(NDISOffload.size6_0), "NDIS_OFFLOAD_SIZE_6_0"),
            (UInt64(NDISOffload.size6_1), "NDIS_OFFLOAD_SIZE_6_1"),
            (UInt64(NDISOffload.revision1), "NDIS_OFFLOAD_PARAMETERS_REVISION_1"),
            (UInt64(NDISOffload.revision2), "NDIS_OFFLOAD_PARAMETERS_REVISION_2"),
            (UInt64(NDISOffload.revision3), "NDIS_OFFLOAD_PARAMETERS_REVISION_3"),
            (UInt64(NDISOffloadParams.revision3), "NDIS_OFFLOAD_PARAMETERS_REVISION_3"),
            (UInt64(NDISOffload.encapsulationNone), "NDIS_OFFLOAD_ENCAP_NONE"),
            (UInt64(NDISOffload.encapsulationNull), "NDIS_OFFLOAD_ENCAP_NULL"),
            (UInt64(NDISOffload.encapsulation8023), "NDIS_OFFLOAD_ENCAP_8023"),
            (UInt64(NDISOffload.encapsulation8023PQ), "NDIS_OFFLOAD_ENCAP_8023PQ"),
            (UInt64(NDISOffload.encapsulation8023PQOOB), "NDIS_OFFLOAD_ENCAP_8023PQ_OOB"),
            (UInt64(NDISOffload.encapsulationRFC1483), "NDIS_OFFLOAD_ENCAP_RFC1483"),
            (UInt64(NDISChecksumOffload.capIP4Options), "NDIS_TXCSUM_CAP_IP4OPT"),
            (UInt64(NDISChecksumOffload.capTCP4Options), "NDIS_TXCSUM_CAP_TCP4OPT"),
            (UInt64(NDISChecksumOffload.capTCP4), "NDIS_TXCSUM_CAP_TCP4"),
            (UInt64(NDISChecksumOffload.capUDP4), "NDIS_TXCSUM_CAP_UDP4"),
            (UInt64(NDISChecksumOffload.capIP4), "NDIS_TXCSUM_CAP_IP4"),
            (UInt64(NDISChecksumOffload.capIP4Options), "NDIS_RXCSUM_CAP_IP4OPT"),
            (UInt64(NDISChecksumOffload.capTCP4Options), "NDIS_RXCSUM_CAP_TCP4OPT"),
            (UInt64(NDISChecksumOffload.capTCP4), "NDIS_RXCSUM_CAP_TCP4"),
            (UInt64(NDISChecksumOffload.capUDP4), "NDIS_RXCSUM_CAP_UDP4"),
            (UInt64(NDISChecksumOffload.capIP4), "NDIS_RXCSUM_CAP_IP4"),
            (UInt64(NDISChecksumOffload.allTCP4), "NDIS_TXCSUM_ALL_TCP4"),
            (UInt64(NDISChecksumOffload.capIP6Extensions), "NDIS_TXCSUM_CAP_IP6EXT"),
            (UInt64(NDISChecksumOffload.capTCP6Options), "NDIS_TXCSUM_CAP_TCP6OPT"),
            (UInt64(NDISChecksumOffload.capTCP6), "NDIS_TXCSUM_CAP_TCP6"),
            (UInt64(NDISChecksumOffload.capUDP6), "NDIS_TXCSUM_CAP_UDP6"),
            (UInt64(NDISChecksumOffload.capIP6Extensions), "NDIS_RXCSUM_CAP_IP6EXT"),
            (UInt64(NDISChecksumOffload.capTCP6Options), "NDIS_RXCSUM_CAP_TCP6OPT"),
            (UInt64(NDISChecksumOffload.capTCP6), "NDIS_RXCSUM_CAP_TCP6"),
            (UInt64(NDISChecksumOffload.capUDP6), "NDIS_RXCSUM_CAP_UDP6"),
            (UInt64(NDISChecksumOffload.allTCP6), "NDIS_TXCSUM_ALL_TCP6"),
            (UInt64(NDISLSOv2Offload.capIP6Extensions), "NDIS_LSOV2_CAP_IP6EXT"),
            (UInt64(NDISLSOv2Offload.capTCP6Options), "NDIS_LSOV2_CAP_TCP6OPT"),
            (UInt64(NDISLSOv2Offload.capIP6), "NDIS_LSOV2_CAP_IP6"),
            (UInt64(NDISOffloadParams.noChange), "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE"),
            (UInt64(NDISOffloadParams.txRXDisabled), "NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED"),
            (UInt64(NDISOffloadParams.txEnabledRXDisabled), "NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED"),
            (UInt64(NDISOffloadParams.rxEnabledTXDisabled), "NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED"),
            (UInt64(NDISOffloadParams.txRXEnabled), "NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED"),
            (UInt64(NDISOffloadParams.lsoV2Disabled), "NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED"),
            (UInt64(NDISOffloadParams.lsoV2Enabled), "NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED"),
            (UInt64(NDISOffloadParams.lsoV1Enabled), "NDIS_OFFLOAD_PARAMETERS_LSOV1_ENABLED"),
            (UInt64(NDISOffloadParams.rscDisabled), "NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED"),
            (UInt64(NDISOffloadParams.rscEnabled), "NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED"),
            (UInt64(NDISOffloadParams.version4Size), "VERSION_4_OFFLOAD_SIZE"),
            (UInt64(NDISTCPLSOInfo.v2Type), "NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE"),
            (UInt64(NDISTCPLSOInfo.ipVersion4), "NDIS_TCP_LARGE_SEND_OFFLOAD_IPV4"),
            (UInt64(NDISTCPLSOInfo.ipVersion6), "NDIS_TCP_LARGE_SEND_OFFLOAD_IPV6"),
            (UInt64(RNDISPacketInfoID.version1), "RNDIS_PKTINFO_ID_V1"),
            (UInt64(RNDISPacketInfoID.flagSubAllocation), "RNDIS_PKTINFO_SUBALLOC"),
            (UInt64(RNDISPacketInfoID.flagFirstFragment), "RNDIS_PKTINFO_1ST_FRAG"),
            (UInt64(RNDISPacketInfoID.flagLastFragment), "RNDIS_PKTINFO_LAST_FRAG"),
            (UInt64(RNDISPacketInfo.entrySize), "NDIS_CSUM_PPI_SIZE"), (UInt64(RNDISPacketInfo.entrySize), "NDIS_LSO_PPI_SIZE"),
            (UInt64(RNDISPacketInfo.entrySize), "NDIS_VLAN_PPI_SIZE"), (UInt64(RNDISPacketInfo.entrySize), "NDIS_HASH_PPI_SIZE"),
        ])
        let filters: [(NDISPacketFilter, String)] = [
            (.directed, "NDIS_PACKET_TYPE_DIRECTED"), (.multicast, "NDIS_PACKET_TYPE_MULTICAST"),
            (.allMulticast, "NDIS_PACKET_TYPE_ALL_MULTICAST"), (.broadcast, "NDIS_PACKET_TYPE_BROADCAST"),
            (.sourceRouting, "NDIS_PACKET_TYPE_SOURCE_ROUTING"), (.promiscuous, "NDIS_PACKET_TYPE_PROMISCUOUS"),
            (.smt, "NDIS_PACKET_TYPE_SMT"), (.allLocal, "NDIS_PACKET_TYPE_ALL_LOCAL"), (.group, "NDIS_PACKET_TYPE_GROUP"),
            (.allFunctional, "NDIS_PACKET_TYPE_ALL_FUNCTIONAL"), (.functional, "NDIS_PACKET_TYPE_FUNCTIONAL"),
            (.macFrame, "NDIS_PACKET_TYPE_MAC_FRAME"),
        ]
        try check(filters.map { (UInt64($0.0.rawValue), $0.1) })
        // Linux reserves RNDIS_AND_PPI_SIZE per send: sizeof(struct rndis_message) plus all four transmit PPIs.
        let all = RNDISPacketInfo(checksum: .init(), largeSend: .init(), vlan: .init(), hashValue: 0)
        let rndisMessage = try linuxLayout(RNDISMessage.cName).size
        #expect(UInt64(rndisMessage + all.encodedLength) == (try linux("RNDIS_AND_PPI_SIZE")))
        #expect(RNDISPacket.messageLength(info: all, frameLength: 0) == 8 + 36 + 64)
        #expect(UInt64(all.encodedLength) == (try linux("NDIS_ALL_PPI_SIZE")))
    }

    @Test func ppiTypesMatchLinux() throws {
        let types: [(PerPacketInfoType, String)] = [
            (.tcpIPChecksum, "TCPIP_CHKSUM_PKTINFO"), (.ipsec, "IPSEC_PKTINFO"), (.tcpLargeSend, "TCP_LARGESEND_PKTINFO"),
            (.classificationHandle, "CLASSIFICATION_HANDLE_PKTINFO"), (.ndisReserved, "NDIS_RESERVED"),
            (.scatterGatherList, "SG_LIST_PKTINFO"), (.ieee8021Q, "IEEE_8021Q_INFO"), (.original, "ORIGINAL_PKTINFO"),
            (.packetCancelID, "PACKET_CANCEL_ID"), (.nblHashValue, "NBL_HASH_VALUE"),
            (.originalNetBufferList, "ORIGINAL_NET_BUFLIST"), (.cachedNetBufferList, "CACHED_NET_BUFLIST"),
            (.shortPacketPadInfo, "SHORT_PKT_PADINFO"), (.max, "MAX_PER_PKT_INFO"),
            (.rndisPacketInfoID, "RNDIS_PKTINFO_ID"), (.rndisPacketInfoMax, "RNDIS_PKTINFO_MAX"),
        ]
        try check(types.map { (UInt64($0.0.rawValue), $0.1) }, enums: true)
    }

    @Test func linuxDefaultRSSKeyIsTheTableInTheModule() {
        #expect(NDISReceiveScaleParameters.linuxHashKey == LinuxConstants.netvscHashKey)
    }
}
