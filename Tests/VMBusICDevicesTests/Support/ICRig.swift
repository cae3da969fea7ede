import VMBusGuest
import VMBusHost
import VMBusICGuest
import VMBusICHost
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport

/// The six services host to guest in one process over the real rings: ICHostServices on the host,
/// ICGuestDriver with the given responders in the guest.
final class ICRig: @unchecked Sendable {
    let system: InProcessSystem
    let host: ICHostServices
    let driver: ICGuestDriver

    init(configuration: ICHostServices.Configuration = ICHostServices.Configuration(heartbeatIntervalNanoseconds: 50_000_000,
                                                                                    unresponsiveAfterNanoseconds: 500_000_000),
         extraHost: [any VMBusDeviceProvider] = [], responders: [any ICResponder]) throws {
        system = try InProcessSystem(memoryPages: 4096)
        host = ICHostServices(configuration: configuration)
        for p in host.providers + extraHost { system.host.addDevice(p) }
        try system.start()
        driver = ICGuestDriver(responders: responders)
        system.guest.register(driver)
        system.guest.flushWork()
    }

    /// Waits until every host service negotiated (or gave up).
    func waitReady(_ channels: [ICHostChannel]? = nil, seconds: Double = 10) -> Bool {
        eventually(seconds) {
            (channels ?? self.host.channels).allSatisfy { if case .ready = $0.phase { return true } else { return false } }
        }
    }

    func stop() { system.stop() }
}

/// Records what the shutdown responder was asked to do.
final class ShutdownLog: @unchecked Sendable {
    let actions = Condition<[ShutdownMessage.LinuxAction]>([])
    lazy var responder = ShutdownResponder { [actions] action, _ in actions.update { $0.append(action) } }
}
