import Foundation
import Stories
import Yams

/// Input references (`step.output`, `step.output@last`, columns): parsing and validation against the steps.
extension SpecParser {
    func validateReferences(steps: [StepSpec], gallery: GallerySpec, ctx: inout Context) {
        let byID = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for step in steps {
            guard registry[step.use] != nil else { continue }
            for (name, ref) in step.inputs.sorted(by: { $0.key < $1.key }) {
                switch ref.source {
                case .column(let column):
                    let valid = Column.columns(for: step.scope).map(\.rawValue)
                    if !valid.contains(column) {
                        let other = Column.columns(for: step.scope == .panel ? .entry : .panel).map(\.rawValue)
                        let why = other.contains(column) ? " (\(column) is a column of \(step.scope == .panel ? "entry" : "panel") steps)" : ""
                        ctx.errors.append(WorkflowError(ref.location, "input \"\(name)\" of step \"\(step.id)\": \"\(column)\" is neither a step id nor a collection column\(why)\(Suggest.hint(column, valid + steps.map(\.id))); columns for \(step.scope.rawValue) steps: \(valid.joined(separator: ", "))"))
                    }
                case .step(let id, let output, let lastPanel):
                    guard let target = byID[id] else {
                        ctx.errors.append(WorkflowError(ref.location, "input \"\(name)\" of step \"\(step.id)\" refers to unknown step \"\(id)\"\(Suggest.hint(id, steps.map(\.id)))"))
                        continue
                    }
                    if let targetKind = registry[target.use] {
                        if let output, !targetKind.outputs.contains(output) {
                            ctx.errors.append(WorkflowError(ref.location, "input \"\(name)\" of step \"\(step.id)\": step \"\(id)\" (\(target.use)) has no output \"\(output)\"\(Suggest.hint(output, targetKind.outputs)); its outputs: \(targetKind.outputs.joined(separator: ", "))"))
                        }
                        if lastPanel && target.scope != .panel {
                            ctx.errors.append(WorkflowError(ref.location, "input \"\(name)\" of step \"\(step.id)\": @last applies to panel steps, and \"\(id)\" runs per entry"))
                        }
                    }
                    if id == step.id {
                        ctx.errors.append(WorkflowError(ref.location, "step \"\(step.id)\" cannot take its own output as input"))
                    }
                }
            }
        }
        for ref in gallery.columns {
            switch ref.source {
            case .column(let c):
                ctx.errors.append(WorkflowError(ref.location, "gallery column \"\(c)\" is not a step output\(Suggest.hint(c, steps.map(\.id))); write step.output"))
            case .step(let id, let output, _):
                if let target = byID[id], let kind = registry[target.use], let output, !kind.outputs.contains(output) {
                    ctx.errors.append(WorkflowError(ref.location, "gallery column \"\(ref.text)\": step \"\(id)\" has no output \"\(output)\"; its outputs: \(kind.outputs.joined(separator: ", "))"))
                }
            }
        }
        for chart in gallery.charts {
            for (name, columns) in chart.series {
                for ref in columns.compactMap({ $0 }) {
                    guard let (id, output) = ref.stepOutput(steps: byID), let target = byID[id], let kind = registry[target.use] else {
                        ctx.errors.append(WorkflowError(ref.location, "chart \"\(chart.title)\", series \"\(name)\": \"\(ref.text)\" is not a step output\(Suggest.hint(ref.text, steps.map(\.id)))"))
                        continue
                    }
                    let column = output ?? kind.outputs.first ?? ""
                    if !kind.scoreOutputs.contains(column) {
                        ctx.errors.append(WorkflowError(ref.location, "chart \"\(chart.title)\", series \"\(name)\": \"\(ref.text)\" is not a score; scores of step \"\(id)\": \(kind.scoreOutputs.isEmpty ? "none" : kind.scoreOutputs.joined(separator: ", "))"))
                    }
                }
            }
        }
        for cycle in StepGraph(steps).cycles() {
            ctx.errors.append(WorkflowError(byID[cycle[0]]?.location, "steps form a cycle: \(cycle.joined(separator: " → "))"))
        }
    }

    /// A bare name in `inputs` means a step's primary output when a step has that id.
    static func resolveBareStepReferences(_ steps: inout [StepSpec]) {
        let ids = Set(steps.map(\.id))
        for i in steps.indices {
            for (name, ref) in steps[i].inputs {
                if case .column(let c) = ref.source, ids.contains(c) {
                    steps[i].inputs[name]?.source = .step(id: c, output: nil, lastPanel: false)
                }
            }
        }
    }

    /// Parses `step.output`, `step.output@last`, `step` or a collection column. A bare word that is not
    /// a step id is a column; that is decided at validation time, when all ids are known.
    static func inputRef(_ text: String, location: SourceLocation?) -> InputRef {
        var body = Substring(text)
        var last = false
        if body.hasSuffix("@last") { body = body.dropLast(5); last = true }
        let parts = body.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2 {
            return InputRef(source: .step(id: parts[0], output: parts[1], lastPanel: last), text: text, location: location)
        }
        // A bare name: a step's primary output if such a step exists, else a column (resolved in `resolve`).
        return InputRef(source: .column(String(body)), text: text, location: location)
    }

    static func isIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" }
    }
}
