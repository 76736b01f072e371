import Foundation
import Stories
import Store

/// Why an item will run.
public enum ItemStatus: Sendable, Equatable {
    /// Never computed by this workflow and not found in the store.
    case new
    /// Computed before under another fingerprint (or failed); the reasons say what changed.
    case stale([String])
    /// A stored result matches the fingerprint.
    case cached
}

/// One item of one step, with its fingerprint and status.
public struct PlannedItem: Sendable {
    public var id: String
    public var entryIndex: Int
    public var panelIndex: Int?
    public var fingerprint: String
    /// The fingerprint's components as JSON (stored with the item state, shown by `explain`).
    public var components: String
    /// Input name → fingerprint of the value it reads (`nil` when the value does not exist).
    public var inputFingerprints: [String: String?]
    public var seed: UInt64
    public var status: ItemStatus
    /// Whether the workflow's stored state for this item differs from the plan (to be rewritten).
    public var stateChanged: Bool
}

/// A step with its resolved kind, params, model and items.
public struct StepPlan: Sendable {
    public var spec: StepSpec
    public var kind: StepKind
    /// Params with defaults applied.
    public var params: [String: JSONValue]
    public var model: ResolvedModel?
    public var items: [PlannedItem]
    /// Item id → index in `items`.
    public var index: [String: Int]
    /// Items this workflow computed before that no longer exist (entry removed, panels changed).
    public var orphans: [String]

    public var counts: (new: Int, stale: Int, cached: Int) {
        var n = 0, s = 0, c = 0
        for item in items {
            switch item.status {
            case .new: n += 1
            case .stale: s += 1
            case .cached: c += 1
            }
        }
        return (n, s, c)
    }
}

/// The plan of a workflow run: every step's items, fingerprints and whether each must run.
public struct Plan: Sendable {
    public var spec: WorkflowSpec
    public var collection: StoryCollection
    /// Steps in a topological order.
    public var steps: [StepPlan]
    /// Content fingerprints of the collection's columns (image hashes, text hashes).
    public var columns: ColumnFingerprints

    public func step(_ id: String) -> StepPlan? { steps.first { $0.spec.id == id } }
}

/// Computes per-item fingerprints from params, inputs, models and seeds, and compares them with the
/// store: no step runs to make a plan, because a fingerprint depends on its inputs' fingerprints only.
public struct Planner {
    public var registry: StepRegistry
    public var store: ProjectStore

    public init(registry: StepRegistry, store: ProjectStore) {
        self.registry = registry
        self.store = store
    }

    public func plan(_ spec: WorkflowSpec, collection: StoryCollection, models: [String: ResolvedModel],
                     explainStale: Bool = true) throws -> Plan {
        let order = try StepGraph(spec.steps).order()
        let states = try store.stateIndex(workflow: spec.name)
        let columns = try ColumnFingerprints(collection: collection, store: store)
        var plans: [String: StepPlan] = [:]
        var ordered: [StepPlan] = []

        for stepSpec in order {
            guard let kind = registry[stepSpec.use] else { throw StepError("unknown step kind \(stepSpec.use)") }
            let params = try kind.resolveParams(stepSpec.params)
            let relevant = params.filter { k, _ in kind.param(k)?.affectsResult ?? true }
            let model = stepSpec.model.flatMap { models[$0] }
            let componentsBuilder = try FingerprintComponents.Builder(kind: kind, model: model, params: relevant)
            let baseSeed = UInt64(max(0, params["seed"]?.doubleValue ?? 0))

            // Aggregate inputs: one fingerprint over the whole referenced column.
            var aggregateFPs: [String: String] = [:]
            for input in kind.inputs where input.aggregate {
                guard let ref = stepSpec.inputs[input.name] else { continue }
                aggregateFPs[input.name] = Self.aggregateFingerprint(ref, plans: plans, columns: columns, collection: collection)
            }

            let stepStates = states[stepSpec.id] ?? [:]
            var items: [PlannedItem] = []
            items.reserveCapacity(collection.entries.count * (stepSpec.scope == .panel ? 5 : 1))
            for (e, entry) in collection.entries.enumerated() {
                let panelIndices: [Int?] = stepSpec.scope == .panel
                    ? entry.panels.indices.filter { stepSpec.panels.contains($0, count: entry.panels.count) }
                    : [nil]
                for p in panelIndices {
                    let itemID = ItemID(entry: entry.id, panel: p).description
                    var inputFPs: [String: String?] = [:]
                    var inputPart: [(name: String, fingerprint: String)] = []
                    for name in stepSpec.inputs.keys.sorted() {
                        let fp: String?
                        if let agg = aggregateFPs[name] { fp = agg }
                        else { fp = Self.inputFingerprint(stepSpec.inputs[name]!, entryIndex: e, entry: entry, panel: p,
                                                          plans: plans, columns: columns) }
                        inputFPs[name] = fp
                        inputPart.append((name, fp ?? FingerprintComponents.missingInput))
                    }
                    let seed: UInt64 = kind.stochastic ? Self.itemSeed(base: baseSeed, itemID: itemID) : 0
                    let components = componentsBuilder.json(inputs: inputPart, seed: seed)
                    let fingerprint = Hashing.sha256Hex(components)
                    let prior = stepStates[itemID]
                    let status: ItemStatus
                    if let prior, prior.fingerprint == fingerprint, prior.ok { status = .cached }
                    else if prior == nil { status = .new }
                    else { status = .stale([]) }
                    items.append(PlannedItem(id: itemID, entryIndex: e, panelIndex: p, fingerprint: fingerprint,
                                             components: components, inputFingerprints: inputFPs, seed: seed,
                                             status: status, stateChanged: prior?.fingerprint != fingerprint || prior?.ok != true))
                }
            }
            // Items not cached by this workflow may still be in the store: another workflow computed them,
            // or a param was reverted. Those are restored without recomputation.
            let candidates = items.indices.filter { items[$0].status != .cached }
            if !candidates.isEmpty {
                let found = try store.okFingerprints(among: candidates.map { items[$0].fingerprint })
                for i in candidates where found.contains(items[i].fingerprint) { items[i].status = .cached }
            }
            if explainStale {
                let staleIDs = items.filter { if case .stale = $0.status { return true }; return false }.map(\.id)
                if !staleIDs.isEmpty {
                    let old = try store.components(workflow: spec.name, stepID: stepSpec.id, itemIDs: staleIDs)
                    for i in items.indices {
                        guard case .stale = items[i].status else { continue }
                        let wasOK = stepStates[items[i].id]?.ok ?? false
                        let sameFP = stepStates[items[i].id]?.fingerprint == items[i].fingerprint
                        var reasons = sameFP && !wasOK ? ["previous attempt failed"] : []
                        if !sameFP {
                            reasons += Explainer.differences(old: old[items[i].id], new: Data(items[i].components.utf8),
                                                            spec: stepSpec)
                        }
                        items[i].status = .stale(reasons.isEmpty ? ["fingerprint changed"] : reasons)
                    }
                }
            }
            var index: [String: Int] = [:]
            index.reserveCapacity(items.count)
            for (i, item) in items.enumerated() { index[item.id] = i }
            let orphans = stepStates.keys.filter { index[$0] == nil }.sorted()
            let plan = StepPlan(spec: stepSpec, kind: kind, params: params, model: model, items: items, index: index,
                                orphans: orphans)
            plans[stepSpec.id] = plan
            ordered.append(plan)
        }
        return Plan(spec: spec, collection: collection, steps: ordered, columns: columns)
    }

