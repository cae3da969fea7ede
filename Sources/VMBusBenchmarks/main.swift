// vmbus-bench: performance figures for swift-vmbus, each next to a baseline measured in the same run.
//
//   swift run -c release vmbus-bench [--filter SUBSTRING]... [--repeat N] [--quick] [--no-pin] [--list] [--json PATH]
//   vmbus-bench --chart RESULTS.json CHART.svg
//
// Sections are listed below; add new ones (channel, StorVSP, NetVSP ...) to `allSections`. Each prints its
// figures and the baseline it is compared with; hard requirements (no allocation in a measured loop) make the
// exit status 1. Machines of this project's kind flip between a fast and a slow state (vCPU placement), so
// compare figures within one run and use --repeat.
import CVMBusShims

#if canImport(Glibc)
import Glibc
#endif

// The cross-process sections start this executable again as their peer process.
if CommandLine.arguments.contains("--peer") { CrossProcessBenchmarks.peerMain(CommandLine.arguments) }
// Fixed-work loops for callgrind (Scripts/callgrind-ring).
if CommandLine.arguments.contains("--loop") { CountedLoops.main(CommandLine.arguments) }

let allSections: [BenchmarkSection] = RingBenchmarks.sections + CrossProcessBenchmarks.sections + ChannelBenchmarks.sections
    + RingBaselineBenchmarks.sections
    + StorageBenchmarks.sections + [StorageAllocationProbe.section] + ImageBenchmarks.sections + NetBenchmarks.sections
    + [NetIperfBenchmark.section]

func usage() -> Never {
    print("""
        usage: vmbus-bench [--filter SUBSTRING]... [--repeat N] [--quick] [--no-pin] [--list] [--json PATH]
               vmbus-bench --chart RESULTS.json CHART.svg
          --filter S   run only sections whose name contains S (repeatable)
          --repeat N   run each section N times (default 1)
          --quick      a tenth of the iterations (smoke test)
          --no-pin     do not pin worker threads to CPUs 0 and 1
          --list       list the sections and exit
          --json PATH  also write the recorded figures as JSON (BenchmarkResults.swift)
          --chart JSON SVG   render a results file as an SVG chart and exit
        """)
    exit(2)
}

var filters: [String] = []
var jsonPath: String?
var repetitions = 1
var context = BenchmarkContext()
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--filter":
        guard let f = arguments.popFirst() else { usage() }
        filters.append(f)
    case "--repeat":
        guard let v = arguments.popFirst(), let n = Int(v), n > 0 else { usage() }
        repetitions = n
    case "--quick": context.scale = 0.1
    case "--no-pin": context.pin = false
    case "--json":
        guard let p = arguments.popFirst() else { usage() }
        jsonPath = p
    case "--chart":
        guard let input = arguments.popFirst(), let output = arguments.popFirst() else { usage() }
        do {
            try writeFile(output, Array(BenchmarkChart.svg(BenchmarkResults.read(from: input)).utf8))
        } catch {
            print("chart: \(error)")
            exit(1)
        }
        exit(0)
    case "--list":
        for s in allSections { print(s.name.padding(18) + s.summary) }
        exit(0)
    default: usage()
    }
}

let selected = allSections.filter { s in filters.isEmpty || filters.contains { s.name.contains($0) } }
if selected.isEmpty {
    print("no section matches \(filters)")
    exit(2)
}
#if DEBUG
print("warning: debug build; use `swift run -c release vmbus-bench` for meaningful figures")
#endif
print("vmbus-bench: \(vmbus_shim_cpu_count()) CPUs, threads \(context.pin ? "pinned to CPUs 0 and 1" : "not pinned")")
for section in selected {
    for r in 1...repetitions {
        print("== \(section.name)\(repetitions > 1 ? " (run \(r) of \(repetitions))" : ""): \(section.summary)")
        context.section = section.name
        do {
            try section.run(&context)
        } catch {
            context.failures.append("\(section.name): \(error)")
            print("  FAILED: \(error)")
        }
    }
}
if let jsonPath {
    do {
        try BenchmarkResults(cpus: Int(vmbus_shim_cpu_count()), quick: context.scale < 1, records: context.records)
            .write(to: jsonPath)
    } catch {
        print("json: \(error)")
        exit(1)
    }
}
if !context.failures.isEmpty {
    print("\(context.failures.count) requirement(s) failed")
    exit(1)
}
