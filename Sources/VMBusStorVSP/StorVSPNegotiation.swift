import VMBusStorageProtocol
import VMBusWire

/// The control half of StorVSP as a synchronous state machine: one VSTOR packet in, the completion to send and
/// what the device must do out. No I/O, so every sequence a guest can send is testable on its own.
///
/// The order Hyper-V requires on the primary channel: BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION (repeated
/// until a version is accepted), QUERY_PROPERTIES, END_INITIALIZATION; CREATE_SUB_CHANNELS after the
/// properties (OpenVMM also takes it before END_INITIALIZATION). Anything out of order is answered with
/// `STATUS_INVALID_DEVICE_REQUEST` and changes nothing.
public struct StorVSPNegotiation: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Versions accepted in QUERY_PROTOCOL_VERSION.
        public var acceptedVersions: Set<StorageProtocolVersion>
        /// Sub-channels the device can offer (`max_channel_cnt`); 0 for IDE.
        public var maxSubchannels: Int
        /// `max_transfer_bytes`; a multiple of 4 KiB.
        public var maxTransferBytes: UInt32

        public init(acceptedVersions: Set<StorageProtocolVersion> = Set(StorageProtocolVersion.all),
                    maxSubchannels: Int = 0, maxTransferBytes: UInt32 = 512 * 1024) {
            self.acceptedVersions = acceptedVersions
            self.maxSubchannels = max(0, min(maxSubchannels, Int(UInt16.max)))
            self.maxTransferBytes = maxTransferBytes & ~0xFFF
        }
    }

    public enum Stage: Equatable, Sendable {
        case awaitingBegin
        case begun
        case versionAgreed
        case propertiesSent
        /// END_INITIALIZATION done: I/O is served on every channel.
        case ready
    }

    /// What the device does beyond sending ``Outcome/completion``.
    public enum Action: Equatable, Sendable {
        case none
        /// Offer this many more sub-channels (after sending the completion).
        case offerSubchannels(Int)
        /// Initialization finished: sub-channels may now serve I/O.
        case becameReady
    }

    public struct Outcome: Equatable, Sendable {
        public var completion: VStorPacket
        public var action: Action
    }

    public let configuration: Configuration
    public private(set) var stage: Stage = .awaitingBegin
    public private(set) var version: StorageProtocolVersion?
    /// Sub-channels offered so far (a guest may ask again; the total never passes the maximum).
    public private(set) var subchannelsOffered = 0

    public init(configuration: Configuration) { self.configuration = configuration }

    /// The properties this device reports at `version`.
    public func properties(at version: StorageProtocolVersion) -> StorageChannelProperties {
        let multi = configuration.maxSubchannels > 0 && version.supportsMultiChannel
        return StorageChannelProperties(
            maxChannelCount: multi ? UInt16(configuration.maxSubchannels) : 0,
            flags: multi ? StorageChannelProperties.flagSupportsMultiChannel : 0,
            maxTransferBytes: configuration.maxTransferBytes)
    }

    /// Handles one control packet from the primary channel. EXECUTE_SRB is not a control packet: the caller
    /// serves it once ``stage`` is `.ready` (before that, ``refusal(for:)`` answers it).
    public mutating func handle(_ request: VStorPacket) -> Outcome {
        var reply = VStorPacket(operation: .completeIO, flags: 0)
        var action = Action.none
        switch (request.operation, stage) {
        case (.beginInitialization, .awaitingBegin):
            stage = .begun
        case (.queryProtocolVersion, .begun):
            let asked = request.version.majorMinor
            if configuration.acceptedVersions.contains(asked) {
                version = asked
                stage = .versionAgreed
                reply.version = StorageVersionBody(asked)
            } else {
                reply.status = .revisionMismatch
                reply.version = request.version
            }
        case (.queryProperties, .versionAgreed):
            if let version { reply.properties = properties(at: version) }
            stage = .propertiesSent
        case (.endInitialization, .propertiesSent):
            stage = .ready
            action = .becameReady
        case (.createSubChannels, .propertiesSent), (.createSubChannels, .ready):
            guard let version, version.supportsMultiChannel, configuration.maxSubchannels > 0 else {
                reply.status = .invalidDeviceRequest
                break
            }
            let asked = Int(request.subChannelCount)
            let granted = max(0, min(asked, configuration.maxSubchannels - subchannelsOffered))
            guard asked > 0, granted == asked else {
                // Hyper-V refuses a count it cannot meet rather than offering fewer than asked.
                reply.status = .invalidParameter
                break
            }
            subchannelsOffered += granted
            reply.subChannelCount = UInt16(granted)
            action = .offerSubchannels(granted)
        case (.resetLUN, _), (.resetAdapter, _), (.resetBus, _):
            // OpenVMM treats resets as no-ops that succeed: requests complete on their own.
            break
        default:
            reply.status = .invalidDeviceRequest
        }
        return Outcome(completion: reply, action: action)
    }

    /// The answer to an EXECUTE_SRB that arrives before initialization finished: INVALID_DEVICE_REQUEST.
    public func refusal(for request: VStorPacket) -> VStorPacket? {
        stage == .ready ? nil : VStorPacket(operation: .completeIO, flags: 0, status: .invalidDeviceRequest)
    }

    /// Completions are exactly as long as their request, as Hyper-V sends them (Windows guests check the size);
    /// never shorter than the 12-byte header, so even a truncated request gets an answer it can parse.
    public static func completionLength(forRequestPayload length: Int) -> Int {
        max(VStorPacket.headerSize, length)
    }
}
