import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

@Suite struct SynICTests {
    @Test func aSlotCarriesAChannelMessageAndItsSize() throws {
        let message = Samples.rescind.wireBytes
        let slot = HvMessage(channelMessage: message, pending: true)
        #expect(slot.header.messageType == .vmbusChannelMessage)
        #expect(slot.header.payloadSize == 12)
        #expect(slot.header.messageFlags.contains(.messagePending))
        #expect(slot.payload.count == 240)
        let decoded = try HvMessage(wireBytes: slot.wireBytes)
        #expect(decoded == slot)
        #expect(try ChannelMessage.parse(decoded.validPayload()) == .rescindChannelOffer(Samples.rescind))
    }

    @Test func aPayloadSizeAbove240IsRefused() throws {
        var bytes = HvMessage(channelMessage: [1, 2, 3]).wireBytes
        bytes[4] = 241
        let slot = try HvMessage(wireBytes: bytes)
        #expect(throws: WireError.countTooLarge(field: "hv_message_header.payload_size", count: 241, limit: 240)) {
            try slot.validPayload()
        }
        bytes[4] = 240
        #expect(try HvMessage(wireBytes: bytes).validPayload().count == 240)
    }

    @Test func aPostMessageInputCarriesTheConnectionIDAndPayload() throws {
        let input = HvInputPostMessage(connectionID: VMBusConnectionID.message4, channelMessage: Samples.initiateContact.wireBytes)
        #expect(input.payloadSize == 40)
        #expect(input.messageType == .vmbusChannelMessage)
        let decoded = try HvInputPostMessage(wireBytes: input.wireBytes)
        #expect(decoded == input)
        #expect(try decoded.validPayload() == Samples.initiateContact.wireBytes)
        var big = input
        big.payloadSize = 0x1_0000
        #expect(throws: WireError.self) { try big.validPayload() }
    }

    @Test func payloadsArePaddedOrTruncatedTo240Bytes() {
        var slot = HvMessage(header: HvMessageHeader(messageType: .none, payloadSize: 0), payload: [1])
        #expect(slot.payload.count == 240)
        slot.payload = [UInt8](repeating: 7, count: 300)
        #expect(slot.payload.count == 240)
        var input = HvInputPostMessage(connectionID: 1, payloadSize: 0, payload: [])
        input.payload = [1, 2]
        #expect(input.payload.count == 240)
        #expect(HvMessage.payloadByteCount == 240)
    }

    @Test func synICConstantsMatchLinux() {
        #expect(LinuxConstants.values["HV_MESSAGE_SIZE"] == UInt64(VMBusSynIC.messageSize))
        #expect(LinuxConstants.values["HV_MESSAGE_PAYLOAD_BYTE_COUNT"] == UInt64(VMBusSynIC.messagePayloadByteCount))
        #expect(LinuxConstants.values["HV_SYNIC_SINT_COUNT"] == UInt64(VMBusSynIC.sintCount))
        #expect(LinuxConstants.values["HV_EVENT_FLAGS_COUNT"] == UInt64(VMBusSynIC.eventFlagsCount))
        #expect(LinuxConstants.values["HVCALL_POST_MESSAGE"] == UInt64(VMBusSynIC.hypercallPostMessage))
        #expect(LinuxConstants.values["HVCALL_SIGNAL_EVENT"] == UInt64(VMBusSynIC.hypercallSignalEvent))
        #expect(LinuxConstants.enumValues["VMBUS_MESSAGE_SINT"] == Int64(VMBusSynIC.messageSINT))
        #expect(VMBusSynIC.messageSINT == VMBusConnectionID.messageSINT)
        #expect(LinuxLayouts.layout("hv_message_page")?.size == VMBusSynIC.sintCount * VMBusSynIC.messageSize)
    }

    @Test func messageTypeValuesMatchLinux() {
        let pairs: [(HvMessageType, String)] = [
            (.none, "HVMSG_NONE"), (.unmappedGPA, "HVMSG_UNMAPPED_GPA"), (.gpaIntercept, "HVMSG_GPA_INTERCEPT"),
            (.timerExpired, "HVMSG_TIMER_EXPIRED"), (.invalidVPRegisterValue, "HVMSG_INVALID_VP_REGISTER_VALUE"),
            (.unrecoverableException, "HVMSG_UNRECOVERABLE_EXCEPTION"), (.unsupportedFeature, "HVMSG_UNSUPPORTED_FEATURE"),
            (.eventlogBuffercomplete, "HVMSG_EVENTLOG_BUFFERCOMPLETE"), (.x64IOPortIntercept, "HVMSG_X64_IOPORT_INTERCEPT"),
            (.x64MSRIntercept, "HVMSG_X64_MSR_INTERCEPT"), (.x64CPUIDIntercept, "HVMSG_X64_CPUID_INTERCEPT"),
            (.x64ExceptionIntercept, "HVMSG_X64_EXCEPTION_INTERCEPT"), (.x64APICEOI, "HVMSG_X64_APIC_EOI"),
            (.x64LegacyFPError, "HVMSG_X64_LEGACY_FP_ERROR"),
        ]
        for (type, name) in pairs { #expect(LinuxConstants.enumValues[name] == Int64(type.rawValue), "\(name)") }
        #expect(HvMessageType.vmbusChannelMessage.rawValue == 1)
    }

    @Test func hypercallStatusValuesMatchLinux() {
        let pairs: [(HvStatus, String)] = [
            (.success, "HV_STATUS_SUCCESS"), (.invalidHypercallCode, "HV_STATUS_INVALID_HYPERCALL_CODE"),
            (.invalidHypercallInput, "HV_STATUS_INVALID_HYPERCALL_INPUT"), (.invalidAlignment, "HV_STATUS_INVALID_ALIGNMENT"),
            (.invalidParameter, "HV_STATUS_INVALID_PARAMETER"), (.accessDenied, "HV_STATUS_ACCESS_DENIED"),
            (.operationDenied, "HV_STATUS_OPERATION_DENIED"), (.insufficientMemory, "HV_STATUS_INSUFFICIENT_MEMORY"),
            (.invalidPortID, "HV_STATUS_INVALID_PORT_ID"), (.invalidConnectionID, "HV_STATUS_INVALID_CONNECTION_ID"),
            (.insufficientBuffers, "HV_STATUS_INSUFFICIENT_BUFFERS"), (.timeOut, "HV_STATUS_TIME_OUT"),
            (.vtlAlreadyEnabled, "HV_STATUS_VTL_ALREADY_ENABLED"),
        ]
        for (status, name) in pairs {
            #expect(LinuxConstants.values[name] == UInt64(status.rawValue), "\(name)")
            #expect(status.description == name)
        }
        let allStatusNames = LinuxConstants.values.keys.filter { $0.hasPrefix("HV_STATUS_") }
        #expect(allStatusNames.count == pairs.count, "a new HV_STATUS_* constant appeared in the fixture")
        #expect(HvStatus.insufficientMemory.isTransient && HvStatus.insufficientBuffers.isTransient)
        #expect(!HvStatus.invalidConnectionID.isTransient)
        #expect(HvStatus(rawValue: 999).description == "HV_STATUS 999")
    }
}
