import Logging
import VMBusICProtocol
import VMBusUtilTransport
import VMBusWire

/// VSS: as Linux's hv_snapshot. FREEZE, THAW and HOT_BACKUP go to hv_vss_daemon when one is attached, else
/// to our freeze and thaw hooks; with neither, FREEZE and THAW fail as they do in Linux without its daemon.
/// GET_DM_INFO is answered at once with flags 0; the other operations get HV_S_OK without action.
public final class VSSResponder: ICResponder {
    public let service = ICService.vss
    public let mayBlock = true
    public let daemon: VSSDaemonLink?
    public let freezeHook: HookCommand?
    public let thawHook: HookCommand?
    let logger: Logger

    public init(daemon: VSSDaemonLink? = nil, freezeHook: HookCommand? = nil, thawHook: HookCommand? = nil,
                logger: Logger = Logger(label: "vmbus.ic.vss")) {
        self.daemon = daemon
        self.freezeHook = freezeHook
        self.thawHook = thawHook
        self.logger = logger
    }

    public func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply {
        guard request.header.icmsgtype == .vss, var message = try? request.decodeBody(VSSMessage.self) else {
            return .failure(request)
        }
        let operation = message.operation
        var status = ICStatus.ok
        switch operation {
        case .getDMInfo:
            message.dmInfo = VSSCheckDMInfo(flags: 0)
        case .freeze, .thaw, .hotBackup:
            if let answer = daemon?.perform(operation) {
                status = answer.status
                if operation == .hotBackup { message.vssCF = VSSCheckFeature(flags: answer.flags) }
            } else if operation == .hotBackup {
                message.vssCF = VSSCheckFeature(flags: VSSCheckFeature.hbuNoAutoRecovery)
            } else if let hook = operation == .freeze ? freezeHook : thawHook {
                if let failure = hook.run() {
                    logger.warning("VSS \(operation) hook failed: \(failure)")
                    status = .fail
                }
            } else {
                status = .fail
            }
        default:
            break
        }
        return ICReply(request.linuxResponse(status: status, body: message.wireBytes))
    }
}
