import ArgumentParser
import Logging
import VMBusFUSE
import VMBusICGuest
import VMBusICProtocol
import VMBusTransport
import VMBusUtilTransport
#if canImport(Glibc)
import Glibc
#endif

/// The guest's integration-service flags, for `vmbus guest` and `vmbus up`.
struct GuestServiceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Serve DIR/hv_kvp, DIR/hv_vss and DIR/hv_fcopy (FUSE) for Debian's hyperv-daemons; bind-mount DIR at /dev/vmbus for them. While a daemon is attached, its service goes to it.", valueName: "DIR"))
    var devVmbus: String?

    @Flag(name: .long, help: "Let the host's time-sync SYNC step this machine's clock (clock_settime). Otherwise the offset is only measured.")
    var adjustTime = false

    @Option(name: .long, help: ArgumentHelp("On the host's shutdown request, run this (sh -c) instead of stopping the guest process.", valueName: "COMMAND"))
    var shutdownCommand: String?

    @Option(name: .long, help: ArgumentHelp("VSS freeze hook (sh -c), when no hv_vss_daemon is attached.", valueName: "COMMAND"))
    var freezeCommand: String?

    @Option(name: .long, help: ArgumentHelp("VSS thaw hook (sh -c), when no hv_vss_daemon is attached.", valueName: "COMMAND"))
    var thawCommand: String?

    @Option(name: .long, help: ArgumentHelp("Where file copies land: the host's guest paths are taken under DIR (default /, as hv_fcopy_daemon).", valueName: "DIR"))
    var copyRoot: String = "/"

    @Option(name: .long, help: ArgumentHelp("Publish KEY=VALUE in the KVP guest pool (1), which the host reads (repeatable).", valueName: "KEY=VALUE"))
    var kvp: [String] = []

    func validate() throws {
        for pair in kvp where !pair.contains("=") || pair.hasPrefix("=") {
            throw ValidationError("--kvp \(pair): KEY=VALUE")
        }
        guard copyRoot.hasPrefix("/") else { throw ValidationError("--copy-root must be an absolute path") }
    }
}

/// The guest side of the six services: the util driver, its responders, and the daemons' devices.
final class GuestIntegration: @unchecked Sendable {
    let driver: ICGuestDriver
    let time: TimeSyncResponder
    let store: KVPStore
    private var mount: FUSEMount?

    init(_ options: GuestServiceOptions, logger: Logger) throws {
        let served = options.devVmbus != nil
        let kvpLink = served ? KVPDaemonLink(device: DevVMBusDirectory.makeDevice("hv_kvp")) : nil
        let vssLink = served ? VSSDaemonLink(device: DevVMBusDirectory.makeDevice("hv_vss")) : nil
        let fcopyLink = served ? FCopyDaemonLink(device: DevVMBusDirectory.makeDevice("hv_fcopy")) : nil
        store = KVPStore()
        for pair in options.kvp {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            _ = store.set(pool: .guest, key: kv[0], value: kv.count > 1 ? kv[1] : "")
        }
        time = TimeSyncResponder(adjustClock: options.adjustTime)
        let shutdownCommand = options.shutdownCommand
        let shutdown = ShutdownResponder { action, _ in
            logger.notice("the host asked for \(action)")
            if let shutdownCommand {
                // Off the interrupt thread: the command may take its time.
                _ = startThread(name: "ic-shutdown") {
                    if let failure = HookCommand.shell(shutdownCommand).run() { logger.error("shutdown command: \(failure)") }
                }
            } else {
                // The guest's main loop takes SIGTERM as its signal to unload cleanly.
                kill(getpid(), SIGTERM)
            }
        }
        let vss = VSSResponder(daemon: vssLink, freezeHook: options.freezeCommand.map { HookCommand.shell($0) },
                               thawHook: options.thawCommand.map { HookCommand.shell($0) }, logger: logger)
        driver = ICGuestDriver(responders: [
            HeartbeatResponder(), shutdown, time, KVPResponder(store: store, daemon: kvpLink), vss,
            FileCopyResponder(daemon: fcopyLink, root: options.copyRoot, logger: logger),
        ], logger: logger)
        if let dir = options.devVmbus, let kvpLink, let vssLink, let fcopyLink {
            do {
                mount = try DevVMBusDirectory(devices: [kvpLink.device, vssLink.device, fcopyLink.device]).mount(at: dir)
            } catch {
                throw CommandError("--dev-vmbus \(dir): \(error)")
            }
        }
    }

    func stop() {
        mount?.stop()
        mount = nil
    }
}
