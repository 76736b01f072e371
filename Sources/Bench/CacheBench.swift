import Foundation
import Steps
import Store
import StoryWorld
import Workflow

/// `storyloom bench cache`: plan, first run and no-op rerun of a large workflow of cheap steps over a
/// text-only StoryWorld set. There is no PyTorch counterpart, so the reference column stays empty.
public enum CacheBench {
    public static func run(stories: Int) async throws -> BenchReport {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("storyloom-bench-cache-\(UUID().uuidString)")
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: root) }

        var options = WorldOptions(seed: 1, stories: stories, dialogues: 0)
        options.renderImages = false
        options.displaySize = nil
        let t0 = Date()
        _ = try StoryWorldGenerator.generate(options, into: root.appendingPathComponent("world"))
        let generate = Date().timeIntervalSince(t0)

        let yaml = """
            name: bench-cache
            collection: world
            steps:
              - id: story_text
                use: template
                inputs: {texts: texts}
                params: {template: "{texts}"}
              - id: panel_text
                use: template
                scope: panel
                inputs: {text: text}
                params: {template: "{text}", lowercase: true}
              - id: prompt
                use: template
                inputs: {text: story_text}
                params: {template: "A picture story: {text}"}
              - id: panels_joined
                use: template
                inputs: {texts: panel_text}
                params: {template: "{texts}", separator: " / "}
              - id: final
                use: template
                inputs: {a: prompt, b: panels_joined}
                params: {template: "{a} | {b}"}
            """
        let file = root.appendingPathComponent("bench.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let session = try WorkflowSession(file: file, storeRoot: root.appendingPathComponent("store"),
                                          registry: StandardSteps.registry)
        var t = Date()
        let items = try session.makePlan(explainStale: false).steps.reduce(0) { $0 + $1.items.count }
        let planCold = Date().timeIntervalSince(t)
        t = Date()
        _ = try await session.run(.init(gallery: false))
        let firstRun = Date().timeIntervalSince(t)
        t = Date()
        let summary = try await session.run(.init(gallery: false))
        let noop = Date().timeIntervalSince(t)
        let ranAgain = summary.steps.reduce(0) { $0 + $1.ran }
        // The plan alone after the rerun: what the plan cache serves.
        t = Date()
        _ = try session.makePlan(explainStale: false)
        let planWarm = Date().timeIntervalSince(t)

        let rows = [
            BenchRow(name: "plan (cold store)", storyloom_s: planCold, reference_s: nil, extra: ["items/s": Double(items) / planCold]),
            BenchRow(name: "first run", storyloom_s: firstRun, reference_s: nil, extra: ["items/s": Double(items) / firstRun]),
            BenchRow(name: "no-op rerun (plan + run)", storyloom_s: noop, reference_s: nil, extra: ["items/s": Double(items) / noop]),
            BenchRow(name: "plan (unchanged, plan cache)", storyloom_s: planWarm, reference_s: nil, extra: ["items/s": Double(items) / planWarm]),
        ]
        return BenchReport(rows: rows, notes: [
            "\(stories) stories × 5 steps = \(items) items (4 steps per story, 1 per panel); world generated in \(String(format: "%.2f", generate)) s",
            "no-op rerun executed \(ranAgain) items (expected 0); no PyTorch counterpart for this benchmark",
            openBLASEnvironmentNote(),
        ])
    }
}
