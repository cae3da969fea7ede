// swift-tools-version: 6.2
import PackageDescription

// Layers, lowest first. A module imports only modules listed above it.
let safeSettings: [SwiftSetting] = [.strictMemorySafety()]

let package = Package(
    name: "swift-vmbus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vmbus", targets: ["vmbus"]),
        .executable(name: "vmbus-bench", targets: ["VMBusBenchmarks"]),
        // Coverage-guided fuzz targets (Scripts/fuzz; docs/CONFORMANCE.md "Fuzzing").
        .executable(name: "fuzz-channel-message", targets: ["FuzzChannelMessage"]),
        .executable(name: "fuzz-ring", targets: ["FuzzRing"]),
        .executable(name: "fuzz-server", targets: ["FuzzServer"]),
        .executable(name: "fuzz-guest-bus", targets: ["FuzzGuestBus"]),
        .executable(name: "fuzz-storvsp", targets: ["FuzzStorVSP"]),
        .executable(name: "fuzz-storvsc-completion", targets: ["FuzzStorVSCCompletion"]),
        .executable(name: "fuzz-vhd", targets: ["FuzzVHD"]),
        .executable(name: "fuzz-vhdx", targets: ["FuzzVHDX"]),
        .executable(name: "fuzz-ic-guest", targets: ["FuzzICGuest"]),
        .executable(name: "fuzz-ic-host", targets: ["FuzzICHost"]),
        .executable(name: "fuzz-netvsp", targets: ["FuzzNetVSP"]),
        .executable(name: "fuzz-netvsc-receive", targets: ["FuzzNetVSCReceive"]),
        .library(name: "VMBusHost", targets: ["VMBusHost"]),
        .library(name: "VMBusGuest", targets: ["VMBusGuest"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // memfd, eventfd, SCM_RIGHTS and other calls Glibc does not import.
        .target(name: "CVMBusShims"),
        // The lock every module uses: a pthread mutex, which ThreadSanitizer sees (docs/ARCHITECTURE.md).
        .target(name: "VMBusSync"),
        // Bounds-checked little-endian codec and GUIDs. No I/O, no unsafe code.
        .target(name: "VMBusWire", swiftSettings: safeSettings),
        // VMBus wire formats: channel messages, packet descriptors, GPA ranges, versions, device classes.
        .target(name: "VMBusProtocol", dependencies: ["VMBusWire"], swiftSettings: safeSettings),
        // Guest memory: one region indexed by 4 KiB page number; the only owner of raw mappings.
        .target(
            name: "VMBusMemory",
            dependencies: [
                "CVMBusShims", "VMBusProtocol", "VMBusSync",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        // The Hyper-V ring buffer over any memory.
        .target(
            name: "VMBusRing",
            dependencies: [
                "VMBusProtocol", "VMBusMemory",
                .product(name: "Atomics", package: "swift-atomics"),
            ]),
        // SynIC-style signalling and control-message delivery between host and guest.
        .target(
            name: "VMBusTransport",
            dependencies: [
                "CVMBusShims", "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusSync",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Host (parent partition): VMBus server and the device-provider API.
        .target(
            name: "VMBusHost",
            dependencies: [
                "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: safeSettings),
        // Guest (child partition): bus driver, device registry, driver model and channel library.
        .target(
            name: "VMBusGuest",
            dependencies: [
                "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: safeSettings),
        // The storage protocol (VSTOR packets, SRBs, versions, status codes), shared by StorVSC and StorVSP.
        .target(name: "VMBusStorageProtocol", dependencies: ["VMBusWire", "VMBusProtocol"], swiftSettings: safeSettings),
        // The network protocol (NVSP messages, RNDIS messages, per-packet info, OIDs and NDIS offload/RSS
        // structures), shared by NetVSC and NetVSP. No I/O.
        .target(name: "VMBusNetProtocol", dependencies: ["VMBusWire"], swiftSettings: safeSettings),
        // The integration services' wire formats (hv_utils: framing, negotiation, the six services), shared by both sides.
        .target(name: "VMBusICProtocol", dependencies: ["VMBusWire", "VMBusProtocol"], swiftSettings: safeSettings),
        // Disk backends behind the SCSI target: the interface, raw files, a RAM disk (image formats follow).
        .target(name: "VMBusDiskBackend", dependencies: ["CVMBusShims", "VMBusSync", "VMBusWire"]),
        // SCSI wire formats shared by both sides: opcodes, sense data, CDBs. No I/O.
        .target(name: "VMBusSCSI", swiftSettings: safeSettings),
        // The host's SCSI disk emulation (SBC-3) over a backend, and a controller's LUN table.
        .target(name: "VMBusSCSITarget", dependencies: ["VMBusSCSI", "VMBusDiskBackend", "VMBusSync"]),
        // StorVSP, the host's storage VSP: initialization state machine and the SCSI data path over the target.
        .target(
            name: "VMBusStorVSP",
            dependencies: ["VMBusStorageProtocol", "VMBusWire", "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                           "VMBusHost", "VMBusSCSI", "VMBusSCSITarget", "VMBusDiskBackend", "VMBusSync"]),
        // StorVSC, the guest's storage client: initialization, channels, bounce pages, LUN discovery, the disk API.
        .target(
            name: "VMBusStorVSC",
            dependencies: ["VMBusStorageProtocol", "VMBusWire", "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                           "VMBusGuest", "VMBusSCSI",
                           .product(name: "Atomics", package: "swift-atomics"),
                           .product(name: "Logging", package: "swift-log")]),
        // NetVSP, the host's network VSP: NVSP negotiation, the receive and send buffers, the RNDIS device,
        // checksum offload, and the backend protocol TAP and the switch plug into (plus an in-memory backend).
        .target(
            name: "VMBusNetVSP",
            dependencies: ["VMBusNetProtocol", "VMBusWire", "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                           "VMBusHost", "VMBusSync", .product(name: "Atomics", package: "swift-atomics")]),
        // NetVSC, the guest's network client: init in Linux's order, buffers, RNDIS, send and receive, counters.
        .target(
            name: "VMBusNetVSC",
            dependencies: ["VMBusNetProtocol", "VMBusWire", "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                           "VMBusGuest", "VMBusSync", .product(name: "Atomics", package: "swift-atomics"),
                           .product(name: "Logging", package: "swift-log")]),
        // The host side of the integration services: negotiation, one transaction at a time, heartbeat loss
        // detection, and the requests `vmbus ic` makes (shutdown, time, KVP, VSS, file copy).
        .target(
            name: "VMBusICHost",
            dependencies: ["VMBusICProtocol", "VMBusWire", "VMBusProtocol", "VMBusRing", "VMBusTransport", "VMBusHost",
                           .product(name: "Logging", package: "swift-log")]),
        // The guest side: Linux's hv_utils answers (heartbeat, shutdown, time sync, KVP pools, VSS hooks, file
        // copy), handing KVP, VSS and file copy to Debian's daemons when one is attached.
        .target(
            name: "VMBusICGuest",
            dependencies: ["VMBusICProtocol", "VMBusWire", "VMBusProtocol", "VMBusRing", "VMBusTransport", "VMBusGuest",
                           "VMBusUtilTransport", .product(name: "Atomics", package: "swift-atomics"),
                           .product(name: "Logging", package: "swift-log")]),
        // libfuse 3 from Debian (libfuse3-dev), through a system library with a header of inline wrappers.
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // The upper edge: guest disks as files in a FUSE mount (loop → ext4 on top).
        // The character devices of Linux's util drivers (hvutil_transport) and the kernel side of hv_kvp, hv_vss
        // and hv_fcopy towards Debian's hyperv-daemons. No FUSE here: VMBusFUSE serves these devices as files.
        .target(name: "VMBusUtilTransport", dependencies: ["VMBusICProtocol", "VMBusTransport", "VMBusWire"]),
        .target(name: "VMBusFUSE", dependencies: ["CFuse3", "VMBusStorVSC", "VMBusTransport", "VMBusUtilTransport"]),
        // libnbd from Debian (libnbd-dev), and the NBD disk backend on it: qemu-nbd, nbdkit and other servers.
        .systemLibrary(name: "CNBD", pkgConfig: "libnbd", providers: [.apt(["libnbd-dev"])]),
        .target(name: "VMBusNBD", dependencies: ["CNBD", "VMBusDiskBackend", "VMBusSync", "VMBusTransport"]),
        // The host's control socket: one request and one response per connection, text words (docs/CONTROL.md).
        .target(name: "VMBusControl", dependencies: ["VMBusTransport", .product(name: "Logging", package: "swift-log")]),
        // TUN/TAP and interface ioctls (variadic ioctl, constants Glibc does not import).
        .target(name: "CVMBusTAP"),
        // The network edges on TAP: a host NIC's backend (NetBackend) and the guest NIC's upper edge.
        .target(
            name: "VMBusNetTAP",
            dependencies: ["CVMBusTAP", "CVMBusShims", "VMBusNetVSP", "VMBusNetVSC", "VMBusGuest", "VMBusSync", "VMBusTransport",
                           .product(name: "Atomics", package: "swift-atomics"), .product(name: "Logging", package: "swift-log")]),
        // The internal L2 learning switch NICs of one host process share (`--nic switch[:NAME]`).
        .target(
            name: "VMBusNetSwitch",
            dependencies: ["VMBusNetVSP", "VMBusSync", "VMBusTransport", .product(name: "Atomics", package: "swift-atomics")]),
        // Test devices and harnesses shared by tests, benchmarks and the CLI.
        .target(
            name: "VMBusTestSupport",
            dependencies: ["VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport", "VMBusHost", "VMBusGuest"],
            swiftSettings: safeSettings),
        .executableTarget(
            name: "vmbus",
            dependencies: [
                "VMBusProtocol", "VMBusTransport", "VMBusHost", "VMBusGuest", "VMBusTestSupport", "VMBusWire",
                "VMBusDiskBackend", "VMBusSCSITarget", "VMBusStorageProtocol", "VMBusStorVSP", "VMBusStorVSC", "VMBusFUSE", "VMBusControl", "VMBusNBD",
                "VMBusICHost", "VMBusICGuest", "VMBusICProtocol", "VMBusUtilTransport",
                "VMBusNetVSP", "VMBusNetVSC", "VMBusNetSwitch", "VMBusNetTAP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Counts malloc calls so benchmarks can prove the data path does not allocate.
        .target(name: "CMallocCounter"),
        .executableTarget(
            name: "VMBusBenchmarks",
            dependencies: [
                "CMallocCounter", "CVMBusShims", "VMBusProtocol", "VMBusMemory", "VMBusRing", "VMBusTransport",
                "VMBusHost", "VMBusGuest", "VMBusTestSupport", "VMBusDiskBackend", "VMBusSCSITarget", "VMBusStorVSP",
                "VMBusStorVSC", "VMBusSCSI", "VMBusStorageProtocol", "VMBusWire", "VMBusNBD", "VMBusNetProtocol", "VMBusNetVSP",
                "VMBusNetVSC", .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]),

        // Fuzz targets: libFuzzer entry points under `#if FUZZING`, a replay/seed-writing CLI otherwise.
        .target(name: "FuzzSupport"),
        .executableTarget(
            name: "FuzzChannelMessage", dependencies: ["FuzzSupport", "VMBusProtocol", "VMBusWire", "VMBusTransport"]),
        .executableTarget(
            name: "FuzzRing",
            dependencies: ["FuzzSupport", "VMBusProtocol", "VMBusWire", "VMBusRing", "VMBusTransport"]),
        .executableTarget(
            name: "FuzzServer", dependencies: ["FuzzSupport", "VMBusProtocol", "VMBusWire", "VMBusHost"]),
        .executableTarget(
            name: "FuzzGuestBus",
            dependencies: ["FuzzSupport", "VMBusProtocol", "VMBusWire", "VMBusMemory", "VMBusRing", "VMBusSync", "VMBusTransport",
                           "VMBusGuest", "VMBusTestSupport", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "FuzzStorVSP",
            dependencies: ["FuzzSupport", "VMBusDiskBackend", "VMBusGuest", "VMBusMemory", "VMBusSCSITarget",
                           "VMBusStorageProtocol", "VMBusStorVSP", "VMBusTestSupport", "VMBusTransport", "VMBusWire",
                           .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "FuzzStorVSCCompletion",
            dependencies: ["FuzzSupport", "VMBusSCSI", "VMBusStorageProtocol", "VMBusStorVSC"]),
        .executableTarget(name: "FuzzVHD", dependencies: ["FuzzSupport", "VMBusDiskBackend"]),
        .executableTarget(name: "FuzzVHDX", dependencies: ["FuzzSupport", "VMBusDiskBackend", "VMBusWire"]),
        .executableTarget(name: "FuzzICGuest", dependencies: ["FuzzSupport", "VMBusICGuest", "VMBusICProtocol", "VMBusWire"]),
        .executableTarget(
            name: "FuzzICHost",
            dependencies: ["FuzzSupport", "VMBusICHost", "VMBusICProtocol", "VMBusGuest", "VMBusRing", "VMBusTestSupport",
                           "VMBusTransport", "VMBusWire", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "FuzzNetVSP",
            dependencies: ["FuzzSupport", "VMBusGuest", "VMBusMemory", "VMBusNetProtocol", "VMBusNetVSP", "VMBusRing",
                           "VMBusTestSupport", "VMBusTransport", "VMBusWire", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "FuzzNetVSCReceive",
            dependencies: ["FuzzSupport", "VMBusGuest", "VMBusHost", "VMBusMemory", "VMBusNetProtocol", "VMBusNetVSC",
                           "VMBusNetVSP", "VMBusProtocol", "VMBusRing", "VMBusTestSupport", "VMBusTransport", "VMBusWire",
                           .product(name: "Logging", package: "swift-log")]),

        .testTarget(name: "VMBusWireTests", dependencies: ["VMBusWire"]),
        // Linux 6.12's layouts (generated by Scripts/generate-layout-fixtures) and the byte-by-byte checker the
        // golden layout tests of every protocol module use.
        .target(name: "VMBusLayoutTesting", dependencies: ["VMBusWire"], path: "Tests/VMBusLayoutTesting"),
        .testTarget(name: "VMBusProtocolTests", dependencies: ["VMBusProtocol", "VMBusWire", "VMBusLayoutTesting"]),
        .testTarget(
            name: "VMBusStorageProtocolTests",
            dependencies: ["VMBusStorageProtocol", "VMBusProtocol", "VMBusWire", "VMBusLayoutTesting"]),
        .testTarget(name: "VMBusNetProtocolTests", dependencies: ["VMBusNetProtocol", "VMBusWire", "VMBusLayoutTesting"]),
        // IC structures against hv_utils.ko's layouts (fixture generated by the script it excludes), negotiation, hostile input.
        .testTarget(
            name: "VMBusICProtocolTests",
            dependencies: ["VMBusICProtocol", "VMBusProtocol", "VMBusWire", "VMBusLayoutTesting"],
            exclude: ["Fixtures/generate-ic-fixtures"]),
        .testTarget(name: "VMBusDiskBackendTests", dependencies: ["VMBusDiskBackend", "VMBusWire", "VMBusTestSupport"]),
        .testTarget(name: "VMBusNBDTests", dependencies: ["VMBusNBD", "VMBusDiskBackend", "VMBusTestSupport", "VMBusTransport"]),
        .testTarget(name: "VMBusSCSITargetTests", dependencies: ["VMBusSCSITarget", "VMBusSCSI", "VMBusDiskBackend"]),
        .testTarget(
            name: "VMBusStorVSPTests",
            dependencies: ["VMBusStorVSP", "VMBusStorageProtocol", "VMBusSCSI", "VMBusSCSITarget", "VMBusDiskBackend",
                           "VMBusHost", "VMBusGuest", "VMBusMemory", "VMBusProtocol", "VMBusRing", "VMBusTransport",
                           "VMBusTestSupport", "VMBusWire"]),
        .testTarget(
            name: "VMBusStorVSCTests",
            dependencies: ["VMBusStorVSC", "VMBusStorVSP", "VMBusStorageProtocol", "VMBusSCSI", "VMBusSCSITarget",
                           "VMBusDiskBackend", "VMBusHost", "VMBusGuest", "VMBusMemory", "VMBusProtocol", "VMBusRing",
                           "VMBusTransport", "VMBusTestSupport", "VMBusWire"]),
        // NetVSC against NetVSP through the real rings, and each against a raw hostile peer.
        .testTarget(
            name: "VMBusNetDevicesTests",
            dependencies: ["VMBusNetVSP", "VMBusNetVSC", "VMBusNetProtocol", "VMBusHost", "VMBusGuest", "VMBusMemory",
                           "VMBusProtocol", "VMBusRing", "VMBusTransport", "VMBusTestSupport", "VMBusWire", "VMBusSync"]),
        // The integration services host to guest through the real rings, each side against a raw hostile peer.
        .testTarget(
            name: "VMBusICDevicesTests",
            dependencies: ["VMBusICHost", "VMBusICGuest", "VMBusICProtocol", "VMBusUtilTransport", "VMBusFUSE", "VMBusHost", "VMBusGuest",
                           "VMBusProtocol", "VMBusRing", "VMBusTransport", "VMBusTestSupport", "VMBusWire"]),
        .testTarget(name: "VMBusControlTests", dependencies: ["VMBusControl", "VMBusTransport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VMBusRingTests", dependencies: ["VMBusRing", "VMBusMemory", "VMBusProtocol", "VMBusSync", "VMBusTestSupport", "CVMBusShims"]),
        .testTarget(name: "VMBusHostTests", dependencies: ["VMBusHost", "VMBusProtocol", "VMBusTestSupport"]),
        .testTarget(name: "VMBusGuestTests", dependencies: ["VMBusGuest", "VMBusProtocol", "VMBusTestSupport"]),
        // The network edges against the Linux stack: TAPs in namespaces of the test's own, the internal switch.
        .testTarget(
            name: "VMBusNetEdgeTests",
            dependencies: ["vmbus", "VMBusNetTAP", "VMBusNetSwitch", "VMBusNetVSP", "VMBusNetVSC", "VMBusProtocol",
                           "VMBusTestSupport", "VMBusTransport"]),
        .testTarget(
            name: "VMBusIntegrationTests",
            dependencies: ["VMBusHost", "VMBusGuest", "VMBusProtocol", "VMBusTransport", "VMBusTestSupport", "VMBusSync"]),
        // The socket transport in one process: frames, listener and ports, a rogue guest.
        .testTarget(
            name: "VMBusTransportTests",
            dependencies: ["VMBusTransport", "VMBusHost", "VMBusGuest", "VMBusProtocol", "VMBusMemory", "VMBusWire",
                           "VMBusTestSupport", "VMBusSync", "CVMBusShims",
                           .product(name: "Logging", package: "swift-log")]),
        // The `vmbus` executable as real processes (host, guests, list, up).
        .testTarget(
            name: "VMBusUtilTransportTests",
            dependencies: ["VMBusUtilTransport", "VMBusFUSE", "VMBusICProtocol", "VMBusTestSupport", "VMBusTransport", "VMBusWire"]),
        .testTarget(
            name: "VMBusCLITests",
            dependencies: ["vmbus", "VMBusTransport", "VMBusHost", "VMBusGuest", "VMBusProtocol", "VMBusTestSupport",
                           "CVMBusShims", "VMBusStorVSC", "VMBusDiskBackend", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
