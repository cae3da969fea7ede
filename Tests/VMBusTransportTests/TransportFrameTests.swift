import Testing
import VMBusProtocol
import VMBusTransport

/// Frame layouts, byte for byte: these are the worked examples of docs/TRANSPORT.md.
struct TransportFrameTests {
    @Test func frameHeaderIsAnHvMessageHeaderFollowedByThePayload() throws {
        let frame = TransportFrame(type: .channelMessage, port: 0x0403_0201, payload: [0xAA, 0xBB, 0xCC])
        #expect(frame.bytes == [
            0x01, 0x00, 0x00, 0x00,  // message_type
            0x03,                    // payload_size
            0x00,                    // message_flags
            0x00, 0x00,              // reserved
            0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,  // port (connection id)
            0xAA, 0xBB, 0xCC,
        ])
        #expect(try TransportFrame(bytes: frame.bytes) == frame)
    }

    @Test func helloWorkedExample() throws {
        let hello = TransportHello(memoryBytes: 64 << 20, eventFlagsPFN: 0)
        let frame = TransportFrame(type: .hello, payload: hello.bytes)
        #expect(frame.bytes == [
            0x01, 0x00, 0x42, 0x56, 0x18, 0x00, 0x00, 0x00,  // type 0x56420001, payload_size 24
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // port 0
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // version 2, reserved
            0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,  // memory_bytes 0x4000000
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // event_flags_pfn 0
        ])
        #expect(try TransportHello(bytes: frame.payload) == hello)
    }

    @Test func helloReplyWorkedExample() throws {
        let reply = TransportHelloReply(status: .permissionDenied, partitionID: 0)
        #expect(TransportFrame(type: .helloReply, payload: reply.bytes).bytes == [
            0x02, 0x00, 0x42, 0x56, 0x10, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x00, 0x00, 0x00,  // version 2
            0x02, 0x00, 0x00, 0x00,  // status 2: permission denied
            0x00, 0x00, 0x00, 0x00,  // partition id
            0x00, 0x00, 0x00, 0x00,  // reserved
        ])
        let ok = TransportHelloReply(status: .ok, partitionID: 7)
        #expect(try TransportHelloReply(bytes: ok.bytes) == ok)
        #expect(TransportHelloReply.Status.badMemory.rawValue == 3)
        #expect(TransportHelloReply.Status.badSignalSocket.rawValue == 6)
        #expect(TransportHelloReply.Status.hostOutOfResources.rawValue == 7)
    }

    @Test func initiateContactWorkedExample() throws {
        let contact = InitiateContact(versionRequested: .copper, targetVCPU: 0, messageSINT: 2)
        let frame = TransportFrame(type: .channelMessage, port: UInt64(VMBusConnectionID.message4),
                                   payload: ChannelMessage.initiateContact(contact).bytes)
        #expect(frame.bytes == [
            0x01, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00,  // channel message, 40 bytes
            0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // connection id 4 (VMBUS_MESSAGE_CONNECTION_ID_4)
            0x0E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // CHANNELMSG_INITIATE_CONTACT (14), padding
            0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,  // version 6.0 (0x00060000), target_vcpu 0
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // msg_sint 2, msg_vtl 0, features 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // monitor_page1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // monitor_page2
        ])
    }

    @Test func doorbellPayloadNamesTheConnectionID() {
        // DOORBELL for connection id 0x2001 (relid 1 on SINT 2): u32 connection id, u32 reserved.
        let frame = TransportFrame(type: .doorbell, payload: [0x01, 0x20, 0, 0, 0, 0, 0, 0])
        #expect(Array(frame.bytes[0..<8]) == [0x03, 0x00, 0x42, 0x56, 0x08, 0x00, 0x00, 0x00])
        #expect(TransportFrame.FrameType.doorbellRevoke.rawValue == 0x5642_0004)
        #expect(TransportFrame.FrameType.doorbell.isTransportFrame)
        #expect(!TransportFrame.FrameType.channelMessage.isTransportFrame)
    }

    @Test func parsingRefusesShortLongAndMislabelledFrames() {
        #expect(throws: TransportError.self) { try TransportFrame(bytes: []) }
        #expect(throws: TransportError.self) { try TransportFrame(bytes: [1, 0, 0, 0, 0]) }
        // Header says 10 bytes, 20 follow.
        var wrong = TransportFrame(type: .channelMessage, payload: [UInt8](repeating: 0, count: 20)).bytes
        wrong[4] = 10
        #expect(throws: TransportError.self) { try TransportFrame(bytes: wrong) }
        // Header says 20 bytes, 10 follow.
        var short = TransportFrame(type: .channelMessage, payload: [UInt8](repeating: 0, count: 10)).bytes
        short[4] = 20
        #expect(throws: TransportError.self) { try TransportFrame(bytes: short) }
        // A payload_size over 240.
        var big = [UInt8](repeating: 0, count: 16 + 250)
        big[0] = 1
        big[4] = 250
        #expect(throws: TransportError.self) { try TransportFrame(bytes: big) }
        // Every prefix of a valid frame but the whole is refused.
        let valid = TransportFrame(type: .channelMessage, port: 1, payload: [1, 2, 3, 4]).bytes
        for n in 0..<valid.count {
            #expect(throws: TransportError.self) { try TransportFrame(bytes: Array(valid[0..<n])) }
        }
        // Flags and reserved bytes are ignored.
        var flagged = valid
        flagged[5] = 0x01
        flagged[6] = 0xFF
        #expect((try? TransportFrame(bytes: flagged))?.payload == [1, 2, 3, 4])
    }

    @Test func shortHelloPayloadsAreRefused() {
        let hello = TransportHello(memoryBytes: 4096, eventFlagsPFN: 0).bytes
        for n in 0..<hello.count {
            #expect(throws: (any Error).self) { try TransportHello(bytes: Array(hello[0..<n])) }
        }
    }
}
