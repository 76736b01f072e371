import Foundation
import Stories
import Store

/// Says in words why an item's fingerprint changed, from the stored and the new components.
public enum Explainer {
    /// Differences such as `param size: 32 → 64`, `input image changed`, `model clip changed`.
    public static func differences(old: Data?, new: Data, spec: StepSpec) -> [String] {
        guard let old, let before = FingerprintComponents.decode(old), let after = FingerprintComponents.decode(new) else {
            return ["no earlier record"]
        }
        var out: [String] = []
        if before.version != after.version {
            out.append("step implementation changed (version \(before.version) → \(after.version))")
        }
        for key in Set(before.params.keys).union(after.params.keys).sorted() where before.params[key] != after.params[key] {
            out.append("param \(key): \(show(before.params[key])) → \(show(after.params[key]))")
        }
        for key in Set(before.inputs.keys).union(after.inputs.keys).sorted() where before.inputs[key] != after.inputs[key] {
            let ref = spec.inputs[key]?.text ?? key
            if before.inputs[key] == nil { out.append("new input \(key) (\(ref))") }
            else if after.inputs[key] == nil { out.append("input \(key) removed") }
            else { out.append("input \(key) (\(ref)) changed") }
        }
        if before.model != after.model {
            out.append("model \(spec.model ?? "") changed (\(short(before.model)) → \(short(after.model)))")
        }
        if before.seed != after.seed { out.append("seed changed") }
        return out
    }

    public static func show(_ v: JSONValue?) -> String {
        guard let v else { return "(unset)" }
        switch v {
        case .string(let s): return s
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
        case .bool(let b): return String(b)
        case .null: return "null"
        default:
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            return (try? String(decoding: e.encode(v), as: UTF8.self)) ?? "?"
        }
    }

    static func short(_ digest: String) -> String {
        digest.isEmpty ? "none" : String(digest.prefix(12))
    }

    /// The full explanation of one item for `storyloom explain`.
    public static func explain(plan: Plan, stepID: String, itemID: String, store: any ResultStore) throws -> String {
        guard let step = plan.step(stepID) else {
            throw StepError("no step \"\(stepID)\" in workflow \(plan.spec.name)\(Suggest.hint(stepID, plan.steps.map(\.spec.id)))")
        }
        guard let i = step.index[itemID] else {
            let sample = step.items.prefix(3).map(\.id).joined(separator: ", ")
            throw StepError("step \"\(stepID)\" has no item \"\(itemID)\"\(Suggest.hint(itemID, step.items.prefix(5000).map(\.id))) (items look like \(sample))")
        }
        let item = step.items[i]
        var lines = ["step \(stepID) (\(step.kind.name) v\(step.kind.version)), item \(itemID)",
                     "fingerprint \(item.fingerprint)"]
        let state = try store.state(workflow: plan.spec.name, stepID: stepID, itemID: itemID)
        switch item.status {
        case .cached:
            lines.append(state?.fingerprint == item.fingerprint ? "status: cached (unchanged since the last run)"
                         : "status: cached (a stored result with this fingerprint exists; restored without recomputation)")
        case .new:
            lines.append("status: new (this workflow has never computed it, and the store has no result for it)")
        case .stale(let reasons):
            lines.append("status: stale")
            if let state, state.fingerprint != item.fingerprint {
                lines.append("previous fingerprint \(state.fingerprint)")
                for r in differences(old: state.components, new: Data(item.components.utf8), spec: step.spec) { lines.append("  - \(r)") }
            } else {
                for r in reasons { lines.append("  - \(r)") }
            }
        }
        lines.append("params:")
        for key in step.params.keys.sorted() {
            let affects = step.kind.param(key)?.affectsResult ?? true
            lines.append("  \(key) = \(show(step.params[key]))\(affects ? "" : "  (does not affect results)")")
        }
        lines.append("inputs:")
        for key in item.inputFingerprints.keys.sorted() {
            let fp = item.inputFingerprints[key] ?? nil
            lines.append("  \(key) ← \(step.spec.inputs[key]?.text ?? "?")  \(fp.map { String($0.prefix(16)) } ?? "missing")")
        }
        if let model = step.model { lines.append("model: \(model.name) (\(model.kind)) \(model.folder.path) digest \(model.digest.prefix(16))") }
        if step.kind.stochastic { lines.append("seed: \(item.seed)") }
        if let state, state.status == .failed, let r = try store.results(for: [state.fingerprint])[state.fingerprint], let e = r.error {
            lines.append("last error: \(e)")
        }
        return lines.joined(separator: "\n")
    }
}
