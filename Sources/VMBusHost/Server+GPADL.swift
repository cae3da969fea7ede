import VMBusProtocol

extension Server {
    mutating func gpadlHeader(_ m: GPADLHeader) throws(ServerError) -> [ServerAction] {
        guard gpadls[m.gpadl] == nil else {
            // Handles must be unique: BODY messages are routed by handle alone. The guest still waits for an
            // answer on (relid, handle), so it gets a failure; the GPADL that holds the handle is kept.
            reject("GPADL_HEADER: handle 0x\(String(m.gpadl, radix: 16)) already in use")
            return [created(m.childRelID, m.gpadl, Self.statusFailure)]
        }
        guard offeredChannel(m.childRelID) != nil else {
            // The guest waits for GPADL_CREATED on (relid, handle): answer with a failure.
            reject("GPADL_HEADER 0x\(String(m.gpadl, radix: 16)): unknown relid \(m.childRelID)")
            return [created(m.childRelID, m.gpadl, Self.statusFailure)]
        }
        let assembling = gpadls.values.reduce(0) { n, g in
            if case .assembling = g.state { return n + 1 }
            return n
        }
        guard gpadls.count < configuration.maxGPADLs, assembling < configuration.maxAssemblingGPADLs else {
            reject("GPADL limit reached (\(gpadls.count) GPADLs, \(assembling) being assembled)")
            return [created(m.childRelID, m.gpadl, Self.statusFailure)]
        }
        let assembler: GPADLAssembler
        do {
            assembler = try GPADLAssembler(header: m)
        } catch {
            reject("GPADL_HEADER 0x\(String(m.gpadl, radix: 16)): \(error)")
            return [created(m.childRelID, m.gpadl, Self.statusFailure)]
        }
        gpadls[m.gpadl] = GPADL(relID: m.childRelID, state: .assembling(assembler))
        return finishIfComplete(m.gpadl)
    }

    mutating func gpadlBody(_ m: GPADLBody) throws(ServerError) -> [ServerAction] {
        guard let g = gpadls[m.gpadl], case .assembling(var assembler) = g.state else {
            throw .unknownGPADL(m.gpadl)
        }
        do {
            _ = try assembler.add(body: m)
        } catch {
            gpadls[m.gpadl] = nil
            reject("GPADL_BODY 0x\(String(m.gpadl, radix: 16)): \(error)")
            return [created(g.relID, m.gpadl, Self.statusFailure)]
        }
        gpadls[m.gpadl] = GPADL(relID: g.relID, state: .assembling(assembler))
        return finishIfComplete(m.gpadl)
    }

    private mutating func finishIfComplete(_ handle: UInt32) -> [ServerAction] {
        guard let g = gpadls[handle], case .assembling(let assembler) = g.state, assembler.isComplete else {
            return []
        }
        let ranges: [GPARange]
        do {
            ranges = try assembler.ranges()
        } catch {
            gpadls[handle] = nil
            reject("GPADL 0x\(String(handle, radix: 16)): \(error)")
            return [created(g.relID, handle, Self.statusFailure)]
        }
        // Every page must lie in guest memory, and none may be reserved (event flags), before the GPADL exists:
        // later accesses trust this list.
        let reserved = configuration.reservedPFNs
        for range in ranges {
            for pfn in range.pfns where pfn >= configuration.guestPageCount || reserved.contains(pfn) {
                gpadls[handle] = nil
                let why = pfn >= configuration.guestPageCount ? "outside guest memory" : "is reserved (SynIC event flags)"
                reject("GPADL 0x\(String(handle, radix: 16)): PFN 0x\(String(pfn, radix: 16)) \(why)")
                return [created(g.relID, handle, Self.statusFailure)]
            }
        }
        let pages = ranges.reduce(UInt64(0)) { $0 + UInt64($1.pfns.count) }
        guard readyGPADLPages + pages <= configuration.maxGPADLPages else {
            gpadls[handle] = nil
            reject("GPADL 0x\(String(handle, radix: 16)): \(pages) more pages exceed the partition's GPADL limit of \(configuration.maxGPADLPages)")
            return [created(g.relID, handle, Self.statusFailure)]
        }
        gpadls[handle] = GPADL(relID: g.relID, state: .ready(ranges))
        return [created(g.relID, handle, 0)]
    }

    private func created(_ relID: UInt32, _ handle: UInt32, _ status: UInt32) -> ServerAction {
        .send(.gpadlCreated(GPADLCreated(childRelID: relID, gpadl: handle, creationStatus: status)))
    }

    /// GPADL_TORNDOWN has no status: a teardown cannot be refused, only answered once the host no longer
    /// touches the memory (PROTOCOL.md §3.3). For the ring GPADL of an open channel that is when the channel
    /// stops (CLOSECHANNEL, rescind or a failed open), so the answer waits until then; a teardown of an unknown
    /// handle, or a repeated one, has nothing to answer and is only counted.
    mutating func gpadlTeardown(_ m: GPADLTeardown) throws(ServerError) -> [ServerAction] {
        guard var g = gpadls[m.gpadl], g.relID == m.childRelID else { throw .unknownGPADL(m.gpadl) }
        if channels[m.childRelID]?.state.ringGPADL == m.gpadl {
            guard !g.teardownPending else {
                throw .unexpected(.gpadlTeardown, "GPADL 0x\(String(m.gpadl, radix: 16)) is already being torn down")
            }
            g.teardownPending = true
            gpadls[m.gpadl] = g
            return []
        }
        gpadls[m.gpadl] = nil
        return [.send(.gpadlTorndown(GPADLTorndown(gpadl: m.gpadl)))]
    }
}

extension Server {
    /// Pages described by every complete GPADL of the partition.
    var readyGPADLPages: UInt64 {
        gpadls.values.reduce(0) { n, g in
            if case .ready(let ranges) = g.state { return n + ranges.reduce(0) { $0 + UInt64($1.pfns.count) } }
            return n
        }
    }
}
