import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct VMBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmbus",
        abstract: "Hyper-V VMBus integration components in userspace: a VMBus host with its device providers and a guest with its drivers.",
        subcommands: [UpCommand.self, HostCommand.self, GuestCommand.self, ListCommand.self, DiskCommand.self, NICCommand.self, ICCommand.self, ImageCommand.self])

    /// Parses and runs; an error is one line on stderr naming what is wrong (help and version requests print
    /// in full).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let hint = code == .validationFailure ? " (see 'vmbus --help')" : ""
            fail(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) + hint : message + hint, code: code.rawValue)
        }
    }
}
