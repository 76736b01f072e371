import Foundation
import Stories
import Store

/// What the coordinating `run` planned for one stage, written into the store folder before the stage's
/// array job is submitted (`<store>/slurm/run-<ID>/stage-<S>.json`). A `work` task re-plans the same workflow
/// (fingerprints are a pure function of spec, collection and models) and runs exactly the items listed here
/// for its shard, refusing when its plan disagrees, so a workflow edited meanwhile cannot mix into the run.
public struct StageManifest: Codable, Sendable {
    public var workflow: String
    public var specFile: String
    public var overrides: [String]
    public var runID: Int64
    public var stage: Int
    public var steps: [String]
    public var shards: Int
    public var entryCount: Int
    /// Step id → item id → fingerprint of the items to run (stale or new when the run planned).
    public var items: [String: [String: String]]

    public static func folder(storeRoot: URL, runID: Int64) -> URL {
        storeRoot.appendingPathComponent("slurm").appendingPathComponent("run-\(runID)")
    }

    public static func url(storeRoot: URL, runID: Int64, stage: Int) -> URL {
        folder(storeRoot: storeRoot, runID: runID).appendingPathComponent("stage-\(stage).json")
    }

    public static func load(storeRoot: URL, runID: Int64, stage: Int) throws -> StageManifest {
        let url = url(storeRoot: storeRoot, runID: runID, stage: stage)
        guard let data = try? Data(contentsOf: url) else {
            throw StoreError("no plan for run \(runID) stage \(stage) in \(url.path): was the store folder moved, or is it not shared with this node?")
        }
        return try JSONDecoder().decode(StageManifest.self, from: data)
    }

    /// One manifest per stage of `plan` (see ``Stages``): the items each stage must run, as planned.
    public static func stages(of plan: Plan, session: WorkflowSession, runID: Int64, shards: Int) -> [StageManifest] {
        let byID = Dictionary(plan.steps.map { ($0.spec.id, $0) }, uniquingKeysWith: { a, _ in a })
        return Stages.split(plan).enumerated().map { s, stepIDs in
            StageManifest(workflow: plan.spec.name, specFile: plan.spec.file.path, overrides: session.overrides, runID: runID, stage: s,
                          steps: stepIDs, shards: shards, entryCount: plan.entryCount,
                          items: Dictionary(uniqueKeysWithValues: stepIDs.map { id in
                              (id, Dictionary(uniqueKeysWithValues: byID[id]!.items.filter { $0.status != .cached }.map { ($0.id, $0.fingerprint) }))
                          }))
        }
    }

    /// The shards that own at least one item to run: the array indices to submit.
    public func shardsWithWork(in plan: Plan) -> [Int] {
        let byID = Dictionary(plan.steps.map { ($0.spec.id, $0) }, uniquingKeysWith: { a, _ in a })
        return shardsWithWork { step, item in byID[step].flatMap { p in p.index[item].map { p.items[$0].entryIndex } } }
    }

    public func write(storeRoot: URL) throws {
        let url = Self.url(storeRoot: storeRoot, runID: runID, stage: stage)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    /// The shards that own at least one item to run: the array indices to submit.
    func shardsWithWork(entryIndex: (String, String) -> Int?) -> [Int] {
        let assignment = ShardAssignment(entries: entryCount, shards: shards)
        var out = Set<Int>()
        for (step, items) in self.items {
            for id in items.keys { if let e = entryIndex(step, id) { out.insert(assignment.shard(ofEntry: e)) } }
        }
        return out.sorted()
    }
}

/// What one `storyloom work` task did.
public struct ShardReport: Sendable {
    public var steps: [StepSummary]
    /// Items of this shard found already done (an earlier attempt of the same index committed them).
    public var alreadyDone: Int
    public var text: String {
        var lines = steps.map { "  \($0.id): ran \($0.ran), failed \($0.failed) (\(String(format: "%.2f", $0.seconds)) s)" }
        if alreadyDone > 0 { lines.append("  \(alreadyDone) item(s) already done by an earlier attempt") }
        return lines.joined(separator: "\n")
    }
}

extension WorkflowSession {
    /// Opens the session a `work` task needs: the workflow file and overrides the coordinator planned with,
    /// on the coordinator's store. The stage plans live in the store's folder: the SQLite store's own, or a
    /// PostgreSQL store's shared media folder (`--media`).
    public static func forWork(store: StoreOptions, runID: Int64, stage: Int, registry: StepRegistry) throws -> (WorkflowSession, StageManifest) {
        guard let folder = store.media ?? store.store.flatMap({ StoreAddress.isPostgresURL($0) ? nil : $0 }) else {
            throw StepError("work: a PostgreSQL store needs --media, the shared folder its run wrote the stage plans to")
        }
        let manifest = try StageManifest.load(storeRoot: UserPath.commandLine(folder).standardizedFileURL, runID: runID, stage: stage)
        let session = try WorkflowSession(file: URL(fileURLWithPath: manifest.specFile), overrides: manifest.overrides,
                                          options: store, registry: registry)
        return (session, manifest)
    }

    /// One array task: runs this shard's items of the stage's steps, committing per batch as a local run does.
    /// It takes no run lock (the coordinating `run` holds it while its tasks work); items of this shard already
    /// committed by an earlier attempt are skipped.
    public func work(manifest: StageManifest, shard: ShardSpec, options: RunOptions) async throws -> ShardReport {
        guard shard.count == manifest.shards else {
            throw StepError("run \(manifest.runID) stage \(manifest.stage) was planned for \(manifest.shards) shards, not \(shard.count)")
        }
        var plan = try makePlan(explainStale: false)
        guard plan.entryCount == manifest.entryCount else {
            throw StepError("the collection has \(plan.entryCount) entries but run \(manifest.runID) planned \(manifest.entryCount): it changed after the run started")
        }
        let owned = ShardAssignment(entries: manifest.entryCount, shards: manifest.shards).range(of: shard.index)
        let stageSteps = Set(manifest.steps)
        var alreadyDone = 0
        for s in plan.steps.indices {
            let id = plan.steps[s].spec.id
            let wanted = stageSteps.contains(id) ? manifest.items[id] ?? [:] : [:]
            for i in plan.steps[s].items.indices {
                let item = plan.steps[s].items[i]
                guard owned.contains(item.entryIndex), let fingerprint = wanted[item.id] else {
                    // Not this task's: neither run nor restored here.
                    plan.steps[s].items[i].status = .cached
                    plan.steps[s].items[i].stateChanged = false
                    continue
                }
                guard fingerprint == item.fingerprint else {
                    throw StepError("\(id) \(item.id) has another fingerprint than run \(manifest.runID) planned: the workflow, its collection or a model changed after the run started")
                }
                // Committed by an earlier attempt (or by another workflow meanwhile: then only its state is written).
                if item.status == .cached { alreadyDone += 1 }
            }
        }
        let steps = try await Executor(store: store).runSteps(manifest.steps, of: plan, runID: manifest.runID, options: options)
        return ShardReport(steps: steps, alreadyDone: alreadyDone)
    }
}
