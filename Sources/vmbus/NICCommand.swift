import ArgumentParser

/// `vmbus nic list | attach SPEC | detach N | link N up|down`: the NICs of a running host.
struct NICCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nic",
        abstract: "List, hot-add and hot-remove the NICs of a running host, and set their link (through its control socket).",
        subcommands: [List.self, Attach.self, Detach.self, Link.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per NIC (index, backend, MTU, link), then per partition its MAC, RNDIS state and counters.")
        @OptionGroup var target: ControlTarget
        func run() { target.run(["nic", "list"]) }
    }

    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hot-add a NIC to every partition (and to those that connect later); each guest's NetVSC binds it.")
        @Argument(help: ArgumentHelp("The NIC, as --nic takes it.", valueName: "switch[:NAME]|tap:NAME[,mac=…][,mtu=N]"))
        var nic: NICSpec
        @OptionGroup var target: ControlTarget
        func run() { target.run(["nic", "attach", nic.argument]) }
    }

    struct Detach: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hot-remove NIC N: it is rescinded in every partition.")
        @Argument(help: "The NIC's index (`vmbus nic list`).") var index: Int
        @OptionGroup var target: ControlTarget
        func run() { target.run(["nic", "detach", "\(index)"]) }
    }

    struct Link: ParsableCommand {
        enum State: String, ExpressibleByArgument, CaseIterable { case up, down }
        static let configuration = CommandConfiguration(
            abstract: "Connect or disconnect NIC N's cable: the guests hear RNDIS MEDIA_CONNECT or MEDIA_DISCONNECT.")
        @Argument(help: "The NIC's index (`vmbus nic list`).") var index: Int
        @Argument(help: "up or down.") var state: State
        @OptionGroup var target: ControlTarget
        func run() { target.run(["nic", "link", "\(index)", state.rawValue]) }
    }
}
