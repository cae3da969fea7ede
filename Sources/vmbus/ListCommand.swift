import ArgumentParser
import VMBusTestSupport

/// `vmbus list`: the device tree in lsvmbus's format.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Print the VMBus device tree in lsvmbus format (of an in-process system with the default devices).")

    @Flag(name: .short, help: "More detail: -v adds device ids and relids, -vv sysfs paths.")
    var verbose: Int

    func run() throws {
        let system = try InProcessSystem(memoryPages: 4096)
        system.host.addDevice(EchoDevice(instanceID: InProcessSystem.instanceID(1)))
        try system.start()
        print(system.guest.lsvmbusListing(verbosity: verbose), terminator: "")
        system.stop()
    }
}
