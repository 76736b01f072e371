import Foundation
import Store
import Stories
import Testing
@testable import Workflow

/// The plan cache: a no-op rerun reuses the last plan; any change to what a plan is computed from — a
/// caption, a param, a model file, the store — is still noticed.
@Suite struct PlanCacheTests {
    /// What a plan says about every item, to compare a cached plan with one computed afresh.
    func summary(_ plan: Plan) -> [String] {
        plan.steps.flatMap { step in
            step.items.map { "\(step.spec.id) \($0.id) \($0.fingerprint) \($0.components) \($0.status) \($0.stateChanged)" }
                + ["\(step.spec.id) orphans \(step.orphans)"]
        }
    }

    /// The plan computed without the cache.
    func fresh(_ s: Scratch, overrides: [String] = [], store: any ResultStore, explainStale: Bool = false) throws -> Plan {
        let session = try s.session(overrides: overrides, store: store)
        let collection = try CollectionLoader.load(session.spec, storeRoot: store.root)
        let models = try ModelResolver.resolve(session.spec, store: store)
        return try Planner(registry: s.registry, store: store).plan(session.spec, collection: collection, models: models,
                                                                    explainStale: explainStale)
    }

    @Test(arguments: StoreKind.testable) func aNoOpRerunReusesThePlanWithoutReadingTheCollection(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(4)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        #expect(try s.session(store: store).makePlan(explainStale: false).origin == .planned)
        try await s.run(store: store)
        // The run refreshed the cached statuses: the next plan comes whole from the cache.
        let cached = try s.session(store: store).makePlan(explainStale: false)
        #expect(cached.origin == .cached)
        #expect(cached.entryCount == 4)
        #expect(summary(cached) == summary(try fresh(s, store: store)))
        #expect(cached.steps.allSatisfy { $0.counts.new == 0 && $0.counts.stale == 0 })
        let rerun = try await s.run(store: store)
        #expect(rerun.steps.allSatisfy { $0.ran == 0 })
        // `plan` wants stale reasons, which a run's plan does not carry: statuses recomputed once, then reused.
        #expect(try s.plan(store: store).origin == .cachedFingerprints)
        #expect(try s.plan(store: store).origin == .cached)
        #expect(try s.session(store: store).makePlan(explainStale: false).origin == .cached)
    }

    @Test(arguments: StoreKind.testable) func editingACaptionIsNoticed(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(4)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        #expect(try s.session(store: store).makePlan(explainStale: false).origin == .cached)
        // Same length, so the file's size does not change either.
        try s.writeStories(4) { $0[1].panels[2].text = "Story 2 panel 9." }
        let plan = try s.plan(store: store)
        #expect(plan.origin == .planned)
        #expect(plan.counts("upper").stale == 1 && plan.counts("joined").stale == 1 && plan.counts("independent").stale == 1)
        #expect(summary(plan) == summary(try fresh(s, store: store, explainStale: true)))
        let run = try await s.run(store: store)
        #expect(run.ran("upper") == 1 && run.ran("final") == 1)
        #expect(try s.session(store: store).makePlan(explainStale: false).origin == .cached)
    }

    @Test(arguments: StoreKind.testable) func changingAParamIsNoticed(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        try await s.run(store: store)
        let overrides = ["final.template=changed: {a}"]
        let plan = try s.session(overrides: overrides, store: store).makePlan(explainStale: false)
        #expect(plan.origin == .planned)
        #expect(plan.counts("final").stale == 3 && plan.counts("upper").cached == 9)
        #expect(try await s.run(overrides: overrides, store: store).ran("final") == 3)
        // Back to the file's own params: a different key again, and the earlier results are restored.
        let back = try s.session(store: store).makePlan(explainStale: false)
        #expect(back.origin == .planned)
        #expect(back.counts("final").cached == 3)
    }

    @Test func changingAModelFileIsNoticed() throws {
        let s = try Scratch()
        try s.writeStories(2)
        let model = try s.writeModelFolder("models/clip")
        try s.writeWorkflow("""
            name: embeds
            collection: collection
            models:
              clip: {kind: clip, path: models/clip}
            steps:
              - {id: e, use: embed, model: clip, inputs: {image: image}}
            """)
        let store = try s.openStore()
        let first = try s.plan(store: store)
        #expect(first.origin == .planned)
        #expect(try s.plan(store: store).origin == .cached)
        try Data([1, 2, 3, 4]).write(to: model.appendingPathComponent("model.safetensors"))
        let second = try s.plan(store: store)
        #expect(second.origin == .planned)
        #expect(second.steps[0].items.map(\.fingerprint) != first.steps[0].items.map(\.fingerprint))
        #expect(summary(second) == summary(try fresh(s, store: store, explainStale: true)))
    }

    @Test(arguments: StoreKind.testable) func anotherWorkflowsRunOrAGarbageCollectionIsNoticed(_ kind: StoreKind) async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore(kind)
        let planned = try s.plan(store: store)
        #expect(planned.counts("upper").new == 9)
        #expect(try s.plan(store: store).origin == .cached)
        // The same steps under another name compute every result this workflow needs.
        let other = s.root.appendingPathComponent("other.yaml")
        try chainWorkflow.replacingOccurrences(of: "name: chain", with: "name: other").write(to: other, atomically: true, encoding: .utf8)
        _ = try await WorkflowSession(file: other, store: store, registry: s.registry).run(.init(gallery: false))
        let after = try s.plan(store: store)
        #expect(after.origin == .cachedFingerprints)
        #expect(after.counts("upper").cached == 9 && after.counts("final").cached == 3)
        #expect(summary(after) == summary(try fresh(s, store: store, explainStale: true)))
        // Garbage collection after the other workflow's states are gone removes those results again.
        try store.pruneStates(workflow: "other", keepSteps: [])
        _ = try store.collectGarbage(dryRun: false)
        let collected = try s.plan(store: store)
        #expect(collected.origin == .cachedFingerprints)
        #expect(collected.counts("upper").new == 9)
    }

    @Test func aWorldCollectionIsCachedToo() async throws {
        let s = try Scratch()
        try s.writeWorkflow("""
            name: w
            collection: {world: {seed: 3, stories: 5, dialogues: 0, display_size: none}}
            steps:
              - {id: t, use: template, inputs: {texts: texts}, params: {template: "{texts}"}}
            """)
        let store = try s.openStore()
        try await s.run(store: store)
        let plan = try s.session(store: store).makePlan(explainStale: false)
        #expect(plan.origin == .cached)
        #expect(plan.counts("t").cached == 5)
        // An image the collection names is checked by content, though the collection file is unchanged.
        let worlds = store.root.appendingPathComponent("worlds")
        let files = FileManager.default.enumerator(at: worlds, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }
        let image = try #require(files.first { $0.pathExtension == "png" })
        try Data("not the picture".utf8).write(to: image)
        #expect(try s.session(store: store).makePlan(explainStale: false).origin == .planned)
    }
}
