import ArgumentParser

/// `vmbus ic …`: drive a running host's integration services through its control socket.
struct ICCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ic",
        abstract: "Drive the integration services of a running host's guest (through its control socket).",
        discussion: "Each command goes to the newest connected guest, or to --partition N of a `vmbus host`. Exit status 1 when the guest refused or did not answer.",
        subcommands: [Heartbeat.self, Shutdown.self, Time.self, KVP.self, VSS.self, Copy.self])

    struct Target: ParsableArguments {
        @OptionGroup var control: ControlTarget
        @Option(name: .long, help: "The partition (a `vmbus host` serves several).") var partition: UInt64?

        func run(_ words: [String]) {
            control.run(["ic"] + (partition.map { ["partition", "\($0)"] } ?? []) + words)
        }
    }

    struct Heartbeat: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The last heartbeat sequence number and its age; exit status 1 when the guest is unresponsive.")
        @OptionGroup var target: Target
        func run() { target.run(["heartbeat"]) }
    }

    struct Shutdown: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask the guest to shut down (or restart).")
        @Flag(name: .long, help: "Restart instead of powering off.") var reboot = false
        @Flag(name: .long, help: "Force (the guest does not wait for applications).") var force = false
        @Option(name: .long, help: "The reason shown to the guest.") var reason: String?
        @OptionGroup var target: Target
        func run() {
            var words = ["shutdown"]
            if reboot { words.append("reboot") }
            if force { words.append("force") }
            if let reason, !reason.isEmpty { words += ["reason", reason] }
            target.run(words)
        }
    }

    struct Time: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send the host's time to the guest: a sample, or with --sync one it steps its clock to (when it allows that).")
        @Flag(name: .long, help: "Send ICTIMESYNCFLAG_SYNC instead of a sample.") var sync = false
        @OptionGroup var target: Target
        func run() { target.run(sync ? ["time", "sync"] : ["time"]) }
    }

    struct KVP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kvp",
            abstract: "Read and write the guest's key-value pools: get KEY, set KEY VALUE, delete KEY, list.")
        enum Operation: String, ExpressibleByArgument, CaseIterable { case get, set, delete, list }
        @Argument(help: "get | set | delete | list") var operation: Operation
        @Argument(help: "KEY, and for set the VALUE.") var words: [String] = []
        @Option(name: .long, help: "The pool: 0 external (host → guest, the default), 1 guest, 2 auto, 3 auto external, 4 auto internal.")
        var pool: UInt8 = 0
        @OptionGroup var target: Target

        func validate() throws {
            guard pool < 5 else { throw ValidationError("--pool is 0...4") }
            let wanted = [Operation.get: 1, .set: 2, .delete: 1, .list: 0][operation] ?? 0
            guard words.count == wanted else {
                throw ValidationError("kvp \(operation.rawValue) takes \(wanted == 0 ? "no key" : wanted == 1 ? "KEY" : "KEY VALUE")")
            }
            guard words.allSatisfy({ !$0.isEmpty && !$0.contains("\n") }) else { throw ValidationError("keys and values are non-empty, one line") }
        }

        func run() { target.run(["kvp", operation.rawValue, "\(pool)"] + words) }
    }

    struct VSS: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "vss", abstract: "Freeze or thaw the guest's filesystems (for a backup snapshot).")
        enum Operation: String, ExpressibleByArgument, CaseIterable { case freeze, thaw }
        @Argument(help: "freeze | thaw") var operation: Operation
        @OptionGroup var target: Target
        func run() { target.run(["vss", operation.rawValue]) }
    }

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a host file into the guest (DEST is the guest's absolute path).")
        @Argument(help: "The host file.") var source: String
        @Argument(help: "The guest path, directory and file name.") var destination: String
        @Flag(name: .long, help: "Replace an existing file.") var overwrite = false
        @Flag(name: .long, help: "Create missing directories.") var createPath = false
        @OptionGroup var target: Target

        func validate() throws {
            guard destination.hasPrefix("/") else { throw ValidationError("DEST must be an absolute guest path") }
        }

        func run() {
            // The host opens the source: make it absolute, the host's working directory is not ours.
            let src = source.hasPrefix("/") ? source : currentDirectory() + "/" + source
            target.run(["copy", src, destination] + (overwrite ? ["overwrite"] : []) + (createPath ? ["create-path"] : []))
        }
    }
}
