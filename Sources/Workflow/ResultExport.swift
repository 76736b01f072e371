import Foundation
import Stories
import Store

/// `storyloom export`: stored results as a tidy table for pandas — one row per item of each exported step
/// (`entry`, `panel`, `item`, `step`, `kind`, `status`, `error`, then the step's outputs). Media are paths
/// relative to the output's folder; a decision is its choice plus `<output>_p`; retrievals are lists of
/// `{id, score}`; vectors only when a column names them (they are large).
public struct ResultExport {
    public enum Format: String, CaseIterable, Sendable {
        case jsonl, csv
    }

    public var plan: Plan
    public var store: any ResultStore

    public init(plan: Plan, store: any ResultStore) {
        self.plan = plan
        self.store = store
    }

    /// The fixed columns, then each output in the order the steps declare them.
    public static let idColumns = ["entry", "panel", "item", "step", "kind", "status", "error"]

    /// Rows of the steps and outputs `columns` names (`step` or `step.output`; empty: every step, every
    /// output but vectors). Items never computed are `missing`; failed ones carry their error.
    /// - Parameter relativeTo: the folder media paths are written relative to.
    public func rows(columns: [String] = [], relativeTo folder: URL) throws -> (header: [String], rows: [[String: JSONValue]]) {
        let selection = try select(columns)
        var header = Self.idColumns
        var rows: [[String: JSONValue]] = []
        let reader = ResultReader(store: store)
        let collection = try plan.collection
        for (step, outputs) in selection {
            for name in outputs where !header.contains(name) { header.append(name) }
            let results = try reader.read(step.items.map(\.fingerprint))
            for item in step.items {
                let entry = collection.entries[item.entryIndex]
                var row: [String: JSONValue] = [
                    "entry": .string(entry.id), "panel": item.panelIndex.map { .number(Double($0 + 1)) } ?? .null,
                    "item": .string(item.id), "step": .string(step.spec.id), "kind": .string(step.kind.name),
                ]
                guard let r = results[item.fingerprint] else {
                    row["status"] = .string("missing")
                    rows.append(row)
                    continue
                }
                row["status"] = .string(r.ok ? "ok" : "failed")
                if let e = r.error { row["error"] = .string(e) }
                for name in outputs {
                    guard let value = r.outputs[name] else { continue }
                    if case .choice(let c, let p) = value {
                        row[name] = .string(c)
                        row[name + "_p"] = Self.number(p)
                        if !header.contains(name + "_p"), let i = header.firstIndex(of: name) { header.insert(name + "_p", at: i + 1) }
                    } else {
                        row[name] = json(value, relativeTo: folder)
                    }
                }
                rows.append(row)
            }
        }
        return (header, rows)
    }

    /// Writes the table in `format` to `output` (nil: standard output).
    public func write(format: Format, columns: [String] = [], to output: URL?) throws {
        let folder = output?.deletingLastPathComponent() ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let (header, rows) = try self.rows(columns: columns, relativeTo: folder)
        var text = ""
        switch format {
        case .jsonl:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for row in rows { text += String(decoding: try encoder.encode(row), as: UTF8.self) + "\n" }
        case .csv:
            text = header.map(Self.csvField).joined(separator: ",") + "\n"
            for row in rows {
                text += header.map { Self.csvField(Self.csvText(row[$0])) }.joined(separator: ",") + "\n"
            }
        }
        if let output {
            do {
                try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: output, options: .atomic)
            } catch {
                throw StepError("cannot write \(output.path): \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    // MARK: Selection

    func select(_ columns: [String]) throws -> [(StepPlan, [String])] {
        if columns.isEmpty {
            return plan.steps.map { step in (step, step.kind.outputs.filter { !isVector($0, of: step) }) }
        }
        var out: [(StepPlan, [String])] = []
        for column in columns {
            let parts = column.split(separator: ".", maxSplits: 1).map(String.init)
            guard let step = plan.step(parts[0]) else {
                throw StepError("--columns \(column): no step \"\(parts[0])\"\(Suggest.hint(parts[0], plan.steps.map(\.spec.id)))")
            }
            let outputs = parts.count == 2 ? [parts[1]] : step.kind.outputs.filter { !isVector($0, of: step) }
            for o in outputs where !step.kind.outputs.contains(o) {
                throw StepError("--columns \(column): step \"\(step.spec.id)\" has no output \"\(o)\"\(Suggest.hint(o, step.kind.outputs)); its outputs: \(step.kind.outputs.joined(separator: ", "))")
            }
            if let i = out.firstIndex(where: { $0.0.spec.id == step.spec.id }) {
                out[i].1 += outputs.filter { !out[i].1.contains($0) }
            } else {
                out.append((step, outputs))
            }
        }
        return out
    }

    /// Embedding outputs (vectors) stay out unless named.
    func isVector(_ output: String, of step: StepPlan) -> Bool { output.hasSuffix("embedding") }

    // MARK: Values

    func json(_ value: Value, relativeTo folder: URL) -> JSONValue {
        switch value {
        case .text(let s): return .string(s)
        case .number(let n): return Self.number(n)
        case .image(let ref):
            let url = ref.path.map { URL(fileURLWithPath: $0) } ?? store.media.url(hash: ref.hash, ext: ref.ext)
            return .string(Self.relativePath(url, from: folder))
        case .vector(let v): return .array(v.map { Self.number(Double($0)) })
        case .ranked(let candidates):
            return .array(candidates.map { .object(["id": .string($0.id), "score": Self.number($0.score)]) })
        case .choice(let c, let p): return .object(["choice": .string(c), "probability": Self.number(p)])
        case .list(let values): return .array(values.map { json($0, relativeTo: folder) })
        case .record(let fields): return .object(fields.mapValues { json($0, relativeTo: folder) })
        }
    }

    /// JSON has no NaN or infinity: they export as null (pandas reads NaN).
    static func number(_ n: Double) -> JSONValue { n.isFinite ? .number(n) : .null }

    /// `file` relative to `folder` (`../store/media/ab/….png`), both made absolute and symlink-free.
    static func relativePath(_ file: URL, from folder: URL) -> String {
        let a = file.standardizedFileURL.resolvingSymlinksInPath().pathComponents
        let b = folder.standardizedFileURL.resolvingSymlinksInPath().pathComponents
        var common = 0
        while common < min(a.count, b.count), a[common] == b[common] { common += 1 }
        let up = Array(repeating: "..", count: b.count - common)
        return (up + a[common...]).joined(separator: "/")
    }

    static func csvText(_ v: JSONValue?) -> String {
        guard let v else { return "" }
        switch v {
        case .null: return ""
        case .string(let s): return s
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
        case .bool(let b): return b ? "true" : "false"
        case .array, .object:
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? String(decoding: e.encode(v), as: UTF8.self)) ?? ""
        }
    }

    /// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
