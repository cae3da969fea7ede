import ArgumentParser

@main
struct VMBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmbus",
        abstract: "Hyper-V VMBus integration components in userspace: a VMBus host with its device providers and a guest with its drivers.",
        subcommands: [UpCommand.self, HostCommand.self, GuestCommand.self, ListCommand.self])
}
