import Foundation
import Store
import Stories
import Testing
@testable import Workflow

@Suite struct CachingTests {
    @Test(arguments: StoreKind.testable) func firstRunComputesEverythingAndNoOpRerunNothing(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(4)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        let first = try await s.run(store: store)
        #expect(first.ran("upper") == 12)
        #expect(first.ran("joined") == 4)
        #expect(first.ran("final") == 4)
        #expect(first.status == "ok")
        let plan = try s.plan(store: store)
        for step in ["upper", "joined", "final", "independent"] {
            #expect(plan.counts(step).new == 0 && plan.counts(step).stale == 0)
        }
        let second = try await s.run(store: store)
        #expect(second.steps.allSatisfy { $0.ran == 0 })
        #expect(second.cached("upper") == 12)
        // The computed values are real: the final text composes every panel.
        let fp = plan.step("final")!.items[0].fingerprint
        let r = try ResultReader(store: store).read([fp])[fp]
        #expect(r?.outputs["text"] == .text("final: <Story 1 panel 1.> + <Story 1 panel 2.> + <Story 1 panel 3.>"))
    }

    @Test(arguments: StoreKind.testable) func changingOneParamRerunsThatStepAndItsDependentsOnly(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        let plan = try s.plan(overrides: ["joined.separator= | "], store: store)
        #expect(plan.counts("upper").cached == 9)
        #expect(plan.counts("joined").stale == 3)
        #expect(plan.counts("final").stale == 3)
        #expect(plan.counts("independent").cached == 3)
        #expect(plan.reasons("joined").allSatisfy { $0 == "param separator:  +  →  | " })
        #expect(plan.reasons("final").allSatisfy { $0 == "input a (joined) changed" })
        let run = try await s.run(overrides: ["joined.separator= | "], store: store)
        #expect(run.ran("upper") == 0 && run.ran("joined") == 3 && run.ran("final") == 3 && run.ran("independent") == 0)
    }

    @Test(arguments: StoreKind.testable) func editingOneEntryRerunsOnlyTheItemsItAffects(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(5)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        try s.writeStories(5) { $0[2].panels[1].text = "Something else happens." }
        let run = try await s.run(store: store)
        #expect(run.ran("upper") == 1)          // only panel s3#2
        #expect(run.ran("joined") == 1)
        #expect(run.ran("final") == 1)
        #expect(run.ran("independent") == 1)
        #expect(run.cached("upper") == 14)
    }

    @Test(arguments: StoreKind.testable) func addingOneStoryRunsOnlyThatStory(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(5)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        try s.writeStories(6)
        let plan = try s.plan(store: store)
        #expect(plan.counts("upper").new == 3 && plan.counts("upper").cached == 15)
        #expect(plan.counts("final").new == 1 && plan.counts("final").cached == 5)
        let run = try await s.run(store: store)
        #expect(run.ran("upper") == 3 && run.ran("joined") == 1 && run.ran("final") == 1 && run.ran("independent") == 1)
    }

    @Test(arguments: StoreKind.testable) func revertingAParamRestoresEarlierResultsWithoutRecomputation(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        let changed = try await s.run(overrides: ["final.template=changed {a}"], store: store)
        #expect(changed.ran("final") == 3)
        let plan = try s.plan(store: store)
        #expect(plan.counts("final").cached == 3)
        let reverted = try await s.run(store: store)
        #expect(reverted.steps.allSatisfy { $0.ran == 0 })
        // And the workflow's state now points at the original results again.
        let again = try s.plan(store: store)
        #expect(again.step("final")!.items.allSatisfy { !$0.stateChanged })
    }

    @Test(arguments: StoreKind.testable) func aResultComputedByOneWorkflowIsReusedByAnother(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        try s.writeWorkflow(chainWorkflow.replacingOccurrences(of: "name: chain", with: "name: other"))
        let run = try await s.run(store: store)
        #expect(run.steps.allSatisfy { $0.ran == 0 })
    }

