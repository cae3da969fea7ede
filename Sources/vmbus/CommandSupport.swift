import ArgumentParser
import Logging
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// `--log-level`, shared by every command. Logs go to stderr.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(logLevel)' (trace, debug, info, notice, warning, error, critical)")
        }
    }

    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .warning }

    func bootstrap() {
        let level = self.level
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
    }

    func logger(_ label: String) -> Logger {
        var l = Logger(label: label)
        l.logLevel = level
        return l
    }
}

/// Blocks the given signals in every thread and lets one caller wait for them (sigtimedwait), so Ctrl-C and
/// SIGTERM become an orderly shutdown instead of killing the process mid-teardown.
final class SignalWaiter {
    private var set = sigset_t()

    init(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        // Must run before any thread starts so that every thread inherits the mask.
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The signal that arrived, or nil on timeout.
    func wait(timeoutNanoseconds: UInt64) -> Int32? {
        var ts = timespec(tv_sec: Int(timeoutNanoseconds / 1_000_000_000), tv_nsec: Int(timeoutNanoseconds % 1_000_000_000))
        let s = sigtimedwait(&set, nil, &ts)
        return s > 0 ? s : nil
    }
}

/// One clear line on stderr, then exit with `code`.
func fail(_ message: String, code: Int32 = 1) -> Never {
    let line = Array("vmbus: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(code)
}

/// An error as one readable phrase: system-call failures name the errno's meaning (`connect(/run/h.sock):
/// Permission denied`) instead of its number.
func describe(_ error: any Error) -> String {
    if case TransportError.system(let call, let e) = error, let text = strerror(e) {
        return "\(call): \(String(cString: text))"
    }
    return "\(error)"
}

/// The working directory, for paths handed to another process.
func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return "." }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
