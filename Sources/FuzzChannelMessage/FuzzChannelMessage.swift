// Fuzz target: control-message parsing (every type), GPADL assembly from a header and bodies, GPA range lists.
// Build and run with Scripts/fuzz; see docs/CONFORMANCE.md "Fuzzing".
//
// Input: byte 0 selects the mode (low 2 bits), the rest is the mode's input:
//   0, 1  one control message: ChannelMessage.parse, then re-encode → parse must give the same value
//   2     GPADL_HEADER fields + range data, then GPADL_BODY chunks, fed to GPADLAssembler
//   3     a range count (u16) and a GPA range stream for GPARange.decodeList; with bit 2 set, the bytes as a
//         socket-transport frame, HELLO, HELLO_REPLY, SynIC message slot and HvPostMessage input
import FuzzSupport
import VMBusProtocol
import VMBusTransport
import VMBusWire

#if canImport(Glibc)
import Glibc
#endif

let target = FuzzTarget(
    product: "fuzz-channel-message",
    corpus: "ChannelMessage",
    summary: "ChannelMessage.parse round trips, GPADLAssembler, GPARange.decodeList",
    body: fuzzChannelMessage,
    seeds: channelMessageSeeds)

@Sendable func fuzzChannelMessage(_ data: [UInt8]) {
    var input = FuzzInput(data)
    switch input.byte() & 3 {
    case 0, 1: roundTrip(input.rest())
    case 2: assemble(&input)
    default: data.first! & 4 == 0 ? rangeList(&input) : frames(input.rest())
    }
}

// MARK: - Mode 0/1: one message

let versions: [VMBusVersion?] = [nil, .ws2008, .win7, .win10, .win10_v4_1, .win10_v5_3, .copper, .never]

func roundTrip(_ bytes: [UInt8]) {
    let message: ChannelMessage
    do {
        message = try ChannelMessage.parse(bytes)
    } catch {
        _ = error.description
        switch error {
        case .tooLong: fuzzCheck(bytes.count > ChannelMessage.maximumLength, "tooLong for \(bytes.count) bytes")
        case .missingHeader: fuzzCheck(bytes.count < 8, "missingHeader for \(bytes.count) bytes")
        default: fuzzCheck(bytes.count >= 8 && bytes.count <= ChannelMessage.maximumLength, "\(error) for \(bytes.count) bytes")
        }
        return
    }
    fuzzCheck(bytes.count <= ChannelMessage.maximumLength, "parsed \(bytes.count) bytes")
    let raw = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    fuzzCheck(message.type.rawValue == raw, "type \(message.type) from msgtype \(raw)")
    guard let entry = ChannelMessage.entry(for: message.type) else {
        fuzzCheck(false, "parsed a type without a table entry: \(message.type)")
        return
    }
    fuzzCheck(bytes.count >= entry.minimumLength, "parsed below the minimum length")

    // A parsed message re-encodes to at most the bytes it came from, and those bytes parse to the same value.
    let encoded = message.bytes
    fuzzCheck(encoded.count <= bytes.count, "re-encoded \(message.type) grew from \(bytes.count) to \(encoded.count) bytes")
    fuzzCheck(encoded.count >= entry.minimumLength, "re-encoded \(message.type) below its minimum length")
    let reparsed: ChannelMessage
    do {
        reparsed = try ChannelMessage.parse(encoded)
    } catch {
        fuzzCheck(false, "re-encoded \(message.type) does not parse: \(error)")
        return
    }
    fuzzCheck(reparsed == message, "round trip changed \(message.type): \(message) -> \(reparsed)")
    fuzzCheck(reparsed.bytes == encoded, "re-encoding is not stable for \(message.type)")
    fuzzCheck(message.type == type(of: message.payload).messageType, "payload type mismatch")

    // The checked parse agrees with the plain one whenever it accepts.
    for sender in [ChannelMessageDirection.guestToHost, .hostToGuest] {
        for version in versions {
            for features in [VMBusFeatureFlags(), VMBusFeatureFlags(rawValue: 0xFFFF_FFFF)] {
                do {
                    let checked = try ChannelMessage.parse(bytes, from: sender, version: version, features: features)
                    fuzzCheck(checked == message, "checked parse differs")
                    fuzzCheck(message.type.direction == sender, "\(message.type) accepted from \(sender)")
                } catch {
                    _ = error.description
                }
            }
        }
    }
}

// MARK: - Mode 2: GPADL assembly

