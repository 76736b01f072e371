import Foundation
import Stories
import Yams

/// `--set STEP.PARAM=VALUE` and `--set '*.PARAM=VALUE'`.
extension SpecParser {
    /// A `--set` value: numbers, booleans and flow lists/mappings are read as YAML; anything else (text
    /// with spaces, `|`, quotes) is taken verbatim, so a shell-quoted string means what it says.
    static func overrideValue(_ raw: String) -> JSONValue {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard trimmed == raw, !raw.isEmpty, let parsed = (try? Yams.compose(yaml: raw)) ?? nil else { return .string(raw) }
        switch parsed {
        case .scalar(let s) where s.style == .plain:
            let v = jsonValue(parsed) ?? .string(raw)
            if case .string = v { return .string(raw) }
            return v
        case .sequence, .mapping:
            return (raw.hasPrefix("[") || raw.hasPrefix("{")) ? (jsonValue(parsed) ?? .string(raw)) : .string(raw)
        default:
            return .string(raw)
        }
    }

    func applyOverrides(_ overrides: [String], to steps: inout [StepSpec], ctx: inout Context) {
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), let dot = o[..<eq].firstIndex(of: ".") else {
                ctx.errors.append(WorkflowError(nil, "--set \"\(o)\": expected STEP.PARAM=VALUE"))
                continue
            }
            let stepID = String(o[..<dot]), param = String(o[o.index(after: dot)..<eq]), raw = String(o[o.index(after: eq)...])
            // `*.PARAM=VALUE` sets PARAM on every step whose kind has it (e.g. `--set '*.seed=2'`).
            if stepID == "*" {
                let value = Self.overrideValue(raw)
                var matched = 0
                for index in steps.indices {
                    guard let spec = registry[steps[index].use]?.param(param) else { continue }
                    if let problem = Self.check(value, against: spec) {
                        ctx.errors.append(WorkflowError(nil, "--set \"\(o)\": step \"\(steps[index].id)\": \(problem)"))
                    } else {
                        steps[index].params[param] = value
                    }
                    matched += 1
                }
                if matched == 0 {
                    let known = Set(steps.compactMap { registry[$0.use] }.flatMap { $0.params.map(\.name) })
                    ctx.errors.append(WorkflowError(nil, "--set \"\(o)\": no step of this workflow has a param \"\(param)\"\(Suggest.hint(param, known.sorted()))"))
                }
                continue
            }
            guard let index = steps.firstIndex(where: { $0.id == stepID }) else {
                ctx.errors.append(WorkflowError(nil, "--set \"\(o)\": no step \"\(stepID)\"\(Suggest.hint(stepID, steps.map(\.id)))"))
                continue
            }
            let value = Self.overrideValue(raw)
            if let kind = registry[steps[index].use] {
                guard let spec = kind.param(param) else {
                    ctx.errors.append(WorkflowError(nil, "--set \"\(o)\": unknown param \"\(param)\" for step kind \"\(kind.name)\"\(Suggest.hint(param, kind.params.map(\.name)))"))
                    continue
                }
                if let problem = Self.check(value, against: spec) {
                    ctx.errors.append(WorkflowError(nil, "--set \"\(o)\": \(problem)"))
                    continue
                }
            }
            steps[index].params[param] = value
        }
    }
}
