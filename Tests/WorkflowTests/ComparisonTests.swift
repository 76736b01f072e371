import Foundation
import Steps
import Stories
import Store
import Testing
@testable import Workflow

/// `storyloom compare`: two variants on one store, paired per entry.
@Suite struct ComparisonTests {
    /// `wrapped` is the panel text in a template; `length` its length in bytes, a number per panel.
    let yaml = """
        name: pair
        collection: collection
        steps:
          - id: wrapped
            use: template
            scope: panel
            inputs: {text: text}
            params: {template: "<{text}>"}
          - id: length
            use: command
            inputs: {text: wrapped}
            params: {run: [sh, -c, "printf %s \\"$0\\" | wc -c", "{text}"], output: number}
        """

    @Test func pairedSummaryCountsWinsTiesAndLosses() {
        let s = Comparison.Summary(pairs: [(1, 2), (2, 2), (3, 1), (0, .nan)], tie: 1e-9)
        #expect(s.n == 3 && s.wins == 1 && s.ties == 1 && s.losses == 1)
        #expect(abs(s.meanDelta - (-1.0 / 3)) < 1e-12)
        #expect(s.meanA == 2 && abs(s.meanB - 5.0 / 3) < 1e-12)
        #expect(s.ci95 > 0)
    }

    @Test func paramVariantsArePairedPerEntry() async throws {
        let s = try Scratch()
        try s.writeStories(3)
        try s.writeWorkflow(yaml)
        let a = Comparison.Variant(file: s.workflowFile, overrides: [], score: "length.number", label: "plain")
        let b = Comparison.Variant(file: s.workflowFile, overrides: ["wrapped.template=<<{text}>>"], score: "length.number", label: "wider")
        let comparison = Comparison(a: a, b: b, storeRoot: s.storeRoot, registry: StandardSteps.registry)
        let (document, summary, folder) = try await comparison.run()
        // B's text is two bytes longer on every panel, so on every entry's mean.
        #expect(summary.n == 3 && summary.wins == 3 && summary.losses == 0)
        #expect(abs(summary.meanDelta - 2) < 1e-9 && summary.ci95 == 0)
        #expect(document.entries.count == 3)
        #expect(document.entries[0].scores["Δ (B − A)"] == 2)
        // What the score reads is shown side by side, per panel.
        #expect(document.entries[0].panels[0].cells["A · wrapped.text"] == .text("<Story 1 panel 1.>"))
        #expect(document.entries[0].panels[0].cells["B · wrapped.text"] == .text("<<Story 1 panel 1.>>"))
        #expect(folder.lastPathComponent == "pair-compare")
        // The variant with overrides keeps its own item states: the workflow's own are untouched.
        let store = try s.openStore()
        #expect(try store.stateIndex(workflow: "pair").count == 2)
        #expect(try store.stateIndex(workflow: "pair@wider").count == 2)
        // A second comparison computes nothing: both variants are cached.
        let again = try await comparison.run()
        #expect(again.1 == summary)
        #expect(try Scratch.ranAnything(store: store) == false)
    }

    @Test func unknownScoreIsNamed() async throws {
        let s = try Scratch()
        try s.writeStories(1)
        try s.writeWorkflow(yaml)
        let v = Comparison.Variant(file: s.workflowFile, score: "lenght.number", label: "x")
        let w = Comparison.Variant(file: s.workflowFile, overrides: ["wrapped.template=x"], score: "lenght.number", label: "y")
        do {
            _ = try await Comparison(a: v, b: w, storeRoot: s.storeRoot, registry: StandardSteps.registry).run()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("no step \"lenght\" (did you mean \"length\"?)"))
        }
    }
}

extension Scratch {
    /// Whether the latest run of any workflow on the store ran an item.
    static func ranAnything(store: ProjectStore) throws -> Bool {
        for name in ["pair", "pair@wider"] {
            guard let data = try store.latestRun(workflow: name)?.summary,
                  let summary = try? OutputCoding.decoder.decode(RunSummary.self, from: data) else { continue }
            if summary.steps.contains(where: { $0.ran > 0 }) { return true }
        }
        return false
    }
}
