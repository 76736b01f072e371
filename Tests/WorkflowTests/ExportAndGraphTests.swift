import Foundation
import Steps
import Stories
import Store
import Testing
@testable import Workflow

/// `storyloom export` (a tidy table for pandas) and the step graph (`plan --format dot|mermaid`, the report).
@Suite struct ExportAndGraphTests {
    let yaml = chainWorkflow + """

          - id: broken
            use: command
            inputs: {text: text}
            params: {run: ["false"]}
        """

    func ran() async throws -> (Scratch, ProjectStore, Plan) {
        let s = try Scratch()
        try s.writeStories(3) { entries in entries[0].panels[0].text = "Commas, and \"quotes\"" }
        try s.writeWorkflow(yaml)
        let store = try s.openStore()
        try await s.run(store: store)
        return (s, store, try s.plan(store: store))
    }

    @Test func jsonlHasOneRowPerItemWithStatusAndOutputs() async throws {
        let (s, store, plan) = try await ran()
        let out = s.root.appendingPathComponent("exports/all.jsonl")
        try ResultExport(plan: plan, store: store).write(format: .jsonl, to: out)
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == plan.steps.reduce(0) { $0 + $1.items.count })
        let rows = try lines.map { try JSONDecoder().decode([String: JSONValue].self, from: Data($0.utf8)) }
        let upper = try #require(rows.first { $0["item"] == .string("s1#1") && $0["step"] == .string("upper") })
        #expect(upper["text"] == .string("<Commas, and \"quotes\">"))
        #expect(upper["panel"] == .number(1) && upper["entry"] == .string("s1") && upper["status"] == .string("ok"))
        let final = try #require(rows.first { $0["item"] == .string("s2") && $0["step"] == .string("final") })
        #expect(final["panel"] == .null)
        let broken = rows.filter { $0["step"] == .string("broken") }
        #expect(broken.count == 9 && broken.allSatisfy { $0["status"] == .string("failed") && $0["error"]?.stringValue?.isEmpty == false })
    }

    @Test func csvQuotesAndSelectsColumns() async throws {
        let (_, store, plan) = try await ran()
        let (header, rows) = try ResultExport(plan: plan, store: store).rows(columns: ["upper.text"], relativeTo: URL(fileURLWithPath: "/"))
        #expect(header == ResultExport.idColumns + ["text"])
        #expect(rows.count == 9)
        #expect(ResultExport.csvField(ResultExport.csvText(rows[0]["text"])) == "\"<Commas, and \"\"quotes\"\">\"")
        #expect(throws: StepError.self) { _ = try ResultExport(plan: plan, store: store).rows(columns: ["uper"], relativeTo: URL(fileURLWithPath: "/")) }
        do {
            _ = try ResultExport(plan: plan, store: store).rows(columns: ["upper.txt"], relativeTo: URL(fileURLWithPath: "/"))
        } catch {
            #expect("\(error)".contains("did you mean \"text\""))
        }
    }

    @Test func mediaPathsAreRelativeToTheOutput() {
        let file = URL(fileURLWithPath: "/a/store/media/ab/ab12.png")
        #expect(ResultExport.relativePath(file, from: URL(fileURLWithPath: "/a/exports")) == "../store/media/ab/ab12.png")
        #expect(ResultExport.relativePath(file, from: URL(fileURLWithPath: "/a")) == "store/media/ab/ab12.png")
    }

    @Test func graphHasLayersEdgesAndCounts() async throws {
        let (_, store, plan) = try await ran()
        let graph = plan.graph
        let layer = Dictionary(graph.nodes.map { ($0.id, $0.layer) }, uniquingKeysWith: { a, _ in a })
        #expect(layer == ["upper": 0, "joined": 1, "final": 2, "independent": 0, "broken": 0])
        #expect(Set(graph.edges.map { "\($0.from)>\($0.to)" }) == ["upper>joined", "joined>final"])
        #expect(graph.dot.contains("\"upper\" -> \"joined\";"))
        #expect(graph.mermaid.contains("s0 --> s1") && graph.mermaid.hasPrefix("flowchart LR"))
        #expect(graph.nodes.first { $0.id == "upper" }?.cached == 9)
        // The report draws it: one box per step, with the run's counts.
        let document = try GalleryBuilder.document(plan: plan, store: store, summary: nil)
        #expect(document.report.graph?.nodes.map(\.id) == plan.steps.map(\.spec.id))
        #expect(document.report.graph?.edges.count == 2)
    }
}

/// The overall ETA's input: each step's pace in the workflow's previous finished run.
@Suite struct RunPaceTests {
    @Test func thePreviousFinishedRunGivesSecondsPerItem() async throws {
        let s = try Scratch()
        try s.writeStories(2)
        try s.writeWorkflow(chainWorkflow)
        let store = try s.openStore()
        #expect(try Executor(store: store).previousPace(workflow: "chain").isEmpty)
        try await s.run(store: store)
        // A run that never finished (killed) has no summary and is passed over.
        _ = try store.beginRun(workflow: "chain", specPath: s.workflowFile.path)
        let pace = try Executor(store: store).previousPace(workflow: "chain")
        #expect(Set(pace.keys) == ["upper", "joined", "final", "independent"])
        #expect(pace.values.allSatisfy { $0 >= 0 && $0.isFinite })
    }
}
