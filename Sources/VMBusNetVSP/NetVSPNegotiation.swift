import VMBusNetProtocol

/// The NVSP control plane of the primary channel as a synchronous state machine: INIT with version
/// fallback, SEND_NDIS_CONFIG, SEND_NDIS_VERSION and the order rules for the buffer hand-offs. A decoded
/// message goes in, what to answer comes out; buffers themselves (GPADL look-ups, sections) are
/// ``NetVSP``'s, which asks ``bufferAllowed`` first.
public struct NetVSPNegotiation: Sendable {
    public struct Configuration: Sendable {
        /// Versions the host completes INIT for. Linux tries 6.1, 6, 5, 4, 2, 1 in turn.
        public var acceptedVersions: Set<NVSPProtocolVersion>
        public init(acceptedVersions: Set<NVSPProtocolVersion> = Set(NVSPProtocolVersion.all)) {
            self.acceptedVersions = acceptedVersions
        }
    }

    public enum Stage: Equatable, Sendable {
        /// No INIT accepted yet (refused ones leave it here: the guest tries the next version).
        case awaitingInit
        /// A version is agreed; NDIS config and version, then the buffers follow.
        case negotiated
    }

    /// What the host does with one message.
    public enum Outcome: Equatable, Sendable {
        /// Send `message` as the completion of the request (only if the guest asked for one).
        case complete(NVSPMessage)
        /// Nothing to send (messages Linux sends without COMPLETION_REQUESTED).
        case none
        /// Out of order or not acceptable now: counted, and failed if a completion was asked for.
        case refuse(String)
    }

    public let configuration: Configuration
    public private(set) var stage: Stage = .awaitingInit
    public private(set) var version: NVSPProtocolVersion?
    public private(set) var ndisVersion: NVSPSendNDISVersion?
    public private(set) var ndisConfig: NVSPSendNDISConfig?

    /// OpenVMM's `max_mdl_chain_len`; Linux ignores it.
    public static let maxMDLChainLength: UInt32 = 34

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// The size of the messages the host sends: the negotiated version's layout (OpenVMM), Linux's 40 bytes
    /// before one is agreed.
    public var messageSize: Int { version?.messageSize ?? NVSPMessage.wireSize }

    /// Whether a buffer may be handed over now (after INIT; NVSP allows it before NDIS_VER only from
    /// guests that skip it, so the version alone is required).
    public var bufferAllowed: Bool { stage == .negotiated }

    public mutating func handle(_ message: NVSPMessage) -> Outcome {
        switch message {
        case .`init`(let m):
            return initialize(m)
        case .sendNDISConfig(let m):
            guard let version, version >= .v2 else { return .refuse("SEND_NDIS_CONFIG before INIT or below NVSP 2") }
            ndisConfig = m
            return .none
        case .sendNDISVersion(let m):
            guard stage == .negotiated else { return .refuse("SEND_NDIS_VER before INIT") }
            ndisVersion = m
            return .none
        default:
            return .refuse("unexpected \(message.type) on the control path")
        }
    }

    /// The newest accepted version in the guest's range. A guest may INIT again until it hands over a buffer
    /// (Linux walks its list one INIT at a time; the last success counts).
    private mutating func initialize(_ m: NVSPInit) -> Outcome {
        let agreed = configuration.acceptedVersions
            .filter { $0 >= m.minProtocolVersion && $0 <= m.maxProtocolVersion }.max()
        guard let agreed else {
            // OpenVMM answers NONE; Linux only checks for SUCCESS (PROTOCOL.md §14.5).
            return .complete(.initComplete(NVSPInitComplete(negotiatedProtocolVersion: m.maxProtocolVersion,
                                                            status: .fail)))
        }
        version = agreed
        stage = .negotiated
        return .complete(.initComplete(NVSPInitComplete(negotiatedProtocolVersion: agreed,
                                                        maxMDLChainLength: Self.maxMDLChainLength, status: .success)))
    }
}