    // MARK: Fingerprint pieces

    static func inputFingerprint(_ ref: InputRef, entryIndex: Int, entry: Entry, panel: Int?,
                                 plans: [String: StepPlan], columns: ColumnFingerprints) -> String? {
        switch ref.source {
        case .column(let column):
            return Column(rawValue: column).flatMap { columns.fingerprint(column: $0, entryIndex: entryIndex, panel: panel) }
        case .step(let id, let output, let lastPanel):
            guard let up = plans[id] else { return nil }
            let suffix = output.map { ".\($0)" } ?? ""
            let (ids, single) = InputRef.upstreamItems(upstreamScope: up.spec.scope, lastPanel: lastPanel, entry: entry, panel: panel)
            let fps = ids.compactMap { up.index[$0.description].map { up.items[$0].fingerprint } }
            if single { return fps.first.map { $0 + suffix } }
            return fps.isEmpty ? nil : Hashing.sha256Hex(fps.joined(separator: ",") + suffix)
        }
    }

    static func aggregateFingerprint(_ ref: InputRef, plans: [String: StepPlan], columns: ColumnFingerprints,
                                     collection: StoryCollection) -> String {
        var parts: [String] = []
        switch ref.source {
        case .column(let name):
            let column = Column(rawValue: name)
            for (e, entry) in collection.entries.enumerated() {
                for p in entry.panels.indices {
                    parts.append(column.flatMap { columns.fingerprint(column: $0, entryIndex: e, panel: p) } ?? "-")
                }
            }
        case .step(let id, let output, _):
            parts = plans[id]?.items.map(\.fingerprint) ?? []
            parts.append(output ?? "")
        }
        return Hashing.sha256Hex(parts.joined(separator: ","))
    }

    /// A per-item seed: stable for the same base seed and item id, independent across items.
    public static func itemSeed(base: UInt64, itemID: String) -> UInt64 {
        let hex = Hashing.sha256Hex("\(base):\(itemID)")
        return UInt64(hex.prefix(15), radix: 16) ?? 0
    }
}

/// Fingerprints of collection columns: texts by their SHA-256, images by their file content hash.
public struct ColumnFingerprints: Sendable {
    let collection: StoryCollection
    /// Per entry, per panel: (image fp or nil, text fp).
    public let panels: [[(image: String?, text: String)]]
    let rounds: [String]

    init(collection: StoryCollection, store: ProjectStore) throws {
        self.collection = collection
        var urls: [URL] = []
        for entry in collection.entries {
            for panel in entry.panels { if let image = panel.image { urls.append(Self.url(image, root: collection.root)) } }
        }
        let hashes = try store.fileHashes(for: urls)
        panels = collection.entries.map { entry in
            entry.panels.map { panel in
                (panel.image.flatMap { hashes[Self.url($0, root: collection.root).path] },
                 Hashing.sha256Hex(panel.text))
            }
        }
        rounds = collection.entries.map { entry in
            Hashing.sha256Hex(entry.rounds.map { "\($0.question)\u{1F}\($0.answer)" }.joined(separator: "\u{1E}"))
        }
    }

    static func url(_ path: String, root: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appendingPathComponent(path)
    }

    /// The fingerprint of a column for one item, or nil when the value does not exist (no image): a single
    /// value's own fingerprint, a list's the hash of its values'.
    func fingerprint(column: Column, entryIndex e: Int, panel: Int?) -> String? {
        let ps = panels[e]
        switch column.reading(panel: panel, count: ps.count) {
        case .panels(let field, let indices, let list)?:
            var values: [String] = []
            for p in indices {
                guard let v = field == .image ? ps[p].image : ps[p].text else { return nil }
                values.append(v)
            }
            return list ? Hashing.sha256Hex(values.joined(separator: ",")) : values.first
        case .itemID?:
            return Hashing.sha256Hex(ItemID(entry: collection.entries[e].id, panel: panel).description)
        case .rounds?:
            return rounds[e]
        case nil:
            return nil
        }
    }
}
