import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport

extension GuestBus {
    /// Longest a close waits for a drain or a send of ours to leave the rings. Not tied to the host's
    /// response timeout: only our own threads are waited for, and a short host timeout must not leak pages.
    static let quiesceTimeoutNanoseconds: UInt64 = 5_000_000_000

    /// Creates a GPADL over `pages` (one range, the whole pages) on channel `relID` and waits for
    /// GPADL_CREATED. The range list is split over GPADL_HEADER and as many GPADL_BODY messages as needed.
    public func createGPADL(relID: UInt32, pages: [UInt64]) throws(GuestError) -> UInt32 {
        guard !pages.isEmpty, pages.count <= 8190 else {
            throw .invalidArgument("a GPADL holds 1...8190 pages with one range, not \(pages.count)")
        }
        let handle = nextGPADL.loadThenWrappingIncrement(ordering: .relaxed)
        let range = GPARange(byteCount: UInt32(pages.count * GuestMemory.pageSize), byteOffset: 0, pfns: pages)
        let (header, bodies) = GPADLMessages.split(childRelID: relID, gpadl: handle, ranges: [range])
        responses.withLock { $0.awaitedGPADLs[handle] = relID }
        defer { responses.withLock { r in r.awaitedGPADLs[handle] = nil; r.gpadlCreated[handle] = nil } }
        try post(.gpadlHeader(header))
        for body in bodies { try post(.gpadlBody(body)) }
        let created = try awaitResponse("GPADL_CREATED for 0x\(String(handle, radix: 16))", relID: relID) {
            $0.gpadlCreated.removeValue(forKey: handle)
        }
        guard created.creationStatus == 0 else {
            throw .refused("GPADL 0x\(String(handle, radix: 16))", status: created.creationStatus)
        }
        return handle
    }

    /// Tears a GPADL down and waits for GPADL_TORNDOWN; only then may its pages be reused.
    public func teardownGPADL(relID: UInt32, handle: UInt32) throws(GuestError) {
        responses.withLock { r in r.gpadlTorndown.remove(handle); r.awaitedTeardowns.insert(handle) }
        defer { responses.withLock { r in r.awaitedTeardowns.remove(handle); r.gpadlTorndown.remove(handle) } }
        try post(.gpadlTeardown(GPADLTeardown(childRelID: relID, gpadl: handle)))
        // Not ended by a rescind: the host answers teardowns of rescinded channels at once.
        _ = try awaitResponse("GPADL_TORNDOWN for 0x\(String(handle, radix: 16))", relID: nil) {
            $0.gpadlTorndown.remove(handle)
        }
    }

