import Foundation
import Stories
import Store

/// A stored result decoded back into values.
public struct DecodedResult: Sendable {
    public var ok: Bool
    public var outputs: Outputs
    public var error: String?
}

/// Reads stored results as ``Outputs`` (vectors joined back in).
public struct ResultReader: Sendable {
    public var store: any ResultStore
    public init(store: any ResultStore) { self.store = store }

    public func read(_ fingerprints: [String]) throws -> [String: DecodedResult] {
        let decoder = OutputCoding.decoder
        var out: [String: DecodedResult] = [:]
        for (fp, r) in try store.results(for: Array(Set(fingerprints))) {
            var outputs: Outputs = [:]
            if let data = r.outputs { outputs = (try? decoder.decode(Outputs.self, from: data)) ?? [:] }
            for (name, v) in r.vectors { outputs[name] = .vector(v) }
            out[fp] = DecodedResult(ok: r.status == .ok, outputs: outputs, error: r.error)
        }
        return out
    }
}

/// Turns planned items into ``StepItem``s: collection columns from the entry, step outputs from the store.
struct InputResolver {
    var plan: Plan
    var steps: [String: StepPlan]
    var store: any ResultStore
    /// The plan's collection and column fingerprints (loaded here for a plan reused from the cache).
    let collection: StoryCollection
    let columns: ColumnFingerprints

    init(plan: Plan, steps: [String: StepPlan], store: any ResultStore) throws {
        self.plan = plan
        self.steps = steps
        self.store = store
        collection = try plan.collection
        columns = try plan.columns
    }

    /// The value of a collection column for an item (nil when it does not exist, e.g. no image).
    func columnValue(_ column: Column, entryIndex e: Int, panel: Int?, itemID: String) -> Value? {
        let entry = collection.entries[e]
        let hashes = columns.panels[e]
        switch column.reading(panel: panel, count: entry.panels.count) {
        case .panels(let field, let indices, let list)?:
            var values: [Value] = []
            for p in indices {
                switch field {
                case .text:
                    values.append(.text(entry.panels[p].text))
                case .image:
                    guard let path = entry.panels[p].image, let hash = hashes[p].image else { return nil }
                    let url = ColumnFingerprints.url(path, root: collection.root)
                    values.append(.image(ImageRef(hash: hash, ext: url.pathExtension.lowercased(), path: url.path)))
                }
            }
            return list ? .list(values) : values.first
        case .itemID?:
            return .text(itemID)
        case .rounds?:
            return .list(entry.rounds.map { .list([.text($0.question), .text($0.answer)]) })
        case nil:
            return nil
        }
    }

    /// Upstream item ids an input reads for one item, in order; `single` says whether it is one value.
    func upstreamItems(_ ref: InputRef, item: PlannedItem) -> (step: StepPlan, ids: [String], single: Bool)? {
        guard case .step(let id, _, let lastPanel) = ref.source, let up = steps[id] else { return nil }
        let entry = collection.entries[item.entryIndex]
        let (ids, single) = InputRef.upstreamItems(upstreamScope: up.spec.scope, lastPanel: lastPanel, entry: entry,
                                                   panel: item.panelIndex)
        let keys = ids.map(\.description)
        return (up, single ? keys : keys.filter { up.index[$0] != nil }, single)
    }

