import Foundation
import Stories
import Yams

/// The `steps:` section: ids, kinds, params, inputs, model, scope and panels of each step.
extension SpecParser {
    func parseSteps(_ node: Node?, parent: Node, models: [String: ModelSpec], ctx: inout Context) -> [StepSpec] {
        guard let node else {
            ctx.errors.append(ctx.error(parent, "missing required key \"steps\""))
            return []
        }
        guard let seq = node.sequence else {
            ctx.errors.append(ctx.error(node, "steps must be a list of steps (each with id and use)"))
            return []
        }
        var steps: [StepSpec] = []
        var seen: [String: SourceLocation] = [:]
        for item in seq {
            guard let m = item.mapping else {
                ctx.errors.append(ctx.error(item, "each step must be a mapping with at least \"id\" and \"use\""))
                continue
            }
            ctx.checkKeys(m, allowed: Self.stepKeys, what: "step")
            guard let idNode = m["id"], let id = ctx.string(idNode, key: "id") else {
                ctx.errors.append(ctx.error(item, "step is missing \"id\""))
                continue
            }
            if !Self.isIdentifier(id) {
                ctx.errors.append(ctx.error(idNode, "step id \"\(id)\" must be letters, digits, - and _ (it is used in references like \(id).output)"))
            }
            if let first = seen[id] {
                ctx.errors.append(ctx.error(idNode, "duplicate step id \"\(id)\" (first defined at \(first))"))
            }
            seen[id] = ctx.location(idNode)
            guard let useNode = m["use"], let use = ctx.string(useNode, key: "use") else {
                ctx.errors.append(ctx.error(item, "step \"\(id)\" is missing \"use\" (one of \(registry.names.joined(separator: ", ")))"))
                continue
            }
            let kind = registry[use]
            if kind == nil {
                ctx.errors.append(ctx.error(useNode, "unknown step kind \"\(use)\"\(Suggest.hint(use, registry.names)); known kinds: \(registry.names.joined(separator: ", "))"))
            }
            var params: [String: JSONValue] = [:]
            var paramLocations: [String: SourceLocation] = [:]
            if let p = m["params"] {
                if let pm = p.mapping {
                    for (k, v) in pm {
                        guard let key = k.string else { continue }
                        paramLocations[key] = ctx.location(k)
                        guard let value = Self.jsonValue(v) else {
                            ctx.errors.append(ctx.error(v, "param \"\(key)\" has an unsupported value"))
                            continue
                        }
                        if let kind {
                            if let spec = kind.param(key) {
                                if let problem = Self.check(value, against: spec) {
                                    ctx.errors.append(ctx.error(v, "param \"\(key)\" of step \"\(id)\": \(problem)"))
                                }
                            } else {
                                ctx.errors.append(ctx.error(k, "unknown param \"\(key)\" for step kind \"\(use)\"\(Suggest.hint(key, kind.params.map(\.name))); its params: \(kind.params.map(\.name).joined(separator: ", "))"))
                            }
                        }
                        params[key] = value
                    }
                } else {
                    ctx.errors.append(ctx.error(p, "params must be a mapping"))
                }
            }
            if let kind {
                for spec in kind.params where spec.defaultValue == nil && params[spec.name] == nil {
                    ctx.errors.append(ctx.error(item, "step \"\(id)\" (\(use)) needs param \"\(spec.name)\": \(spec.doc)"))
                }
            }
            var inputs: [String: InputRef] = [:]
            if let i = m["inputs"] {
                if let im = i.mapping {
                    for (k, v) in im {
                        guard let key = k.string else { continue }
                        guard let refText = ctx.string(v, key: "inputs.\(key)") else { continue }
                        if let kind, !kind.inputs.contains(where: { $0.name == key }) {
                            ctx.errors.append(ctx.error(k, "unknown input \"\(key)\" for step kind \"\(use)\"\(Suggest.hint(key, kind.inputs.map(\.name))); its inputs: \(kind.inputs.map(\.name).joined(separator: ", "))"))
                        }
                        inputs[key] = Self.inputRef(refText, location: ctx.location(v))
                    }
                } else {
                    ctx.errors.append(ctx.error(i, "inputs must be a mapping of input: reference"))
                }
            }
            if let kind {
                for spec in kind.inputs where spec.required && inputs[spec.name] == nil {
                    ctx.errors.append(ctx.error(item, "step \"\(id)\" (\(use)) needs input \"\(spec.name)\": \(spec.doc)"))
                }
            }
            var modelName: String?
            if let mn = m["model"], let name = ctx.string(mn, key: "model") {
                modelName = name
                if let model = models[name] {
                    if let kind, !kind.modelKinds.isEmpty, !kind.modelKinds.contains(model.kind) {
                        ctx.errors.append(ctx.error(mn, "step \"\(id)\" (\(use)) needs a model of kind \(kind.modelKinds.joined(separator: " or ")), but \"\(name)\" is \(model.kind)"))
                    } else if let kind, kind.modelKinds.isEmpty {
                        ctx.errors.append(ctx.error(mn, "step kind \"\(use)\" uses no model"))
                    }
                } else {
                    ctx.errors.append(ctx.error(mn, "step \"\(id)\" names model \"\(name)\", which is not defined under models:\(Suggest.hint(name, Array(models.keys)))"))
                }
            } else if let kind, !kind.modelKinds.isEmpty, !kind.modelOptional {
                ctx.errors.append(ctx.error(item, "step \"\(id)\" (\(use)) needs \"model:\" naming a model of kind \(kind.modelKinds.joined(separator: " or "))"))
            }
            var scope = kind?.scope ?? .entry
            if let sn = m["scope"], let s = ctx.string(sn, key: "scope") {
                if let chosen = StepScope(rawValue: s) {
                    if let kind, chosen != kind.scope, !kind.scopeSelectable {
                        ctx.errors.append(ctx.error(sn, "step kind \"\(use)\" runs per \(kind.scope.rawValue) only"))
                    } else {
                        scope = chosen
                    }
                } else {
                    ctx.errors.append(ctx.error(sn, "scope must be panel or entry, got \"\(s)\"\(Suggest.hint(s, ["panel", "entry"]))"))
                }
            }
            var panels = PanelSelection.all
            if let pn = m["panels"] {
                if let s = pn.scalar?.string, ["all", "first", "last"].contains(s) {
                    panels = s == "all" ? .all : s == "first" ? .first : .last
                } else if let seq = pn.sequence {
                    panels = .indices(seq.compactMap { $0.int })
                } else {
                    ctx.errors.append(ctx.error(pn, "panels must be all, first, last or a list of 1-based panel numbers"))
                }
                if scope != .panel {
                    ctx.errors.append(ctx.error(pn, "\"panels\" applies to panel steps only; this step runs once per entry"))
                }
            }
            let batch = m["batch_size"].flatMap { ctx.int($0, key: "batch_size", min: 1) }
            steps.append(StepSpec(id: id, use: use, params: params, inputs: inputs, model: modelName, panels: panels, scope: scope,
                                  batchSize: batch, location: ctx.location(idNode), paramLocations: paramLocations))
        }
        return steps
    }
}
