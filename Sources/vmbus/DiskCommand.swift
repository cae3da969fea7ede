import ArgumentParser
import VMBusControl

/// Which running host a control command talks to: `--control PATH`, or the host's `--socket PATH` (control at
/// PATH.ctl), or `vmbus up`'s `--data-dir DIR` (control at DIR/vmbus.ctl, the default ./vmbus-data).
struct ControlTarget: ParsableArguments {
    @Option(name: .long, help: "The control socket itself.")
    var control: String?

    @Option(name: .long, help: "A `vmbus host`'s main socket (its control socket is SOCKET.ctl).")
    var socket: String?

    @Option(name: .long, help: "A `vmbus up`'s data directory (its control socket is DIR/vmbus.ctl).")
    var dataDir: String = "./vmbus-data"

    var path: String { control ?? socket.map { $0 + ".ctl" } ?? dataDir + "/vmbus.ctl" }

    /// Sends `words`, prints the body, exits 1 on an error answer.
    func run(_ words: [String]) {
        let response: ControlResponse
        do { response = try ControlClient.request(path: path, words) }
        catch { fail("cannot reach the host's control socket \(path): \(describe(error))") }
        guard response.ok else { fail(response.body) }
        print(response.body, terminator: "")
    }
}

/// `vmbus disk list | attach PATH[,…] | detach LUN`: hot add and remove on a running host.
struct DiskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk",
        abstract: "List, hot-add and hot-remove the SCSI disks of a running host (through its control socket).",
        subcommands: [List.self, Attach.self, Detach.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per disk: controller and LUN, capacity, access, backend.")
        @OptionGroup var target: ControlTarget
        func run() { target.run(["disk", "list"]) }
    }

    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hot-add a disk on the SCSI controller at the first free LUN; the guest sees it after ENUMERATE_BUS.")
        @Argument(help: ArgumentHelp("The disk; a missing file is created sparse when a size is given.", valueName: "PATH[,size=N][,ro]"))
        var disk: DiskSpec
        @OptionGroup var target: ControlTarget
        func validate() throws {
            if disk.ide { throw ValidationError("IDE disks cannot be hot-added") }
        }
        func run() {
            var spec = disk.path
            if let size = disk.size { spec += ",size=\(size)" }
            if disk.readOnly { spec += ",ro" }
            if let f = disk.format { spec += ",format=\(f.rawValue)" }
            // The host opens the path: make it absolute, the host's working directory is not ours.
            if !spec.hasPrefix("/") { spec = currentDirectory() + "/" + spec }
            target.run(["disk", "attach", spec])
        }
    }

    struct Detach: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hot-remove the disk at a LUN; its outstanding I/O fails in the guest.")
        @Argument(help: "The LUN (0...63).") var lun: Int
        @OptionGroup var target: ControlTarget
        func validate() throws {
            guard lun >= 0 && lun < 64 else { throw ValidationError("a LUN is 0...63") }
        }
        func run() { target.run(["disk", "detach", "\(lun)"]) }
    }
}
