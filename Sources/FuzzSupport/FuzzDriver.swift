// Shared driver of the coverage-guided fuzz targets (Sources/Fuzz*): the libFuzzer entry point when built with
// `-Xswiftc -DFUZZING --sanitize=fuzzer`, and a plain command-line mode otherwise (replay inputs, write seeds).
//
// Each fuzz target defines, under `#if FUZZING`, `LLVMFuzzerTestOneInput` (called by libFuzzer's `main`, which
// SwiftPM links for `--sanitize=fuzzer`) and its own `<Module>_main` (the name SwiftPM gives an executable
// module's entry point) calling `LLVMFuzzerRunDriver`; without FUZZING it has an `@main` that calls
// `runStandalone`, so a plain `swift build` links a small command-line tool.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One fuzz target: the function run on every input, and seed inputs built from valid messages.
public struct FuzzTarget: Sendable {
    /// Product name, e.g. `fuzz-channel-message`.
    public let product: String
    /// Directory under `Fuzz/Corpus/` holding the committed seeds.
    public let corpus: String
    /// One line on what the target covers.
    public let summary: String
    /// Runs one input; must return normally for every input. Invariant violations call ``fuzzCheck(_:_:)``.
    public let body: @Sendable ([UInt8]) -> Void
    /// Seed inputs (file name, bytes), written by `--write-seeds`.
    public let seeds: @Sendable () -> [(String, [UInt8])]

    public init(product: String, corpus: String, summary: String,
                body: @escaping @Sendable ([UInt8]) -> Void,
                seeds: @escaping @Sendable () -> [(String, [UInt8])]) {
        self.product = product
        self.corpus = corpus
        self.summary = summary
        self.body = body
        self.seeds = seeds
    }
}

/// Set by `-v` in the replay mode: targets then describe each step with ``fuzzLog(_:)``.
nonisolated(unsafe) public var fuzzVerbose = false

/// Prints a step of the current input when replaying with `-v`.
@inline(__always)
public func fuzzLog(_ message: @autoclosure () -> String) {
    if fuzzVerbose { printError(message() + "\n") }
}

/// Writes `message` to standard error, unbuffered.
public func printError(_ message: String) {
    var m = message
    m.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Stops the process (libFuzzer reports it as a crash and saves the input) when an invariant does not hold.
@inline(__always)
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        printError("fuzz invariant violated at \(file):\(line): \(message())\n")
        abort()
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

nonisolated(unsafe) private var activeTarget: FuzzTarget?

/// Runs one input from libFuzzer's `LLVMFuzzerTestOneInput`. With `--sanitize=fuzzer` SwiftPM links
/// libFuzzer's own `main`, which calls that function; each target defines it and calls this.
@inline(__always)
public func runOneInput(_ target: FuzzTarget, _ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    target.body(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// Hands the process to libFuzzer, which parses `argv` (corpus directories, `-max_total_time=` …) and calls
/// the target's body for every input. For a `<Module>_main` entry point, when the executable's `main` is the
/// module's own (SwiftPM 6.3 instead links libFuzzer's `main`, which calls `LLVMFuzzerTestOneInput`).
public func runLibFuzzer(_ target: FuzzTarget, argc: Int32,
                         argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    activeTarget = target
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
        activeTarget!.body(bytes)
        return 0
    }
}
#endif

/// The executable built without FUZZING: explains how to fuzz, replays inputs (`FILE...`, e.g. a crash
/// reproducer, without sanitizers) and writes the seed corpus (`--write-seeds DIR`).
public func runStandalone(_ target: FuzzTarget) -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    if args.first == "-v" {
        fuzzVerbose = true
        args.removeFirst()
    }
    if args.isEmpty || args[0] == "-h" || args[0] == "--help" {
        print("""
            \(target.product): \(target.summary)

            This build has no fuzzing engine. Fuzz with Scripts/fuzz [SECONDS] \(target.corpus), or by hand:
              swift build -c release --scratch-path .build-fuzz --product \(target.product) \\
                  --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING -Xswiftc -sanitize=fuzzer,address
              SWIFT_BACKTRACE=enable=no .build-fuzz/release/\(target.product) Fuzz/Corpus/\(target.corpus)

            Without the engine:
              \(target.product) [-v] FILE...         run each input once (replay a crash reproducer; -v traces)
              \(target.product) --write-seeds DIR    write the seed inputs into DIR
            """)
        return 0
    }
    if args[0] == "--write-seeds" {
        guard args.count == 2 else {
            printError("usage: \(target.product) --write-seeds DIR\n")
            return 2
        }
        for (name, bytes) in target.seeds() {
            let path = args[1] + "/" + name
            guard let f = fopen(path, "wb") else {
                printError("cannot write \(path)\n")
                return 1
            }
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
            print("wrote \(path) (\(bytes.count) bytes)")
        }
        return 0
    }
    for path in args {
        guard let bytes = readFile(path) else {
            printError("cannot read \(path)\n")
            return 1
        }
        let start = nanoseconds()
        target.body(bytes)
        print("\(path): ok (\(bytes.count) bytes, \((nanoseconds() - start) / 1000) µs)")
    }
    return 0
}

private func nanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

private func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

/// Reads fuzz input front to back; past the end every read returns zeros, so any input is usable.
public struct FuzzInput: Sendable {
    public let bytes: [UInt8]
    public private(set) var index = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { index >= bytes.count }
    public var remaining: Int { max(0, bytes.count - index) }

    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    public mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    public mutating func bool() -> Bool { byte() & 1 != 0 }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func bytes(_ count: Int) -> [UInt8] {
        let n = min(max(0, count), remaining)
        defer { index += n }
        return Array(bytes[index..<(index + n)])
    }

    /// A chunk prefixed by its one-byte length.
    public mutating func chunk() -> [UInt8] { bytes(Int(byte())) }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] { bytes(remaining) }
}

/// Builds fuzz inputs in the format ``FuzzInput`` reads (for seeds).
public struct FuzzInputBuilder {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func byte(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { byte(UInt8(truncatingIfNeeded: v)); byte(UInt8(truncatingIfNeeded: v >> 8)) }
    public mutating func u32(_ v: UInt32) { u16(UInt16(truncatingIfNeeded: v)); u16(UInt16(truncatingIfNeeded: v >> 16)) }
    public mutating func u64(_ v: UInt64) { u32(UInt32(truncatingIfNeeded: v)); u32(UInt32(truncatingIfNeeded: v >> 32)) }
    public mutating func raw(_ v: [UInt8]) { bytes += v }
    /// A chunk with its one-byte length (at most 255 bytes).
    public mutating func chunk(_ v: [UInt8]) {
        precondition(v.count <= 255, "chunk too long")
        byte(UInt8(v.count))
        raw(v)
    }
}