func assemble(_ input: inout FuzzInput) {
    let header = GPADLHeader(
        childRelID: input.u32(), gpadl: input.u32(), rangeBufferLength: input.u16(), rangeCount: input.u16(),
        rangeData: input.bytes(min(Int(input.byte()), GPADLHeader.maximumRangeDataLength)))
    // The parser and the assembler agree on which headers can start a GPADL.
    let headerBytes = ChannelMessage.gpadlHeader(header).bytes
    fuzzCheck(headerBytes.count <= ChannelMessage.maximumLength, "GPADL_HEADER of \(headerBytes.count) bytes")
    let parsed = try? ChannelMessage.parse(headerBytes)
    var assembler: GPADLAssembler
    do {
        assembler = try GPADLAssembler(header: header)
    } catch {
        _ = error.description
        fuzzCheck(parsed == nil, "parser accepts a header the assembler refuses: \(error)")
        return
    }
    fuzzCheck(parsed == .gpadlHeader(header), "assembler accepts a header the parser refuses")

    var bodies = 0
    while !input.isAtEnd, bodies < 400 {
        bodies += 1
        let control = input.byte()
        let data = input.bytes(min(Int(input.byte()), GPADLBody.maximumDataLength))
        let gpadl = control == 0xFF ? header.gpadl &+ 1 : header.gpadl
        let body = GPADLBody(messageNumber: UInt32(control), gpadl: gpadl, data: data)
        let bodyBytes = ChannelMessage.gpadlBody(body).bytes
        fuzzCheck((try? ChannelMessage.parse(bodyBytes)) == .gpadlBody(body), "GPADL_BODY does not round trip")
        let wasComplete = assembler.isComplete
        let before = assembler.receivedLength
        do {
            let complete = try assembler.add(body: body)
            fuzzCheck(!wasComplete && gpadl == header.gpadl, "body accepted when complete or for another GPADL")
            fuzzCheck(complete == assembler.isComplete, "add result disagrees with isComplete")
            fuzzCheck(assembler.receivedLength - before == min(data.count / 8 * 8, assembler.rangeBufferLength - before),
                      "body added \(assembler.receivedLength - before) bytes of \(data.count)")
        } catch {
            _ = error.description
            fuzzCheck(assembler.receivedLength == before, "a refused body changed the stream")
        }
        fuzzCheck(assembler.receivedLength <= assembler.rangeBufferLength, "stream longer than range_buflen")
        fuzzCheck(assembler.remainingLength == assembler.rangeBufferLength - assembler.receivedLength, "remaining")
    }

    let ranges: [GPARange]
    do {
        ranges = try assembler.ranges()
    } catch {
        _ = error.description
        if case .incomplete = error { fuzzCheck(!assembler.isComplete, "complete, yet ranges() says incomplete") }
        return
    }
    fuzzCheck(assembler.isComplete, "ranges() of an incomplete GPADL")
    fuzzCheck(ranges.count == Int(header.rangeCount), "\(ranges.count) ranges for rangecount \(header.rangeCount)")
    for range in ranges { fuzzCheck((try? range.validate()) != nil, "invalid range \(range)") }
    fuzzCheck(GPARange.encodedLength(of: ranges) <= assembler.rangeBufferLength, "ranges longer than the stream")

    // Split the ranges again as a guest would and re-assemble them: same ranges.
    guard (try? GPADLMessages.validateForSplit(ranges: ranges)) != nil else {
        fuzzCheck(false, "assembled ranges cannot be split: \(ranges)")
        return
    }
    let (h2, b2) = GPADLMessages.split(childRelID: header.childRelID, gpadl: header.gpadl, ranges: ranges)
    do {
        var again = try GPADLAssembler(header: h2)
        for body in b2 {
            fuzzCheck(ChannelMessage.gpadlBody(body).bytes.count <= ChannelMessage.maximumLength, "body too long")
            try again.add(body: body)
        }
        fuzzCheck(ChannelMessage.gpadlHeader(h2).bytes.count <= ChannelMessage.maximumLength, "header too long")
        let reassembled = try again.ranges()
        fuzzCheck(reassembled == ranges, "split + assemble changed the ranges")
    } catch {
        fuzzCheck(false, "split GPADL does not re-assemble: \(error)")
    }
}

// MARK: - Mode 3: range lists

func rangeList(_ input: inout FuzzInput) {
    let count = Int(input.u16())
    let stream = input.rest()
    var reader = WireReader(stream)
    let ranges: [GPARange]
    do {
        ranges = try GPARange.decodeList(count: count, from: &reader)
    } catch {
        _ = error.description
        return
    }
    fuzzCheck(ranges.count == count, "decoded \(ranges.count) of \(count) ranges")
    for range in ranges {
        fuzzCheck((try? range.validate()) != nil, "decoded an invalid range")
        fuzzCheck(GPARange.pageCount(byteCount: range.byteCount, byteOffset: range.byteOffset) == range.pfns.count,
                  "page count")
    }
    var writer = WireWriter(capacity: 64)
    GPARange.encodeList(ranges, into: &writer)
    fuzzCheck(writer.bytes == Array(stream[0..<reader.consumed]), "range list does not re-encode to its bytes")
}

// MARK: - Mode 7: transport frames and SynIC structures