    func openChannel(_ offer: OfferChannel, outgoingRingSize: Int, incomingRingSize: Int, maxPacketSize: Int,
                     requestSlots: Int, userData: [UInt8], scatteredPages: Bool,
                     handler: any GuestChannelHandler) throws(GuestError) -> GuestChannel {
        let page = GuestMemory.pageSize
        guard outgoingRingSize % page == 0, incomingRingSize % page == 0,
              outgoingRingSize >= 2 * page, incomingRingSize >= 2 * page else {
            throw .invalidArgument("ring sizes must be page multiples of at least 8 KiB")
        }
        guard userData.count <= 120 else { throw .invalidArgument("OPENCHANNEL user data is at most 120 bytes") }
        let relID = offer.childRelID
        // Reserve the relid for this open, so two concurrent opens of one channel cannot both proceed.
        guard opening.withLock({ $0.insert(relID).inserted }) else { throw .invalidArgument("channel \(relID) is being opened") }
        defer { _ = opening.withLock { $0.remove(relID) } }
        guard channels.withLock({ $0[relID] == nil }) else { throw .invalidArgument("channel \(relID) is already open") }
        let outPages = outgoingRingSize / page
        let pages: [UInt64]
        do { pages = try synic.pages.allocate(pages: outPages + incomingRingSize / page, scattered: scatteredPages) }
        catch { throw .invalidArgument("\(error)") }
        var gpadl: UInt32?
        // Set once GPADL_HEADER may have reached the host: from then on the host may hold the pages.
        var gpadlPosted = false
        // Set once the channel was visible to the interrupt thread, which may be draining it.
        var visible: GuestChannel?
        do {
            let memory = synic.memory
            let outMemory = try memory.ringMemory(pfns: pages[0..<outPages])
            let inMemory = try memory.ringMemory(pfns: pages[outPages...])
            // Linux initialises both control pages (feature bits included) before the host sees them.
            OutgoingRing.initializeControl(outMemory)
            OutgoingRing.initializeControl(inMemory)
            gpadlPosted = true
            let handle = try createGPADL(relID: relID, pages: pages)
            gpadl = handle
            let synic = self.synic
            let connectionID = offer.connectionID
            let signal: @Sendable () -> Void = { synic.signalEvent(connectionID: connectionID) }
            let endpoint = ChannelEndpoint(outgoing: OutgoingRing(memory: outMemory), incoming: IncomingRing(memory: inMemory),
                                           maxPacketSize: maxPacketSize, signalPeer: signal)
            let channel = GuestChannel(offer: offer, endpoint: endpoint, requestor: Requestor(capacity: requestSlots),
                                       ringGPADL: handle, ringPages: pages, bus: self, handler: handler,
                                       signalPeer: signal)
            // Expect the result before the channel is visible, so a rescind from now on ends the wait.
            responses.withLock { r in r.openResults[relID] = nil; r.awaitedOpens.insert(relID) }
            defer { responses.withLock { r in r.awaitedOpens.remove(relID); r.openResults[relID] = nil } }
            channels.withLock { $0[relID] = channel }
            visible = channel
            do {
                var data = userData
                data += [UInt8](repeating: 0, count: 120 - data.count)
                try post(.openChannel(OpenChannel(childRelID: relID, openID: relID, ringBufferGPADLHandle: handle,
                                                  targetVP: 0, downstreamRingBufferPageOffset: UInt32(outPages),
                                                  userData: data)))
                let result = try awaitResponse("OPENCHANNEL_RESULT for relid \(relID)", relID: relID) {
                    $0.openResults.removeValue(forKey: relID)
                }
                guard result.status == 0 else {
                    throw GuestError.refused("OPENCHANNEL for relid \(relID)", status: result.status)
                }
            } catch {
                channels.withLock { _ = $0.removeValue(forKey: relID) }
                throw error
            }
            return channel
        } catch {
            let e = error as? GuestError ?? .invalidArgument("\(error)")
            // Free the pages only if the host confirmed it no longer uses them: after TORNDOWN, or when it
            // refused the GPADL (or is gone). After a timeout or a rescind the host may still hold a GPADL
            // over them: leak them rather than reuse them. Nor while our interrupt thread may still drain them.
            if let visible, !visible.quiesce(timeoutNanoseconds: Self.quiesceTimeoutNanoseconds) {
                logger.warning("relid \(relID): leaking \(pages.count) ring pages still in use after \(e)")
            } else if let g = gpadl {
                if (try? teardownGPADL(relID: relID, handle: g)) != nil { synic.pages.release(pages) }
            } else if !gpadlPosted {
                synic.pages.release(pages)
            } else {
                switch e {
                case .refused, .hostLost: synic.pages.release(pages)
                default: logger.warning("relid \(relID): leaking \(pages.count) ring pages after \(e)")
                }
            }
            throw e
        }
    }

    /// Closes `channel`: stops callbacks and waits for a drain or send in progress, posts CLOSECHANNEL, tears
    /// the ring GPADL down (skipped when the channel was rescinded: the host dropped it already) and frees the
    /// ring pages. Every wait is bounded; pages that anything may still touch are leaked, never reused.
    func close(_ channel: GuestChannel) {
        let relID = channel.relID
        guard channels.withLock({ $0[relID] === channel ? $0.removeValue(forKey: relID) : nil }) != nil else { return }
        // Out of the dispatch table, closed to senders and drains: once no thread is inside, none can enter.
        let quiet = channel.quiesce(timeoutNanoseconds: Self.quiesceTimeoutNanoseconds)
        channel.fail(.channel(.closed))
        if let device = registry.withLock({ $0.byRelID[relID] }) {
            device.state.update { s in if s.channels[relID] === channel { s.channels[relID] = nil } }
        }
        guard !responses.withLock({ $0.hostLost }) else { return }
        do {
            try post(.closeChannel(CloseChannel(childRelID: relID)))
            if !channel.isRescinded {
                try teardownGPADL(relID: relID, handle: channel.ringGPADL)
            }
            if quiet {
                synic.pages.release(channel.ringPages)
            } else {
                logger.warning("channel \(relID): a drain or send did not finish; leaking its ring pages")
            }
        } catch {
            // Leak the pages rather than reuse memory the host may still touch.
            logger.warning("closing channel \(relID): \(error)")
        }
    }
}
