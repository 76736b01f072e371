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
    /// Input name → fingerprint of the value it reads (`nil` when the value does not exist).
    public var inputFingerprints: [String: String?]
    public var seed: UInt64
    public var status: ItemStatus
    /// Whether the workflow's stored state for this item differs from the plan (to be rewritten).
    public var stateChanged: Bool
    /// The step's part of the components (kind, version, params, model).
    let builder: FingerprintComponents.Builder

    init(id: String, entryIndex: Int, panelIndex: Int?, inputFingerprints: [String: String?], seed: UInt64,
         builder: FingerprintComponents.Builder) {
        self.id = id
        self.entryIndex = entryIndex
        self.panelIndex = panelIndex
        self.inputFingerprints = inputFingerprints
        self.seed = seed
        self.builder = builder
        self.status = .new
        self.stateChanged = true
        self.fingerprint = ""
        fingerprint = Hashing.sha256Hex(components)
    }

    /// Restores an item as planned before (the plan cache); `fingerprint` is the SHA-256 of `components`.
    init(id: String, entryIndex: Int, panelIndex: Int?, fingerprint: String, inputFingerprints: [String: String?],
         seed: UInt64, status: ItemStatus, stateChanged: Bool, builder: FingerprintComponents.Builder) {
        self.id = id
        self.entryIndex = entryIndex
        self.panelIndex = panelIndex
        self.fingerprint = fingerprint
        self.inputFingerprints = inputFingerprints
        self.seed = seed
        self.status = status
        self.stateChanged = stateChanged
        self.builder = builder
    }

    /// The fingerprint's components as canonical JSON (stored with the item state, shown by `explain`), made
    /// from the step's part, the inputs' fingerprints and the seed: the one definition the fingerprint hashes.
    public var components: String {
        builder.json(inputs: inputFingerprints.keys.sorted().map { ($0, inputFingerprints[$0]! ?? FingerprintComponents.missingInput) },
                     seed: seed)
    }
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
    /// Steps in a topological order.
    public var steps: [StepPlan]
    /// The collection's entry count and root, known without loading it.
    public var entryCount: Int
    public var collectionRoot: URL
    /// The collection and its column fingerprints: loaded with a fresh plan, on first use for a cached one.
    let source: PlanCollection
    /// The store generation the statuses were computed at (nil when the store changed meanwhile).
    var generation: Int64?
    /// Set when the plan can be cached (native and StoryWorld collections).
    var cacheEntry: PlanCacheEntry?
    /// Where the plan came from (what the cache tests check).
    var origin: PlanOrigin = .planned

    init(spec: WorkflowSpec, steps: [StepPlan], entryCount: Int, collectionRoot: URL, source: PlanCollection, generation: Int64?) {
        self.spec = spec
        self.steps = steps
        self.entryCount = entryCount
        self.collectionRoot = collectionRoot
        self.source = source
        self.generation = generation
    }

    /// The collection the plan was made from.
    public var collection: StoryCollection { get throws { try source.get().collection } }
    /// Content fingerprints of the collection's columns (image hashes, text hashes).
    public var columns: ColumnFingerprints { get throws { try source.get().columns } }

    public func step(_ id: String) -> StepPlan? { steps.first { $0.spec.id == id } }
}

enum PlanOrigin: Sendable, Equatable {
    /// Computed from the collection.
    case planned
    /// Fingerprints from the plan cache, statuses recomputed (the store changed since).
    case cachedFingerprints
    /// Fingerprints and statuses from the plan cache.
    case cached
}

/// A plan's collection, loaded at most once. A cached plan loads it only when something needs the entries
/// (a step with items to run, the gallery); `load` checks it is still the collection the plan was made from.
final class PlanCollection: @unchecked Sendable {
    private let lock = NSLock()
    private var loaded: (collection: StoryCollection, columns: ColumnFingerprints)?
    private let load: @Sendable () throws -> (collection: StoryCollection, columns: ColumnFingerprints)

    init(loaded: (collection: StoryCollection, columns: ColumnFingerprints)) {
        self.loaded = loaded
        self.load = { loaded }
    }

    init(load: @escaping @Sendable () throws -> (collection: StoryCollection, columns: ColumnFingerprints)) {
        self.load = load
    }

    func get() throws -> (collection: StoryCollection, columns: ColumnFingerprints) {
        try lock.withLock {
            if let loaded { return loaded }
            let value = try load()
            loaded = value
            return value
        }
    }
}

/// Computes per-item fingerprints from params, inputs, models and seeds, and compares them with the
/// store: no step runs to make a plan, because a fingerprint depends on its inputs' fingerprints only.
public struct Planner {
    public var registry: StepRegistry
    public var store: any ResultStore

    public init(registry: StepRegistry, store: any ResultStore) {
        self.registry = registry
        self.store = store
    }