    @Test func stochasticStepsKeyOnTheirSeed() async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow("""
            name: seeded
            collection: collection
            steps:
              - id: noise
                use: command
                scope: entry
                params: {run: [echo, "{seed}"], seed: 7}
            """)
        let store = try s.openStore()
        let first = try await s.run(store: store)
        #expect(first.ran("noise") == 3)
        #expect(try await s.run(store: store).ran("noise") == 0)
        let plan = try s.plan(store: store)
        let values = try ResultReader(store: store).read(plan.step("noise")!.items.map(\.fingerprint)).values.compactMap { $0.outputs["text"]?.text }
        #expect(Set(values).count == 3)   // one seed per item, derived from the base seed and the item id
        #expect(values.allSatisfy { UInt64($0) != nil })
        let reseeded = try await s.run(overrides: ["noise.seed=8"], store: store)
        #expect(reseeded.ran("noise") == 3)
    }

    @Test(arguments: StoreKind.testable) func aFailingItemIsRecordedAndTheOthersGoOn(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(4)
        // s2 fails until this file exists.
        let fixed = s.root.appendingPathComponent("fixed")
        try s.writeWorkflow("""
            name: failing
            collection: collection
            steps:
              - id: check
                use: command
                scope: entry
                params: {run: [sh, -c, "test {item} != s2 || test -e \(fixed.path) || { echo 'bad item' >&2; exit 3; }; echo ok-{item}"]}
              - id: after
                use: template
                inputs: {a: check}
                params: {template: "{a}!"}
            """)
        let store = try s.openStore(kind)
        let run = try await s.run(store: store, batchSize: 2)
        #expect(run.status == "failed")
        #expect(run.failed("check") == 1)
        #expect(run.ran("check") == 4)
        #expect(run.steps[0].errors.first?.item == "s2")
        #expect(run.steps[0].errors.first?.error.contains("exited with status 3: bad item") == true)
        // The dependent item fails with the upstream error; the others succeed.
        #expect(run.failed("after") == 1)
        #expect(run.steps[1].errors.first?.error.contains("step check failed for s2") == true)
        // A rerun retries the failed items only.
        let plan = try s.plan(store: store)
        #expect(plan.counts("check").stale == 1 && plan.counts("check").cached == 3)
        #expect(plan.reasons("check") == ["previous attempt failed"])
        let retried = try await s.run(store: store)
        #expect(retried.ran("check") == 1 && retried.failed("check") == 1)
        // Once the cause is gone, the retry's success replaces the stored failure.
        try Data().write(to: fixed)
        let fixedRun = try await s.run(store: store)
        #expect(fixedRun.status == "ok")
        #expect(fixedRun.ran("check") == 1 && fixedRun.failed("check") == 0 && fixedRun.ran("after") == 1)
        let after = try s.plan(store: store)
        #expect(after.counts("check").cached == 4 && after.counts("after").cached == 4)
    }

    @Test(arguments: StoreKind.testable) func explainSaysWhichParamChanged(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(2)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        let plan = try s.plan(overrides: ["upper.template=<<{text}>>"], store: store)
        let text = try Explainer.explain(plan: plan, stepID: "upper", itemID: "s1#2", store: store)
        #expect(text.contains("status: stale"))
        #expect(text.contains("param template: <{text}> → <<{text}>>"))
        let downstream = try Explainer.explain(plan: plan, stepID: "joined", itemID: "s1", store: store)
        #expect(downstream.contains("input texts (upper) changed"))
        #expect(throws: StepError.self) { try Explainer.explain(plan: plan, stepID: "uper", itemID: "s1", store: store) }
    }

    @Test(arguments: StoreKind.testable) func concurrentBatchesGiveTheSameResults(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(20)
        try s.writeWorkflow(chainWorkflow)
        let a = try s.openStore(kind)
        try await s.run(store: a, batchSize: 3, jobs: 4)
        let other = try ProjectStore(root: s.root.appendingPathComponent("store2"))
        try await s.run(store: other, batchSize: 50, jobs: 1)
        let plan = try s.plan(store: a)
        let fps = plan.steps.flatMap { $0.items.map(\.fingerprint) }
        let ra = try ResultReader(store: a).read(fps), rb = try ResultReader(store: other).read(fps)
        #expect(ra.count == fps.count)
        for fp in fps { #expect(ra[fp]?.outputs == rb[fp]?.outputs) }
        if let sqlite = a as? ProjectStore { #expect(try sqlite.integrityCheck() == "ok") }
    }

    @Test func modelDigestFollowsWeightsAndConfigsNotDocumentation() throws {
        let s = try Scratch()
        try s.writeStories(1)
        let model = try s.writeModelFolder("models/clip")
        try "# card".write(to: model.appendingPathComponent("MODEL_CARD.md"), atomically: true, encoding: .utf8)
        try s.writeWorkflow("""
            collection: collection
            models:
              clip: {kind: clip, path: models/clip}
            steps:
              - {id: e, use: embed, model: clip, inputs: {image: image}}
            """)
        let store = try s.openStore()
        func digest() throws -> String {
            let spec = try SpecParser(registry: s.registry).parse(file: s.workflowFile)
            return try #require(try ModelResolver.resolve(spec, store: store)["clip"]).digest
        }
        let first = try digest()
        try "# card, edited".write(to: model.appendingPathComponent("MODEL_CARD.md"), atomically: true, encoding: .utf8)
        #expect(try digest() == first)
        try Data([1, 2, 3, 4]).write(to: model.appendingPathComponent("model.safetensors"))
        let second = try digest()
        #expect(second != first)
        try "{\"a\": 1}".write(to: model.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        #expect(try digest() != second)
    }
}