func frames(_ bytes: [UInt8]) {
    do {
        let frame = try TransportFrame(bytes: bytes)
        fuzzCheck(frame.payload.count <= TransportFrame.maxPayload, "frame payload of \(frame.payload.count) bytes")
        fuzzCheck(bytes.count == TransportFrame.headerSize + frame.payload.count, "frame length")
        fuzzCheck((try? TransportFrame(bytes: frame.bytes)) == frame, "frame does not round trip")
        _ = frame.type.description
    } catch {
        _ = error.description
    }
    if let hello = try? TransportHello(bytes: bytes) {
        fuzzCheck((try? TransportHello(bytes: hello.bytes)) == hello, "HELLO does not round trip")
    }
    if let reply = try? TransportHelloReply(bytes: bytes) {
        _ = reply.status.description
        fuzzCheck((try? TransportHelloReply(bytes: reply.bytes)) == reply, "HELLO_REPLY does not round trip")
    }
    var r = WireReader(bytes)
    if let slot = try? HvMessage(from: &r) {
        if let payload = try? slot.validPayload() {
            fuzzCheck(payload.count == Int(slot.header.payloadSize), "SynIC payload size")
            roundTrip(payload)
        }
        var w = WireWriter(capacity: HvMessage.wireSize)
        slot.encode(into: &w)
        fuzzCheck(w.bytes.count == HvMessage.wireSize, "hv_message of \(w.bytes.count) bytes")
    }
    var r2 = WireReader(bytes)
    if let post = try? HvInputPostMessage(from: &r2), let payload = try? post.validPayload() {
        fuzzCheck(payload.count == Int(post.payloadSize), "post payload size")
    }
}

// MARK: - Seeds

@Sendable func channelMessageSeeds() -> [(String, [UInt8])] {
    let guid = GUID(data1: 0x0123_4567, data2: 0x89AB, data3: 0xCDEF, data4: (1, 2, 3, 4, 5, 6, 7, 8))
    let messages: [(String, ChannelMessage)] = [
        ("initiate-contact-5.3", .initiateContact(InitiateContact(
            versionRequested: .win10_v5_3, targetVCPU: 0, messageSINT: 2))),
        ("version-response", .versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))),
        ("offer", .offerChannel(OfferChannel(
            interfaceType: guid, interfaceInstance: guid, channelFlags: 0, mmioMegabytes: 0, userDefined: [],
            subchannelIndex: 0, mmioMegabytesOptional: 0, childRelID: 1, monitorID: 0xFF,
            monitorAllocated: false, isDedicatedInterrupt: true, connectionID: 0x2001))),
        ("open", .openChannel(OpenChannel(
            childRelID: 1, openID: 1, ringBufferGPADLHandle: 0xE1E10, targetVP: 0,
            downstreamRingBufferPageOffset: 4))),
        ("gpadl-header", .gpadlHeader(GPADLMessages.split(
            childRelID: 1, gpadl: 0xE1E10, ranges: [GPARange(wholePages: [10, 11, 12])]).header)),
        ("gpadl-body", .gpadlBody(GPADLBody(gpadl: 0xE1E10, data: [UInt8](repeating: 1, count: 16)))),
        ("request-offers", .requestOffers(RequestOffers())),
        ("unload", .unload(Unload())),
    ]
    var seeds: [(String, [UInt8])] = messages.map { ($0.0, [0] + $0.1.bytes) }

    // A 40-page GPADL: header and one body.
    let (header, bodies) = GPADLMessages.split(
        childRelID: 1, gpadl: 0xE1E10, ranges: [GPARange(wholePages: (0..<40).map { UInt64(100 + $0) })])
    var b = FuzzInputBuilder()
    b.byte(2)
    b.u32(header.childRelID); b.u32(header.gpadl); b.u16(header.rangeBufferLength); b.u16(header.rangeCount)
    b.chunk(header.rangeData)
    for body in bodies { b.byte(0); b.chunk(body.data) }
    seeds.append(("gpadl-assemble", b.bytes))

    var r = FuzzInputBuilder()
    r.byte(3)
    r.u16(2)
    var w = WireWriter(capacity: 64)
    GPARange.encodeList([GPARange(byteCount: 100, byteOffset: 4000, pfns: [1, 2]), GPARange(wholePages: [7])], into: &w)
    r.raw(w.bytes)
    seeds.append(("range-list", r.bytes))
    let frame = TransportFrame(type: .channelMessage, port: 1, payload: ChannelMessage.requestOffers(RequestOffers()).bytes)
    seeds.append(("transport-frame", [7] + frame.bytes))
    return seeds
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOneInput(target, data, size)
}

@_cdecl("FuzzChannelMessage_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(target, argc: argc, argv: argv)
}
#else
@main enum Main {
    static func main() { exit(runStandalone(target)) }
}
#endif
