import Foundation

/// The step kinds described for people: `storyloom steps` prints ``text``, and the README's step table is
/// ``markdown`` (a test keeps the two equal). Both come from each kind's declarations, params from its
/// ``StepParams`` struct.
extension StepRegistry {
    public var catalogText: String {
        var lines: [String] = []
        for name in names {
            guard let k = self[name] else { continue }
            lines.append("\(k.name) (v\(k.version), per \(k.scopeDescription))")
            lines.append("  \(k.summary)")
            for p in k.params {
                let def = p.defaultValue.map { " = \(Explainer.show($0))" } ?? " (required)"
                lines.append("  param  \(p.name)\(def): \(p.doc)\(p.kind.constraint.map { " [\($0)]" } ?? "")")
            }
            for i in k.inputs { lines.append("  input  \(i.name)\(i.required ? "" : " (optional)"): \(i.doc)") }
            lines.append("  output \(k.outputs.joined(separator: ", "))")
            if !k.modelKinds.isEmpty { lines.append("  model  \(k.modelKinds.joined(separator: " | "))\(k.modelOptional ? " (optional)" : "")") }
        }
        return lines.joined(separator: "\n")
    }

    /// One table row per param: kind, param, type, default, what it does.
    public var catalogMarkdown: String {
        var lines = ["| step | param | type | default | what it does |", "| --- | --- | --- | --- | --- |"]
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        for name in names {
            guard let k = self[name] else { continue }
            if k.params.isEmpty { lines.append("| `\(k.name)` | — | | | |") }
            for p in k.params {
                let def = p.defaultValue.map { "`\(Explainer.show($0))`" } ?? "required"
                lines.append("| `\(k.name)` | `\(p.name)` | \(cell(p.kind.typeName)) | \(cell(def)) | \(cell(p.doc)) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension StepKind {
    var scopeDescription: String {
        scope.rawValue + (scopeSelectable ? " or per \(scope == .panel ? "entry" : "panel")" : "")
    }
}

extension ParamSpec.Kind {
    /// The type as the catalog names it.
    var typeName: String {
        switch self {
        case .int(let lo, let hi): return "integer" + Self.range(lo.map(Double.init), hi.map(Double.init))
        case .double(let lo, let hi): return "number" + Self.range(lo, hi)
        case .string: return "string"
        case .bool: return "true/false"
        case .choice(let options): return options.joined(separator: " / ")
        case .stringList: return "list of strings"
        }
    }

    /// Bounds or choices, for the text listing.
    var constraint: String? {
        switch self {
        case .int, .double:
            let t = typeName
            return t.contains(" ") ? String(t[t.index(after: t.firstIndex(of: " ")!)...]) : nil
        case .choice(let options): return options.joined(separator: ", ")
        default: return nil
        }
    }

    static func range(_ lo: Double?, _ hi: Double?) -> String {
        func show(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
        switch (lo, hi) {
        case let (l?, h?): return " \(show(l))–\(show(h))"
        case let (l?, nil): return " ≥ \(show(l))"
        case let (nil, h?): return " ≤ \(show(h))"
        default: return ""
        }
    }
}