    public func plan(_ spec: WorkflowSpec, collection: StoryCollection, models: [String: ResolvedModel],
                     explainStale: Bool = true) throws -> Plan {
        let columns = try ColumnFingerprints(collection: collection, store: store)
        let generation = try store.generation()
        let fingerprinted = try fingerprints(spec, collection: collection, columns: columns, models: models)
        let steps = try withStatuses(fingerprinted, workflow: spec.name, explainStale: explainStale)
        // The statuses belong to `generation` only if nothing wrote to the store while they were read.
        let unchanged = try store.generation() == generation
        return Plan(spec: spec, steps: steps, entryCount: collection.entries.count, collectionRoot: collection.root,
                    source: PlanCollection(loaded: (collection, columns)), generation: unchanged ? generation : nil)
    }

    /// Every step's items with their fingerprints (statuses not yet set): a pure function of the spec, the
    /// collection's content and the models' digests, which is what the plan cache keys on.
    func fingerprints(_ spec: WorkflowSpec, collection: StoryCollection, columns: ColumnFingerprints,
                      models: [String: ResolvedModel]) throws -> [StepPlan] {
        let order = try StepGraph(spec.steps).order()
        var plans: [String: StepPlan] = [:]
        var ordered: [StepPlan] = []

        for stepSpec in order {
            let (kind, params, model, componentsBuilder) = try Self.stepParts(stepSpec, registry: registry, models: models)
            let baseSeed = UInt64(max(0, params["seed"]?.doubleValue ?? 0))

            // Aggregate inputs: one fingerprint over the whole referenced column.
            var aggregateFPs: [String: String] = [:]
            for input in kind.inputs where input.aggregate {
                guard let ref = stepSpec.inputs[input.name] else { continue }
                aggregateFPs[input.name] = Self.aggregateFingerprint(ref, plans: plans, columns: columns, collection: collection)
            }

            var items: [PlannedItem] = []
            items.reserveCapacity(collection.entries.count * (stepSpec.scope == .panel ? 5 : 1))
            let inputNames = stepSpec.inputs.keys.sorted()
            for (e, entry) in collection.entries.enumerated() {
                let panelIndices: [Int?] = stepSpec.scope == .panel
                    ? entry.panels.indices.filter { stepSpec.panels.contains($0, count: entry.panels.count) }
                    : [nil]
                for p in panelIndices {
                    let itemID = ItemID(entry: entry.id, panel: p).description
                    var inputFPs: [String: String?] = [:]
                    for name in inputNames {
                        if let agg = aggregateFPs[name] { inputFPs[name] = agg }
                        else { inputFPs[name] = Self.inputFingerprint(stepSpec.inputs[name]!, entryIndex: e, entry: entry, panel: p,
                                                                      plans: plans, columns: columns) }
                    }
                    let seed: UInt64 = kind.stochastic ? Self.itemSeed(base: baseSeed, itemID: itemID) : 0
                    items.append(PlannedItem(id: itemID, entryIndex: e, panelIndex: p, inputFingerprints: inputFPs, seed: seed,
                                             builder: componentsBuilder))
                }
            }
            var index: [String: Int] = [:]
            index.reserveCapacity(items.count)
            for (i, item) in items.enumerated() { index[item.id] = i }
            let plan = StepPlan(spec: stepSpec, kind: kind, params: params, model: model, items: items, index: index, orphans: [])
            plans[stepSpec.id] = plan
            ordered.append(plan)
        }
        return ordered
    }

    /// A step's kind, params with defaults, model and the step's part of every item's components.
    static func stepParts(_ stepSpec: StepSpec, registry: StepRegistry, models: [String: ResolvedModel]) throws
        -> (StepKind, [String: JSONValue], ResolvedModel?, FingerprintComponents.Builder) {
        guard let kind = registry[stepSpec.use] else { throw StepError("unknown step kind \(stepSpec.use)") }
        let params = try kind.resolveParams(stepSpec.params)
        let relevant = params.filter { k, _ in kind.param(k)?.affectsResult ?? true }
        let model = stepSpec.model.flatMap { models[$0] }
        return (kind, params, model, try FingerprintComponents.Builder(kind: kind, model: model, params: relevant))
    }

    /// Sets each item's status against the workflow's stored states and the store's results: cached when the
    /// workflow's last state (or any stored result) has the fingerprint, new when never computed, else stale.
    func withStatuses(_ steps: [StepPlan], workflow: String, explainStale: Bool) throws -> [StepPlan] {
        let states = try store.stateIndex(workflow: workflow)
        var out = steps
        for s in out.indices {
            let stepSpec = out[s].spec
            let stepStates = states[stepSpec.id] ?? [:]
            var items = out[s].items
            for i in items.indices {
                let prior = stepStates[items[i].id]
                let fingerprint = items[i].fingerprint
                if let prior, prior.fingerprint == fingerprint, prior.ok { items[i].status = .cached }
                else if prior == nil { items[i].status = .new }
                else { items[i].status = .stale([]) }
                items[i].stateChanged = prior?.fingerprint != fingerprint || prior?.ok != true
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
                    let old = try store.components(workflow: workflow, stepID: stepSpec.id, itemIDs: staleIDs)
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
            let index = out[s].index
            out[s].orphans = stepStates.keys.filter { index[$0] == nil }.sorted()
            out[s].items = items
        }
        return out
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

    init(collection: StoryCollection, store: any ResultStore) throws {
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
