import VMBusProtocol
import VMBusWire

extension GuestBus {
    /// The device tree in the format of Linux's `lsvmbus` (tools/hv/lsvmbus):
    /// `VMBUS ID nn: Class_ID = {guid} - <description>`; with `verbosity` 1 the device id and the channel
    /// relids with their target CPU, with 2 also the sysfs-style path.
    public func lsvmbusListing(verbosity: Int = 0) -> String {
        var out = ""
        for d in devices {
            out += "VMBUS ID \(pad(d.relID)): Class_ID = {\(d.classID)} - \(d.description)\n"
            guard verbosity > 0 else { continue }
            out += "\tDevice_ID = {\(d.instanceID)}\n"
            if verbosity > 1 { out += "\tSysfs path: /sys/bus/vmbus/devices/\(d.instanceID)\n" }
            let relIDs = [d.relID] + d.subchannelOffers.keys.sorted().compactMap { d.subchannelOffers[$0]?.childRelID }
            for r in relIDs { out += "\tRel_ID=\(r), target_cpu=0\n" }
            out += "\n"
        }
        return out
    }

    private func pad(_ v: UInt32) -> String {
        let s = String(v)
        return s.count >= 2 ? s : String(repeating: " ", count: 2 - s.count) + s
    }
}
