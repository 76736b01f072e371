import Foundation
import Tensor

/// One row of a benchmark: Storyloom's time beside the PyTorch reference's, from the same invocation.
public struct BenchRow: Codable, Sendable {
    public var name: String
    /// Seconds per operation for Storyloom.
    public var storyloom_s: Double
    /// Seconds per operation for the reference, or nil when the reference stack is not installed.
    public var reference_s: Double?
    /// reference_s / storyloom_s: above 1 means Storyloom is faster.
    public var ratio: Double?
    /// Free-form extras printed after the timing (GFLOP/s, items/s, peak memory, …).
    public var extra: [String: Double]

    public init(name: String, storyloom_s: Double, reference_s: Double?, extra: [String: Double] = [:]) {
        self.name = name
        self.storyloom_s = storyloom_s
        self.reference_s = reference_s
        self.ratio = reference_s.map { $0 / storyloom_s }
        self.extra = extra
    }
}

/// A benchmark's result table, printed as aligned text or as `{"rows":[…]}` JSON.
public struct BenchReport: Codable, Sendable {
    public var rows: [BenchRow]
    /// Notes printed under the table (environment, thread count, why the reference is missing, …).
    public var notes: [String]

    public init(rows: [BenchRow] = [], notes: [String] = []) {
        self.rows = rows
        self.notes = notes
    }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public func table() -> String {
        let extraKeys = Array(Set(rows.flatMap { $0.extra.keys })).sorted()
        var header = ["benchmark", "storyloom s", "reference s", "ratio"] + extraKeys
        var lines: [[String]] = []
        for row in rows {
            var cells = [row.name, fmt(row.storyloom_s), row.reference_s.map(fmt) ?? "—",
                         row.ratio.map { String(format: "%.2f×", $0) } ?? "—"]
            cells += extraKeys.map { key in row.extra[key].map(fmt) ?? "" }
            lines.append(cells)
        }
        let widths = header.indices.map { i in ([header] + lines).map { $0[i].count }.max() ?? 0 }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
        }
        header = header.map { $0 }
        var out = [render(header), String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))]
        out += lines.map(render)
        out += notes
        return out.joined(separator: "\n")
    }

    private func fmt(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1000 { return String(format: "%.0f", v) }
        if abs(v) >= 1 { return String(format: "%.3f", v) }
        return String(format: "%.4g", v)
    }
}

/// Describes the OpenBLAS kernels and settings, so every benchmark states what it ran under: the core
/// OpenBLAS runs and who chose it (the user's `OPENBLAS_CORETYPE`, Storyloom's re-execution, or OpenBLAS).
public func openBLASEnvironmentNote() -> String {
    let l2 = ProcessInfo.processInfo.environment["OPENBLAS_L2_SIZE"] ?? "unset"
    let report = BLASKernels.report
    return "\(report.kernels), OPENBLAS_L2_SIZE=\(l2), idle workers spin \(report.timeoutDescription); \(HeapPolicy.description); \(winogradProductsDescription); \(linearProductsDescription); \(convProductsDescription)"
}
