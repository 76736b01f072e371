import Foundation
import Stories
import Yams

/// Reads workflow YAML into a ``WorkflowSpec``, checking every key, reference and param before anything
/// runs. Errors carry file:line:column and, for near misses, a suggestion.
public struct SpecParser {
    public var registry: StepRegistry
    /// Known model kinds (for `models:` entries).
    public var modelKinds: [String]

    public init(registry: StepRegistry, modelKinds: [String] = ["clip", "stable-diffusion", "opt", "gill"]) {
        self.registry = registry
        self.modelKinds = modelKinds
    }

    static let topKeys = ["name", "description", "collection", "models", "steps", "gallery", "store"]
    static let collectionKeys = ["path", "importer", "world", "allow_outside_root", "limit", "options"]
    static let worldKeys = ["seed", "stories", "dialogues", "display_size"]
    static let modelKeys = ["kind", "path"]
    static let stepKeys = ["id", "use", "params", "inputs", "model", "panels", "scope", "batch_size", "description"]
    static let galleryKeys = ["title", "columns", "charts"]
    static let chartKeys = ["title", "y", "x", "series", "kind"]

    /// Parses and validates a workflow file; `overrides` are `STEP.PARAM=VALUE` strings from `--set`
    /// (`*.PARAM=VALUE`: every step that has PARAM).
    public func parse(file: URL, overrides: [String] = []) throws -> WorkflowSpec {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw WorkflowErrors(errors: [WorkflowError(nil, "cannot read workflow file \(file.path)")])
        }
        return try parse(yaml: text, file: file, overrides: overrides)
    }

    public func parse(yaml: String, file: URL, overrides: [String] = []) throws -> WorkflowSpec {
        var ctx = Context(file: file.path)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw WorkflowErrors(errors: [WorkflowError(SourceLocation(file: file.path, line: 1, column: 1), "the workflow file is empty")])
            }
            root = node
        } catch let error as WorkflowErrors {
            throw error
        } catch let error as YamlError {
            throw WorkflowErrors(errors: [Self.yamlError(error, file: file.path)])
        } catch {
            throw WorkflowErrors(errors: [WorkflowError(nil, "\(file.path): not valid YAML: \(error)")])
        }
        guard let top = root.mapping else {
            throw WorkflowErrors(errors: [ctx.error(root, "a workflow must be a mapping with keys \(Self.topKeys.joined(separator: ", "))")])
        }
        ctx.checkKeys(top, allowed: Self.topKeys, what: "workflow")

        let name = top["name"].flatMap { ctx.string($0, key: "name") } ?? file.deletingPathExtension().lastPathComponent
        let collection = parseCollection(top["collection"], parent: root, ctx: &ctx)
        let models = parseModels(top["models"], ctx: &ctx)
        var steps = parseSteps(top["steps"], parent: root, models: models, ctx: &ctx)
        let gallery = parseGallery(top["gallery"], ctx: &ctx)
        let store = top["store"].flatMap { ctx.string($0, key: "store") }
        let about = top["description"].flatMap { ctx.string($0, key: "description") }

        applyOverrides(overrides, to: &steps, ctx: &ctx)
        Self.resolveBareStepReferences(&steps)
        validateReferences(steps: steps, gallery: gallery, ctx: &ctx)

        if !ctx.errors.isEmpty { throw WorkflowErrors(errors: ctx.errors) }
        guard let collection else { throw WorkflowErrors(errors: [WorkflowError(nil, "missing collection")]) }
        return WorkflowSpec(name: name, file: file.standardizedFileURL, collection: collection, models: models,
                            steps: steps, gallery: gallery, store: store, about: about)
    }

    // MARK: Sections

    func parseCollection(_ node: Node?, parent: Node, ctx: inout Context) -> CollectionSpec? {
        guard let node else {
            ctx.errors.append(ctx.error(parent, "missing required key \"collection\" (a path, an importer, or world: {seed, stories, dialogues})"))
            return nil
        }
        if let path = node.scalar?.string {
            return CollectionSpec(source: .native(path: path), allowOutsideRoot: false, limit: nil, location: ctx.location(node))
        }
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "collection must be a path or a mapping"))
            return nil
        }
        ctx.checkKeys(map, allowed: Self.collectionKeys + ["annotations", "images", "csv", "text_column", "image_column",
                                                           "story_column", "order_column", "use_original_text", "dialogues"],
                      what: "collection")
        let allow = map["allow_outside_root"].flatMap { ctx.bool($0, key: "allow_outside_root") } ?? false
        let limit = map["limit"].flatMap { ctx.int($0, key: "limit", min: 1) }
        let sources = ["path", "importer", "world"].filter { map[$0] != nil }
        guard sources.count == 1 else {
            ctx.errors.append(ctx.error(node, sources.isEmpty
                ? "collection needs one of \"path\", \"importer\" or \"world\""
                : "collection has both \(sources.map { "\"\($0)\"" }.joined(separator: " and ")); give only one"))
            return nil
        }
        var source: CollectionSource?
        if let p = map["path"], let path = ctx.string(p, key: "path") {
            source = .native(path: path)
        } else if let i = map["importer"], let kind = ctx.string(i, key: "importer") {
            var options: [String: String] = [:]
            for (k, v) in map {
                guard let key = k.string, !["importer", "allow_outside_root", "limit", "options"].contains(key) else { continue }
                options[key] = v.scalar?.string
            }
            if let extra = map["options"]?.mapping {
                for (k, v) in extra { if let key = k.string { options[key] = v.scalar?.string } }
            }
            source = .importer(kind: kind, options: options)
        } else if let w = map["world"] {
            if let wm = w.mapping {
                ctx.checkKeys(wm, allowed: Self.worldKeys, what: "world")
                let seed = wm["seed"].flatMap { ctx.int($0, key: "seed", min: 0) } ?? 0
                let stories = wm["stories"].flatMap { ctx.int($0, key: "stories", min: 0) } ?? 100
                let dialogues = wm["dialogues"].flatMap { ctx.int($0, key: "dialogues", min: 0) } ?? 0
                let display: Int? = wm["display_size"].flatMap { n in
                    n.scalar?.string == "none" ? nil : ctx.int(n, key: "display_size", min: 16)
                } ?? 256
                source = .world(seed: UInt64(seed), stories: stories, dialogues: dialogues, displaySize: display)
            } else {
                ctx.errors.append(ctx.error(w, "world must be a mapping like {seed: 1, stories: 100, dialogues: 50}"))
            }
        }
        return source.map { CollectionSpec(source: $0, allowOutsideRoot: allow, limit: limit, location: ctx.location(node)) }
    }

    func parseModels(_ node: Node?, ctx: inout Context) -> [String: ModelSpec] {
        guard let node else { return [:] }
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "models must be a mapping of name: {kind, path}"))
            return [:]
        }
        var out: [String: ModelSpec] = [:]
        for (k, v) in map {
            guard let name = k.string else { continue }
            guard let m = v.mapping else {
                ctx.errors.append(ctx.error(v, "model \"\(name)\" must be a mapping with \"kind\" and \"path\""))
                continue
            }
            ctx.checkKeys(m, allowed: Self.modelKeys, what: "model \"\(name)\"")
            guard let kindNode = m["kind"], let kind = ctx.string(kindNode, key: "kind") else {
                ctx.errors.append(ctx.error(v, "model \"\(name)\" is missing \"kind\" (one of \(modelKinds.joined(separator: ", ")))"))
                continue
            }
            if !modelKinds.contains(kind) {
                ctx.errors.append(ctx.error(kindNode, "unknown model kind \"\(kind)\"\(Suggest.hint(kind, modelKinds)); known kinds: \(modelKinds.joined(separator: ", "))"))
            }
            guard let pathNode = m["path"], let path = ctx.string(pathNode, key: "path") else {
                ctx.errors.append(ctx.error(v, "model \"\(name)\" is missing \"path\" (its folder)"))
                continue
            }
            out[name] = ModelSpec(name: name, kind: kind, path: path, location: ctx.location(k))
        }
        return out
    }

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

    func parseGallery(_ node: Node?, ctx: inout Context) -> GallerySpec {
        guard let node else { return GallerySpec(title: nil, columns: []) }
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "gallery must be a mapping with title and columns"))
            return GallerySpec(title: nil, columns: [])
        }
        ctx.checkKeys(map, allowed: Self.galleryKeys, what: "gallery")
        let title = map["title"].flatMap { ctx.string($0, key: "title") }
        var columns: [InputRef] = []
        if let c = map["columns"] {
            if let seq = c.sequence {
                for n in seq { if let s = ctx.string(n, key: "columns") { columns.append(Self.inputRef(s, location: ctx.location(n))) } }
            } else {
                ctx.errors.append(ctx.error(c, "gallery columns must be a list like [gen.image, clipsim.score]"))
            }
        }
        var charts: [ChartRequest] = []
        if let c = map["charts"] {
            if let seq = c.sequence {
                charts = seq.compactMap { parseChart($0, ctx: &ctx) }
            } else {
                ctx.errors.append(ctx.error(c, "gallery charts must be a list of charts (title, y, x, series)"))
            }
        }
        return GallerySpec(title: title, columns: columns, charts: charts)
    }

    func parseChart(_ node: Node, ctx: inout Context) -> ChartRequest? {
        guard let map = node.mapping else {
            ctx.errors.append(ctx.error(node, "a chart must be a mapping with title, y, x and series"))
            return nil
        }
        ctx.checkKeys(map, allowed: Self.chartKeys, what: "chart")
        let title = map["title"].flatMap { ctx.string($0, key: "title") } ?? "chart"
        let y = map["y"].flatMap { ctx.string($0, key: "y") } ?? "mean"
        let kind = map["kind"].flatMap { ctx.string($0, key: "kind") } ?? "line"
        if let k = map["kind"], kind != "line" && kind != "bar" {
            ctx.errors.append(ctx.error(k, "chart kind must be line or bar, not \"\(kind)\""))
        }
        guard let xNode = map["x"], let xs = xNode.sequence else {
            ctx.errors.append(ctx.error(map["x"] ?? node, "chart \"\(title)\" needs x: a list of labels"))
            return nil
        }
        let xLabels = xs.compactMap { ctx.string($0, key: "x") }
        guard let sNode = map["series"], let series = sNode.mapping else {
            ctx.errors.append(ctx.error(map["series"] ?? node, "chart \"\(title)\" needs series: a mapping from a name to a list of score columns, one per x label"))
            return nil
        }
        var out: [(name: String, columns: [InputRef?])] = []
        for (nameNode, valuesNode) in series {
            guard let name = ctx.string(nameNode, key: "series") else { continue }
            guard let values = valuesNode.sequence else {
                ctx.errors.append(ctx.error(valuesNode, "series \"\(name)\" must be a list of score columns like [sim.score, ~]"))
                continue
            }
            if values.count != xLabels.count {
                ctx.errors.append(ctx.error(valuesNode, "series \"\(name)\" has \(values.count) values for \(xLabels.count) x labels"))
            }
            out.append((name, values.map { v in
                if v.scalar?.string == "~" || v.scalar?.string == "null" || v.scalar?.string == "" { return nil }
                return ctx.string(v, key: "series").map { Self.inputRef($0, location: ctx.location(v)) }
            }))
        }
        return ChartRequest(title: title, yLabel: y, xLabels: xLabels, series: out, kind: kind, location: ctx.location(node))
    }

    // MARK: Overrides and references

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

    func validateReferences(steps: [StepSpec], gallery: GallerySpec, ctx: inout Context) {
        let byID = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for step in steps {
            guard registry[step.use] != nil else { continue }   // an unknown kind is reported where it is parsed
            for (name, ref) in step.inputs.sorted(by: { $0.key < $1.key }) {
                switch ref.source {
                case .column(let column):
                    let valid = step.scope == .panel ? CollectionColumn.panel : CollectionColumn.entry
                    if !valid.contains(column) {
                        let other = step.scope == .panel ? CollectionColumn.entry : CollectionColumn.panel
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
        // Cycles: depth-first search over step-to-step references.
        var state: [String: Int] = [:]   // 1 = on stack, 2 = done
        func visit(_ id: String, path: [String]) {
            if state[id] == 2 { return }
            if state[id] == 1 {
                let cycle = (path.drop { $0 != id } + [id]).joined(separator: " → ")
                ctx.errors.append(WorkflowError(byID[id]?.location, "steps form a cycle: \(cycle)"))
                return
            }
            state[id] = 1
            for dep in Self.dependencies(of: byID[id]!, known: byID) { visit(dep, path: path + [id]) }
            state[id] = 2
        }
        for step in steps where state[step.id] == nil { visit(step.id, path: []) }
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

    /// Step ids a step reads from.
    static func dependencies(of step: StepSpec, known: [String: StepSpec]) -> [String] {
        step.inputs.values.compactMap {
            if case .step(let id, _, _) = $0.source, known[id] != nil { return id }
            return nil
        }.sorted()
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

    // MARK: Values

    static func jsonValue(_ node: Node) -> JSONValue? {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if node.null != nil { return .null }
                if let b = node.bool { return .bool(b) }
                if let i = node.int { return .number(Double(i)) }
                if let f = node.float { return .number(f) }
            }
            return .string(s.string)
        case .sequence(let seq):
            var out: [JSONValue] = []
            for n in seq { guard let v = jsonValue(n) else { return nil }; out.append(v) }
            return .array(out)
        case .mapping(let map):
            var out: [String: JSONValue] = [:]
            for (k, v) in map { guard let key = k.string, let value = jsonValue(v) else { return nil }; out[key] = value }
            return .object(out)
        case .alias:
            return nil
        }
    }

    /// Why `value` does not fit `spec`, or nil when it does.
    static func check(_ value: JSONValue, against spec: ParamSpec) -> String? {
        switch spec.kind {
        case .int(let lo, let hi):
            guard let n = value.doubleValue, n == n.rounded() else { return "expected an integer, got \(describe(value))" }
            if let lo, Int(n) < lo { return "expected an integer ≥ \(lo), got \(Int(n))" }
            if let hi, Int(n) > hi { return "expected an integer ≤ \(hi), got \(Int(n))" }
        case .double(let lo, let hi):
            guard let n = value.doubleValue else { return "expected a number, got \(describe(value))" }
            if let lo, n < lo { return "expected a number ≥ \(lo), got \(n)" }
            if let hi, n > hi { return "expected a number ≤ \(hi), got \(n)" }
        case .string:
            guard value.stringValue != nil else { return "expected a string, got \(describe(value))" }
        case .bool:
            guard case .bool = value else { return "expected true or false, got \(describe(value))" }
        case .choice(let options):
            guard let s = value.stringValue, options.contains(s) else {
                let got = value.stringValue ?? describe(value)
                return "expected one of \(options.joined(separator: ", ")), got \"\(got)\"\(Suggest.hint(got, options))"
            }
        case .stringList:
            guard let a = value.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else { return "expected a list of strings, got \(describe(value))" }
        }
        return nil
    }

    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let n): return n == n.rounded() ? "\(Int(n))" : "\(n)"
        case .string(let s): return "\"\(s)\""
        case .array: return "a list"
        case .object: return "a mapping"
        }
    }

    static func yamlError(_ error: YamlError, file: String) -> WorkflowError {
        switch error {
        case .scanner(let context, let problem, let mark, _):
            return WorkflowError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                 "invalid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
        case .parser(let context, let problem, let mark, _):
            return WorkflowError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                 "invalid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
        case .composer(let context, let problem, let mark, _):
            return WorkflowError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                 "invalid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
        default:
            return WorkflowError(SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(error)")
        }
    }

    // MARK: Context

    struct Context {
        var file: String
        var errors: [WorkflowError] = []

        func location(_ node: Node) -> SourceLocation? {
            node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
        }

        func error(_ node: Node, _ message: String) -> WorkflowError {
            WorkflowError(location(node), message)
        }

        mutating func checkKeys(_ map: Node.Mapping, allowed: [String], what: String) {
            for (k, _) in map {
                guard let key = k.string else {
                    errors.append(error(k, "\(what) keys must be strings"))
                    continue
                }
                if !allowed.contains(key) {
                    errors.append(error(k, "unknown key \"\(key)\" in \(what)\(Suggest.hint(key, allowed)); allowed: \(allowed.joined(separator: ", "))"))
                }
            }
        }

        mutating func string(_ node: Node, key: String) -> String? {
            guard case .scalar(let s) = node else {
                errors.append(error(node, "\"\(key)\" must be a string"))
                return nil
            }
            return s.string
        }

        mutating func bool(_ node: Node, key: String) -> Bool? {
            guard let b = node.bool else {
                errors.append(error(node, "\"\(key)\" must be true or false"))
                return nil
            }
            return b
        }

        mutating func int(_ node: Node, key: String, min: Int) -> Int? {
            guard let i = node.int else {
                errors.append(error(node, "\"\(key)\" must be an integer"))
                return nil
            }
            guard i >= min else {
                errors.append(error(node, "\"\(key)\" must be ≥ \(min), got \(i)"))
                return nil
            }
            return i
        }
    }
}

/// "Did you mean" suggestions by edit distance.
public enum Suggest {
    public static func hint(_ word: String, _ candidates: [String]) -> String {
        guard let best = nearest(word, candidates) else { return "" }
        return " (did you mean \"\(best)\"?)"
    }

    public static func nearest(_ word: String, _ candidates: [String]) -> String? {
        let scored = candidates.map { ($0, distance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        // A near miss is within a third of the word (at least one edit), and never a whole rewrite.
        return best.1 <= max(1, min(3, word.count / 3)) && best.1 < word.count ? best.0 : nil
    }

    /// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps
    /// ("widht" is one edit from "width").
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
}