    func items(for batch: [PlannedItem], step: StepPlan, pools: [String: [(id: String, value: Value)]]) throws -> [Result<StepItem, StepError>] {
        // One query for every upstream result this batch reads.
        var needed: [String] = []
        for item in batch {
            for (_, ref) in step.spec.inputs {
                guard let (up, ids, _) = upstreamItems(ref, item: item) else { continue }
                for id in ids { if let i = up.index[id] { needed.append(up.items[i].fingerprint) } }
            }
        }
        let results = needed.isEmpty ? [:] : try ResultReader(store: store).read(needed)
        let aggregate = Set(step.kind.inputs.filter(\.aggregate).map(\.name))

        return batch.map { item in
            let entry = collection.entries[item.entryIndex]
            var inputs: [String: Value] = [:]
            for name in step.spec.inputs.keys.sorted() where !aggregate.contains(name) {
                let ref = step.spec.inputs[name]!
                switch ref.source {
                case .column(let columnName):
                    guard let column = Column(rawValue: columnName),
                          let v = columnValue(column, entryIndex: item.entryIndex, panel: item.panelIndex, itemID: item.id) else {
                        let where_ = item.panelIndex.map { "panel \($0 + 1) of \(entry.id)" } ?? entry.id
                        return .failure(StepError("input \(name): \(where_) has no \(columnName)\(entry.warnings.isEmpty ? "" : " (\(entry.warnings.joined(separator: "; ")))")"))
                    }
                    inputs[name] = v
                case .step(let upID, let output, _):
                    guard let (up, ids, single) = upstreamItems(ref, item: item) else {
                        return .failure(StepError("input \(name): step \(upID) is not available"))
                    }
                    var values: [Value] = []
                    for id in ids {
                        guard let i = up.index[id], let r = results[up.items[i].fingerprint] else {
                            return .failure(StepError("input \(name): step \(upID) has no result for \(id)"))
                        }
                        guard r.ok else {
                            return .failure(StepError("input \(name): step \(upID) failed for \(id): \(r.error ?? "unknown error")"))
                        }
                        guard let v = Self.output(output, of: r, kind: up.kind) else {
                            return .failure(StepError("input \(name): step \(upID) produced no \(output ?? up.kind.outputs.first ?? "output") for \(id)"))
                        }
                        values.append(v)
                    }
                    if single && values.isEmpty { return .failure(StepError("input \(name): step \(upID) has no result")) }
                    inputs[name] = single ? values[0] : .list(values)
                }
            }
            return .success(StepItem(id: item.id, entry: entry, panelIndex: item.panelIndex, inputs: inputs,
                                     pools: pools, seed: item.seed))
        }
    }

    /// A named output, or for a bare step reference its primary output — or, for steps whose outputs
    /// depend on params (`command` writes an image, a text or a number), the one output it produced.
    static func output(_ name: String?, of result: DecodedResult, kind: StepKind) -> Value? {
        if let name { return result.outputs[name] }
        if let primary = kind.outputs.first, let v = result.outputs[primary] { return v }
        return result.outputs.count == 1 ? result.outputs.values.first : nil
    }

    /// Values of aggregate inputs (a retrieval pool): the whole referenced column, loaded once per step.
    func pools(for step: StepPlan) throws -> [String: [(id: String, value: Value)]] {
        var out: [String: [(id: String, value: Value)]] = [:]
        for input in step.kind.inputs where input.aggregate {
            guard let ref = step.spec.inputs[input.name] else { continue }
            var values: [(id: String, value: Value)] = []
            switch ref.source {
            case .column(let name):
                guard let column = Column(rawValue: name) else { continue }
                for (e, entry) in collection.entries.enumerated() {
                    for p in entry.panels.indices {
                        let id = ItemID(entry: entry.id, panel: p).description
                        if let v = columnValue(column, entryIndex: e, panel: p, itemID: id) { values.append((id, v)) }
                    }
                }
            case .step(let id, let output, _):
                guard let up = steps[id] else { continue }
                let results = try ResultReader(store: store).read(up.items.map(\.fingerprint))
                for item in up.items {
                    if let r = results[item.fingerprint], r.ok, let v = Self.output(output, of: r, kind: up.kind) { values.append((item.id, v)) }
                }
            }
            out[input.name] = values
        }
        return out
    }
}

/// Collects numeric outputs of each step into mean ± 95% interval for the run summary.
struct ScoreCollector {
    var store: any ResultStore

    func addScores(to steps: [StepSummary], plan: Plan) throws -> [StepSummary] {
        var out = steps
        for (i, summary) in steps.enumerated() {
            guard let step = plan.step(summary.id), !step.kind.scoreOutputs.isEmpty else { continue }
            let results = try ResultReader(store: store).read(step.items.map(\.fingerprint))
            var series: [String: [Double]] = [:]
            for item in step.items {
                guard let r = results[item.fingerprint], r.ok else { continue }
                for name in step.kind.scoreOutputs { if let n = r.outputs[name]?.number { series[name, default: []].append(n) } }
            }
            out[i].scores = series.keys.sorted().map { ScoreSummary(name: "\(summary.id).\($0)", values: series[$0]!) }
        }
        return out
    }
}
