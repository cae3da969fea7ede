import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// One recorded figure (``BenchmarkContext/record(_:_:unit:low:high:)``).
struct BenchmarkRecord: Codable, Sendable {
    var section: String
    var series: String
    var value: Double
    var unit: String
    var low: Double?
    var high: Double?
}

/// What `vmbus-bench --json PATH` writes and `vmbus-bench --chart JSON SVG` reads.
struct BenchmarkResults: Codable, Sendable {
    var cpus: Int
    var quick: Bool
    var records: [BenchmarkRecord]

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFile(path, Array(try encoder.encode(self)))
    }

    static func read(from path: String) throws -> BenchmarkResults {
        try JSONDecoder().decode(BenchmarkResults.self, from: Data(try readFile(path)))
    }
}

struct BenchmarkFileError: Error, CustomStringConvertible {
    let path: String
    let errno: Int32
    var description: String { "\(path): \(String(cString: strerror(errno)))" }
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let f = fopen(path, "w") else { throw BenchmarkFileError(path: path, errno: errno) }
    defer { fclose(f) }
    guard fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw BenchmarkFileError(path: path, errno: errno) }
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "r") else { throw BenchmarkFileError(path: path, errno: errno) }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        bytes += chunk[0..<n]
        if n < chunk.count { break }
    }
    return bytes
}

/// The chart of a results file: one panel per section, a horizontal bar per figure (ours first, then the
/// baselines), each panel on its own scale since the units differ; the spread over rounds as a whisker, and
/// the section's ratios written under its bars. Plain SVG, no script, no fonts beyond the viewer's sans-serif.
enum BenchmarkChart {
    static let width = 760.0
    static let labelWidth = 230.0
    static let barHeight = 18.0

    static func svg(_ results: BenchmarkResults) -> String {
        var sections: [String] = []
        for r in results.records where !sections.contains(r.section) { sections.append(r.section) }
        var body = ""
        var y = 40.0
        for section in sections {
            let records = results.records.filter { $0.section == section }
            let bars = records.filter { $0.unit != "ratio" }
            let ratios = records.filter { $0.unit == "ratio" }
            body += text(x: 10, y: y, escape(section), weight: "bold", size: 14)
            y += 8
            // Bars of one panel share the unit of its first bar; figures in another unit go in the caption.
            let unit = bars.first?.unit ?? ""
            let scaled = bars.filter { $0.unit == unit }
            let top = scaled.map { max($0.value, $0.high ?? 0) }.max() ?? 1
            let span = width - labelWidth - 150
            for (i, bar) in scaled.enumerated() {
                let w = top > 0 ? bar.value / top * span : 0
                let colour = i == 0 ? "#2b6cb0" : "#a0aec0"
                body += text(x: labelWidth - 6, y: y + barHeight - 5, escape(bar.series), anchor: "end")
                body += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(format(w, 1))\" height=\"\(barHeight - 4)\" fill=\"\(colour)\"/>\n"
                if let low = bar.low, let high = bar.high, top > 0 {
                    let x0 = labelWidth + low / top * span, x1 = labelWidth + high / top * span
                    let mid = y + (barHeight - 4) / 2
                    body += "<line x1=\"\(format(x0, 1))\" y1=\"\(format(mid, 1))\" x2=\"\(format(x1, 1))\" y2=\"\(format(mid, 1))\" stroke=\"#1a202c\"/>\n"
                }
                body += text(x: labelWidth + w + 6, y: y + barHeight - 5, "\(format(bar.value, 3)) \(escape(bar.unit))")
                y += barHeight
            }
            var captions = ratios.map { r in
                "\(r.series) \(format(r.value, 3))" + (r.low.map { l in " (\(format(l, 3))…\(format(r.high ?? l, 3)))" } ?? "")
            }
            captions += bars.filter { $0.unit != unit }.map { "\($0.series) \(format($0.value, 3)) \($0.unit)" }
            for caption in captions {
                body += text(x: labelWidth, y: y + 12, escape(caption), size: 11)
                y += 15
            }
            y += 22
        }
        let header = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(format(width, 0))\" height=\"\(format(y, 0))\" "
            + "viewBox=\"0 0 \(format(width, 0)) \(format(y, 0))\" font-family=\"sans-serif\" font-size=\"12\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            + text(x: 10, y: 20, "vmbus-bench: ours (blue) against baselines measured in the same run; "
                   + "\(results.cpus) CPUs\(results.quick ? ", --quick" : "")", size: 12)
        return header + body + "</svg>\n"
    }

    static func text(x: Double, y: Double, _ s: String, anchor: String = "start", weight: String = "normal",
                     size: Int = 12) -> String {
        "<text x=\"\(format(x, 1))\" y=\"\(format(y, 1))\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\" "
            + "font-size=\"\(size)\">\(s)</text>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
