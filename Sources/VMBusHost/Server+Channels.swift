import VMBusProtocol

extension Server {
    mutating func openChannel(_ m: OpenChannel) throws(ServerError) -> [ServerAction] {
        func fail(_ why: String) -> [ServerAction] {
            reject("OPENCHANNEL \(m.childRelID): \(why)")
            return [.send(.openChannelResult(OpenChannelResult(
                childRelID: m.childRelID, openID: m.openID, status: Self.statusFailure)))]
        }
        // An unknown (or never offered) relid still gets a failing result, so the guest does not wait forever.
        guard var channel = offeredChannel(m.childRelID) else { return fail("unknown relid") }
        switch channel.state {
        case .rescinded:
            // Hyper-V silently ignores OPENCHANNEL for a rescinded channel.
            return []
        case .open, .opening:
            return fail("already open")
        case .offered:
            break
        }
        guard let gpadl = gpadls[m.ringBufferGPADLHandle], gpadl.relID == m.childRelID, !gpadl.teardownPending,
              case .ready(let ranges) = gpadl.state else {
            return fail("ring GPADL 0x\(String(m.ringBufferGPADLHandle, radix: 16)) is not ready on this channel")
        }
        // Linux describes both rings with one page-aligned range; each ring is a control page plus at least
        // one data page, the host→guest ring starting at the downstream page offset.
        guard ranges.count == 1, ranges[0].byteOffset == 0,
              UInt64(ranges[0].byteCount) == UInt64(ranges[0].pfns.count) * 4096 else {
            return fail("ring GPADL is not one page-aligned range")
        }
        let pages = UInt32(ranges[0].pfns.count)
        guard pages >= 4 else { return fail("ring GPADL of \(pages) pages is too small for two rings") }
        guard m.downstreamRingBufferPageOffset >= 2, m.downstreamRingBufferPageOffset <= pages - 2 else {
            return fail("downstream offset \(m.downstreamRingBufferPageOffset) outside a \(pages)-page ring GPADL")
        }
        channel.state = .opening(openID: m.openID, gpadl: m.ringBufferGPADLHandle, targetVP: m.targetVP)
        channels[m.childRelID] = channel
        return [.openChannel(relID: m.childRelID, ringRanges: ranges,
                             downstreamPageOffset: m.downstreamRingBufferPageOffset, targetVP: m.targetVP,
                             userData: m.userData)]
    }

    mutating func closeChannel(relID: UInt32) throws(ServerError) -> [ServerAction] {
        guard var channel = channels[relID] else { throw .unknownRelID(relID) }
        switch channel.state {
        case .open, .opening:
            let ring = channel.state.ringGPADL
            channel.state = .offered
            channels[relID] = channel
            return [.closeChannel(relID: relID)] + finishPendingTeardown(ring)
        case .rescinded:
            // Linux still posts CLOSECHANNEL for a rescinded channel; the host already stopped serving it.
            return []
        case .offered:
            throw .unexpected(.closeChannel, "channel \(relID) is not open")
        }
    }

    mutating func relIDReleased(_ relID: UInt32) throws(ServerError) -> [ServerAction] {
        guard let channel = channels[relID] else { throw .unknownRelID(relID) }
        guard channel.state == .rescinded else {
            throw .unexpected(.relIDReleased, "channel \(relID) was not rescinded")
        }
        channels[relID] = nil
        removeGPADLs(of: relID)
        return [.releaseChannel(relID: relID)]
    }

    mutating func modifyChannel(_ m: ModifyChannel) throws(ServerError) -> [ServerAction] {
        // Only 5.3 guests expect an answer (CHANNELMSG_MODIFYCHANNEL_RESPONSE), and they wait for it: a
        // refused request is answered with a failure status from 5.3 on.
        let answers = version.map { $0.rawValue >= ChannelMessageType.modifyChannelResponse.minimumVersion.rawValue }
            ?? false
        func response(_ status: UInt32) -> [ServerAction] {
            answers ? [.send(.modifyChannelResponse(ModifyChannelResponse(childRelID: m.childRelID, status: status)))] : []
        }
        guard var channel = offeredChannel(m.childRelID), case .open(let gpadl, _) = channel.state else {
            let why = channels[m.childRelID] == nil ? ServerError.unknownRelID(m.childRelID)
                : .unexpected(.modifyChannel, "channel \(m.childRelID) is not open")
            guard answers else { throw why }
            reject("\(why)")
            return response(Self.statusFailure)
        }
        channel.state = .open(gpadl: gpadl, targetVP: m.targetVP)
        channels[m.childRelID] = channel
        return response(0)
    }
}
