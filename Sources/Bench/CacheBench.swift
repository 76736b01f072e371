import Foundation
import Steps
import Store
import StoryWorld
import Workflow

/// `storyloom bench cache`: plan, first run and no-op rerun of a large workflow of cheap steps over a
/// text-only StoryWorld set. There is no PyTorch counterpart, so the reference column stays empty.
/// With a PostgreSQL server, the same workflow runs again against a new database on it (dropped after),
/// and the PostgreSQL rows give their time as a multiple of SQLite's. With `slurm`, the same workflow over
/// the same stories also runs on Slurm (a store of its own) beside the local run.
public enum CacheBench {
    public static func run(stories: Int, postgres: PostgresAddress? = nil, slurm: SlurmOptions? = nil) async throws -> BenchReport {
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
        let sqlite = try await measure(session)
        let items = sqlite.items
        var rows = [
            BenchRow(name: "plan (cold store)", storyloom_s: sqlite.planCold, reference_s: nil, extra: ["items/s": Double(items) / sqlite.planCold]),
            BenchRow(name: "first run", storyloom_s: sqlite.firstRun, reference_s: nil, extra: ["items/s": Double(items) / sqlite.firstRun]),
            BenchRow(name: "no-op rerun (plan + run)", storyloom_s: sqlite.noop, reference_s: nil, extra: ["items/s": Double(items) / sqlite.noop]),
            BenchRow(name: "plan (unchanged, plan cache)", storyloom_s: sqlite.planWarm, reference_s: nil, extra: ["items/s": Double(items) / sqlite.planWarm]),
        ]
        var ranAgain = sqlite.ranAgain
        var postgresNote: [String] = []
        if let postgres {
            let name = "storyloom_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
            let address = try PostgresStore.createDatabase(String(name), server: postgres)
            defer { try? PostgresStore.dropDatabase(String(name), server: postgres) }
            let pg = try await measure(WorkflowSession(file: file, store: PostgresStore(address: address, mediaFolder: root.appendingPathComponent("pg-media")),
                                                       registry: StandardSteps.registry))
            ranAgain += pg.ranAgain
            func row(_ name: String, _ seconds: Double, _ sqliteSeconds: Double) -> BenchRow {
                BenchRow(name: name + ", PostgreSQL", storyloom_s: seconds, reference_s: nil,
                         extra: ["items/s": Double(items) / seconds, "× SQLite": seconds / sqliteSeconds])
            }
            rows += [
                row("first run", pg.firstRun, sqlite.firstRun),
                row("no-op rerun (plan + run)", pg.noop, sqlite.noop),
                row("plan (unchanged, plan cache)", pg.planWarm, sqlite.planWarm),
            ]
            postgresNote = ["PostgreSQL: \(postgres.host):\(postgres.port), a new database for this run (dropped after)"]
        }
        var slurmNote: [String] = []
        if let slurm {
            // The same file and world, another store: what the Slurm run computes is compared with nothing
            // local, so both start cold.
            let cluster = try WorkflowSession(file: file, storeRoot: root.appendingPathComponent("store-slurm"), registry: StandardSteps.registry)
            var t = Date()
            _ = try cluster.makePlan(explainStale: false)
            let clusterPlan = Date().timeIntervalSince(t)
            t = Date()
            let first = try await cluster.run(.init(gallery: false, slurm: slurm))
            let clusterFirst = Date().timeIntervalSince(t)
            guard first.status == "ok" else { throw BenchError("the Slurm run ended \(first.status): \(first.text)") }
            t = Date()
            let again = try await cluster.run(.init(gallery: false, slurm: slurm))
            let clusterNoop = Date().timeIntervalSince(t)
            let stages = first.slurm?.stages ?? []
            rows += [
                BenchRow(name: "slurm: plan (cold store)", storyloom_s: clusterPlan, reference_s: nil, extra: ["items/s": Double(items) / clusterPlan]),
                BenchRow(name: "slurm: first run, \(slurm.shards) shards", storyloom_s: clusterFirst, reference_s: nil, extra: ["items/s": Double(items) / clusterFirst]),
                BenchRow(name: "slurm: no-op rerun (plan, nothing submitted)", storyloom_s: clusterNoop, reference_s: nil, extra: ["items/s": Double(items) / clusterNoop]),
            ]
            for stage in stages {
                rows.append(BenchRow(name: "slurm: stage \(stage.stage + 1) submission overhead", storyloom_s: stage.overheadSeconds ?? .nan, reference_s: nil,
                                     extra: ["stage_s": stage.seconds, "tasks_s": stage.taskSeconds ?? .nan]))
            }
            slurmNote = ["slurm: \(stages.count) stage(s), jobs \(stages.flatMap(\.jobs).map(\.id).joined(separator: ", ")); overhead = stage wall time (sbatch to the last task seen done) − the time at least one task was running (from the tasks' own start and end); the no-op rerun submitted \(again.slurm == nil ? "nothing" : "jobs")"]
        }
        return BenchReport(rows: rows, notes: [
            "\(stories) stories × 5 steps = \(items) items (4 steps per story, 1 per panel); world generated in \(String(format: "%.2f", generate)) s",
            "no-op rerun executed \(ranAgain) items (expected 0); no PyTorch counterpart for this benchmark",
        ] + postgresNote + slurmNote + [openBLASEnvironmentNote()])
    }

    struct Timings {
        var items: Int
        var planCold: Double
        var firstRun: Double
        var noop: Double
        var planWarm: Double
        var ranAgain: Int
    }

    /// Plan on an empty store, first run, no-op rerun, and the plan alone after it (what the plan cache serves).
    static func measure(_ session: WorkflowSession) async throws -> Timings {
        var t = Date()
        let items = try session.makePlan(explainStale: false).steps.reduce(0) { $0 + $1.items.count }
        let planCold = Date().timeIntervalSince(t)
        t = Date()
        _ = try await session.run(.init(gallery: false))
        let firstRun = Date().timeIntervalSince(t)
        t = Date()
        let summary = try await session.run(.init(gallery: false))
        let noop = Date().timeIntervalSince(t)
        t = Date()
        _ = try session.makePlan(explainStale: false)
        let planWarm = Date().timeIntervalSince(t)
        return Timings(items: items, planCold: planCold, firstRun: firstRun, noop: noop, planWarm: planWarm,
                       ranAgain: summary.steps.reduce(0) { $0 + $1.ran })
    }
}
