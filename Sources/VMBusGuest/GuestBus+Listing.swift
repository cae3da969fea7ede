import VMBusProtocol
import VMBusWire

extension GuestBus {
    /// The device tree exactly as Linux's `lsvmbus` (tools/hv/lsvmbus) prints it, devices sorted by VMBus id
    /// (the primary channel's relid):
    /// - verbosity 0: `VMBUS ID nn: <description>`
    /// - verbosity 1: `VMBUS ID nn: Class_ID = {class} - <description>`, then `\tRel_ID=r, target_cpu=c` per
    ///   channel (sorted by relid) and an empty line
    /// - verbosity ≥ 2: as 1 with `\tDevice_ID = {instance}` and `\tSysfs path: /sys/bus/vmbus/devices/<instance>`
    ///   before the channel lines
    public func lsvmbusListing(verbosity: Int = 0) -> String {
        var out = ""
        for d in devices {
            guard verbosity > 0 else {
                out += "VMBUS ID \(pad(d.relID)): \(d.description)\n"
                continue
            }
            out += "VMBUS ID \(pad(d.relID)): Class_ID = {\(d.classID)} - \(d.description)\n"
            if verbosity > 1 {
                out += "\tDevice_ID = {\(d.instanceID)}\n"
                out += "\tSysfs path: /sys/bus/vmbus/devices/\(d.instanceID)\n"
            }
            // sysfs `channel_vp_mapping`: every channel of the device (the guest opens them on VP 0).
            let relIDs = ([d.relID] + d.subchannelOffers.values.map(\.childRelID)).sorted()
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

extension GuestBus {
    /// The device tree as JSON: one object per device with its channels.
    public func jsonListing() -> String {
        func quote(_ s: String) -> String {
            var out = "\""
            for ch in s.unicodeScalars {
                switch ch {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default:
                    if ch.value < 0x20 { out += "\\u00" + (ch.value < 0x10 ? "0" : "") + String(ch.value, radix: 16) }
                    else { out.unicodeScalars.append(ch) }
                }
            }
            return out + "\""
        }
        let items = devices.map { d -> String in
            let relIDs = [(UInt16(0), d.relID)] + d.subchannelOffers.keys.sorted().compactMap { i in
                d.subchannelOffers[i].map { (i, $0.childRelID) }
            }
            let channels = relIDs.map { "{\"sub_channel_index\": \($0.0), \"rel_id\": \($0.1), \"target_cpu\": 0}" }
            return "{\"vmbus_id\": \(d.relID), \"class_id\": \(quote("{\(d.classID)}")), "
                + "\"description\": \(quote(d.description)), \"device_id\": \(quote("{\(d.instanceID)}")), "
                + "\"driver\": \(d.driverName.map(quote) ?? "null"), \"channels\": [\(channels.joined(separator: ", "))]}"
        }
        return "[" + items.joined(separator: ", ") + "]"
    }
}
