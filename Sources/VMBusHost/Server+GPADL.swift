import VMBusProtocol

extension Server {
    mutating func gpadlHeader(_ m: GPADLHeader) throws(ServerError) -> [ServerAction] {
        guard gpadls[m.gpadl] == nil else {
            // Handles must be unique: BODY messages are routed by handle alone. No answer: a failure would
            // name the GPADL that already exists.
            throw .unexpected(.gpadlHeader, "GPADL handle 0x\(String(m.gpadl, radix: 16)) already in use")
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
        // Every page must lie in guest memory before the GPADL exists: later accesses trust this list.
        for range in ranges {
            for pfn in range.pfns where pfn >= configuration.guestPageCount {
                gpadls[handle] = nil
                reject("GPADL 0x\(String(handle, radix: 16)): PFN 0x\(String(pfn, radix: 16)) outside guest memory")
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

    mutating func gpadlTeardown(_ m: GPADLTeardown) throws(ServerError) -> [ServerAction] {
        guard let g = gpadls[m.gpadl], g.relID == m.childRelID else { throw .unknownGPADL(m.gpadl) }
        if let c = channels[m.childRelID] {
            switch c.state {
            case .open(let ring, _) where ring == m.gpadl, .opening(_, let ring, _) where ring == m.gpadl:
                throw .unexpected(.gpadlTeardown, "GPADL 0x\(String(m.gpadl, radix: 16)) holds the rings of an open channel")
            default: break
            }
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
