import Testing
import VMBusDiskBackend
import VMBusGuest
import VMBusHost
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

/// StorVSC → VMBus → StorVSP → RAM disks (or the given `images`), in one process.
struct StorageRig {
    let system: InProcessSystem
    let vsp: StorVSP
    let backends: [Int: MemoryBackend]
    let driver: StorVSCDriver

    init(kind: StorageControllerKind = .scsi, luns: [Int: UInt64] = [0: 16 << 20], readOnly: Set<Int> = [],
         hostVersions: Set<StorageProtocolVersion> = Set(StorageProtocolVersion.all), maxSubchannels: Int = 2,
         hostMaxTransfer: Int = 512 * 1024, images: [Int: any BlockBackend] = [:], configure: (inout StorVSCController.Configuration) -> Void = { _ in }) throws {
        system = try InProcessSystem(memoryPages: 16384)
        let instance = kind == .ide ? IDELocation.instanceID(channel: 0, device: 1) : InProcessSystem.instanceID(9)
        vsp = StorVSP(kind: kind, instanceID: instance, maxSubchannels: maxSubchannels, maxTransferBytes: hostMaxTransfer,
                      acceptedVersions: hostVersions)
        var backends: [Int: MemoryBackend] = [:]
        for (lun, size) in luns {
            let b = MemoryBackend(capacity: size, readOnly: readOnly.contains(lun))
            backends[lun] = b
            vsp.luns.attach(SCSIDisk(backend: b, serialNumber: "disk\(lun)", identifier: UInt64(lun + 1)), at: lun)
        }
        for (lun, image) in images {
            vsp.luns.attach(SCSIDisk(backend: image, serialNumber: "image\(lun)", identifier: UInt64(lun + 1)), at: lun)
        }
        self.backends = backends
        system.host.addDevice(vsp)
        try system.start()
        var configuration = StorVSCController.Configuration()
        configuration.subchannels = 2
        configure(&configuration)
        driver = StorVSCDriver(configuration: configuration)
        system.guest.register(driver)
        system.guest.flushWork()
        driver.controllers.first?.waitForSubchannels()
    }

    var controller: StorVSCController? { driver.controllers.first }

    func disk(_ lun: UInt8 = 0) throws -> StorVSCDisk {
        try #require(controller?.disk(lun: lun))
    }

    func stop() { system.stop() }
}



extension StorVSCDisk {
    func write(at offset: UInt64, _ bytes: [UInt8], fua: Bool = false) throws(StorVSCError) {
        let r: Result<Void, StorVSCError> = bytes.withUnsafeBytes { b in
            do throws(StorVSCError) { try write(at: offset, from: b, fua: fua); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    func read(at offset: UInt64, count: Int) throws(StorVSCError) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: count)
        let r: Result<Void, StorVSCError> = out.withUnsafeMutableBytes { b in
            do throws(StorVSCError) { try read(at: offset, into: b); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
        return out
    }
}
