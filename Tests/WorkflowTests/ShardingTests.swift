import Foundation
import Store
import Testing
@testable import Workflow

/// The scale-out arithmetic and the `work` path, without a cluster: shards, stages, and every shard of a
/// stage run by `WorkflowSession.work` giving what a local run gives.
@Suite struct ShardingTests {
    @Test func shardsPartitionTheEntriesInOrder() {
        for entries in [0, 1, 2, 3, 7, 10, 100, 101, 10_000] {
            for shards in [1, 2, 3, 4, 7, 16, 200] {
                let a = ShardAssignment(entries: entries, shards: shards)
                var next = 0
                for i in 0..<shards {
                    let r = a.range(of: i)
                    #expect(r.lowerBound == next, "E=\(entries) N=\(shards) shard \(i)")
                    #expect(r.count == entries / shards || r.count == entries / shards + 1)
                    for e in r { #expect(a.shard(ofEntry: e) == i, "E=\(entries) N=\(shards) entry \(e)") }
                    next = r.upperBound
                }
                #expect(next == entries)
            }
        }
    }

    /// Regression: a resubmitted `--array=2` runs with SLURM_ARRAY_TASK_COUNT=1 (and SLURM_ARRAY_TASK_MAX=2);
    /// the shard must still be 2 of 4, owning the entries it owned in the first submission.
    @Test func resubmittedIndexKeepsItsShard() throws {
        let first = try ShardSpec.parse("2/4", environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"])
        let resubmitted = try ShardSpec.parse("/4", environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1",
                                                                   "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"])
        let bare = try ShardSpec.parse("4", environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1"])
        #expect(first == resubmitted && resubmitted == bare)
        #expect(resubmitted.count == 4 && resubmitted.index == 2)
        let a = ShardAssignment(entries: 103, shards: resubmitted.count)
        #expect(a.range(of: resubmitted.index) == 51..<77)
        // Kubernetes Indexed Jobs name the index JOB_COMPLETION_INDEX.
        #expect(try ShardSpec.parse("/4", environment: ["JOB_COMPLETION_INDEX": "3"]).index == 3)
        #expect(throws: StepError.self) { try ShardSpec.parse("/4", environment: [:]) }
        #expect(throws: StepError.self) { try ShardSpec.parse("4/4", environment: [:]) }
        #expect(throws: StepError.self) { try ShardSpec.parse("a/b", environment: [:]) }
    }

    @Test func arraySpecsAndQueueLines() {
        #expect(SlurmCommands.arraySpec([0, 1, 2, 3], maxParallel: 2) == "0-3%2")
        #expect(SlurmCommands.arraySpec([2], maxParallel: nil) == "2")
        #expect(SlurmCommands.arraySpec([5, 0, 1, 3, 6, 7], maxParallel: nil) == "0-1,3,5-7")
        #expect(SlurmCommands.parseStates("12_0|RUNNING\n12_3|PENDING\n12_[4-5]|PENDING\n") == [0: "RUNNING", 3: "PENDING"])
        #expect(SlurmCommands.arrayIndex("12_7") == 7 && SlurmCommands.arrayIndex("12") == nil && SlurmCommands.arrayIndex("12_[1-3%2]") == nil)
    }

    @Test func overheadCountsGapsBetweenWaves() {
        let t = Date(timeIntervalSince1970: 0)
        let spans = [(t, t + 4), (t + 1, t + 5), (t + 8, t + 10)]
        #expect(SlurmCoordinator.covered(spans) == 7)
    }

    @Test func aStageEndsAtAPool() throws {
        let s = try Scratch()
        try s.writeStories(4)
        _ = try s.writeModelFolder("clip")
        try s.writeWorkflow("""
            collection: {path: collection}
            models: {clip: {kind: clip, path: clip}}
            steps:
              - {id: a, use: template, inputs: {texts: texts}, params: {template: "{texts}"}}
              - {id: e, use: embed, model: clip, inputs: {text: text}}
              - {id: r, use: retrieve, inputs: {query: e.text_embedding, pool: e.text_embedding}}
              - {id: b, use: template, inputs: {text: a}, params: {template: "{text}!"}}
              - {id: c, use: template, inputs: {a: r.top_score@last, b: b}, params: {template: "{b} {a}"}}
            """)
        let plan = try s.plan(store: try s.openStore())
        #expect(Stages.split(plan) == [["a", "e", "b"], ["r", "c"]])
    }

    /// Every shard of every stage run through `work` (as the array tasks would, in any order) stores exactly
    /// what one local run stores; a second pass over the shards finds nothing to do.
    @Test func shardedWorkEqualsALocalRun() async throws {
        let s = try Scratch()
        try s.writeStories(23)
        try s.writeWorkflow("""
            collection: {path: collection}
            steps:
              - {id: lower, use: template, scope: panel, inputs: {text: text}, params: {template: "{text}", lowercase: true}}
              - {id: story, use: template, inputs: {texts: lower}, params: {template: "{texts}", separator: " / "}}
            """)
        let local = try ProjectStore(root: s.root.appendingPathComponent("local"))
        _ = try await s.session(store: local).run(.init(gallery: false))

        let sharded = try ProjectStore(root: s.root.appendingPathComponent("sharded"))
        let session = try s.session(store: sharded)
        let plan = try session.makePlan(explainStale: false)
        let runID = try sharded.beginRun(workflow: plan.spec.name, specPath: plan.spec.file.path)
        let manifests = StageManifest.stages(of: plan, session: session, runID: runID, shards: 4)
        #expect(manifests.count == 1 && manifests[0].shardsWithWork(in: plan) == [0, 1, 2, 3])
        for m in manifests { try m.write(storeRoot: sharded.root) }
        var ran = 0
        for i in [3, 1, 0, 2] {
            let report = try await session.work(manifest: manifests[0], shard: try ShardSpec(index: i, count: 4), options: RunOptions())
            ran += report.steps.reduce(0) { $0 + $1.ran }
        }
        #expect(ran == 23 * 3 + 23)
        let again = try await session.work(manifest: manifests[0], shard: try ShardSpec(index: 2, count: 4), options: RunOptions())
        #expect(again.steps.reduce(0) { $0 + $1.ran } == 0 && again.alreadyDone > 0)

        let a = try local.stateIndex(workflow: plan.spec.name)
        let b = try sharded.stateIndex(workflow: plan.spec.name)
        #expect(a.mapValues { $0.mapValues { "\($0.fingerprint) \($0.ok)" } } == b.mapValues { $0.mapValues { "\($0.fingerprint) \($0.ok)" } })
        let fingerprints = a.values.flatMap { $0.values.map(\.fingerprint) }
        let ra = try local.results(for: fingerprints), rb = try sharded.results(for: fingerprints)
        #expect(ra.count == fingerprints.count)
        for f in fingerprints { #expect(ra[f]?.outputs == rb[f]?.outputs && ra[f]?.status == rb[f]?.status) }
        // A task for the wrong shard count is refused.
        await #expect(throws: StepError.self) {
            try await session.work(manifest: manifests[0], shard: try ShardSpec(index: 0, count: 3), options: RunOptions())
        }
    }
}
