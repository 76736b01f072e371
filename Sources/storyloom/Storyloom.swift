import ArgumentParser
import Foundation
import Gallery
import Steps
import Store
import Stories
import Tensor
import Workflow

/// The `storyloom` command line: argument parsing only; the work happens in the library targets.
/// The process starts in ``StoryloomMain``.
struct Storyloom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storyloom",
        abstract: "Run GILL-style multimodal story workflows with per-item caching and static galleries.",
        subcommands: [RunCommand.self, WorkCommand.self, PlanCommand.self, ExplainCommand.self, GalleryCommand.self, CompareCommand.self, ExportCommand.self,
                      CacheCommand.self, WorldCommand.self, StepsCommand.self, BenchCommand.self, ModelsCommand.self,
                      DoctorCommand.self])
}

/// Options shared by the commands that open a workflow.
struct WorkflowOptions: ParsableArguments {
    @Argument(help: "The workflow YAML file.", completion: .file(extensions: ["yaml", "yml"]))
    var workflow: String

    @Option(name: .customLong("set"), help: "Override a step param: STEP.PARAM=VALUE, or *.PARAM=VALUE for every step that has PARAM (repeatable).")
    var overrides: [String] = []

    @Option(help: "The project store: a folder (SQLite), or postgresql://USER@HOST:PORT/DATABASE (default: the workflow's store: key, else ./Output/store).")
    var store: String?

    @Option(help: "With a PostgreSQL store: the folder every node sees for its media (default: the workflow's media: key, else $STORYLOOM_MEDIA).")
    var media: String?
}

struct StoreOption: ParsableArguments {
    @Option(help: "The project store: a folder (SQLite), or postgresql://USER@HOST:PORT/DATABASE (default: ./Output/store).")
    var store: String = "Output/store"

    @Option(help: "With a PostgreSQL store: the folder every node sees for its media (default: $STORYLOOM_MEDIA).")
    var media: String?

    /// The store these options name.
    func address(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StoreAddress {
        guard StoreAddress.isPostgresURL(store) else {
            if media != nil { throw CLIError("error: --media names a PostgreSQL store's shared media folder; a SQLite store keeps its media in \(store)/media") }
            return .sqlite(folder: UserPath.commandLine(store))
        }
        let address = try PostgresAddress(url: store, environment: environment)
        guard let folder = media ?? environment[WorkflowSpec.mediaVariable].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw CLIError("error: the store \(address) is a PostgreSQL database: give its shared media folder with --media DIR or \(WorkflowSpec.mediaVariable)=DIR")
        }
        return .postgres(address, mediaFolder: UserPath.commandLine(folder))
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the stale items of a workflow and render its gallery.")

    @OptionGroup var options: WorkflowOptions
    @Option(help: "Batches in flight at once.") var jobs: Int = 1
    @Option(help: "Threads for model math (default: all cores).") var threads: Int?
    @Option(help: "Items per batch for every step (default: each step's own).") var batchSize: Int?
    @Flag(help: "Wait for another run on the same store to finish instead of refusing.") var wait = false
    @Flag(help: "Print the run summary as JSON.") var json = false
    @Flag(help: "Do not render the gallery.") var noGallery = false
    @Flag(help: "No progress output.") var quiet = false
    @Option(help: "local (this process) or slurm (one sbatch array job per stage; see --shards).") var executor: ExecutorKind = .local
    @Option(help: "Slurm: shards per stage, N (array task i runs shard i of N).") var shards: Int?
    @Option(help: "Slurm: array tasks of a stage running at once (--array=…%K).") var maxParallel: Int?
    @Option(help: "Slurm: the partition to submit to.") var partition: String?
    @Option(name: .customLong("sbatch-arg"), help: "Slurm: an extra sbatch argument, e.g. --sbatch-arg=--time=1:00:00 (repeatable).") var sbatchArgs: [String] = []
    @Option(help: "Slurm: resubmissions of failed array tasks per stage.") var retries: Int = 2

    enum ExecutorKind: String, ExpressibleByArgument, CaseIterable { case local, slurm }

    func validate() throws {
        if executor == .local && (shards != nil || maxParallel != nil || partition != nil || !sbatchArgs.isEmpty) {
            throw ValidationError("--shards, --max-parallel, --partition and --sbatch-arg go with --executor slurm")
        }
        if executor == .slurm && shards == nil { throw ValidationError("--executor slurm needs --shards N") }
    }

    func run() async throws {
        let code = try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            if let threads { Threads.set(threads) }
            let slurm = try shards.map { try SlurmOptions(shards: $0, maxParallel: maxParallel, partition: partition, sbatchArguments: sbatchArgs, retries: retries) }
            return try await session.recoveringDamage {
                let summary = try await session.run(.init(jobs: jobs, batchSize: batchSize, wait: wait, gallery: !noGallery,
                                                          progress: ProgressReporter(quiet: quiet || json), handleSignals: true, slurm: slurm))
                print(json ? try summary.json() : summary.text)
                return summary.exitStatus
            }
        }
        if code != 0 { throw ExitCode(code) }
    }
}

/// One shard of one stage of a scale-out run: what each Slurm array task (or Kubernetes Indexed Job pod) runs.
struct WorkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work",
        abstract: "Run one shard of one stage of a scale-out run (started by `run --executor slurm`, or a Kubernetes Indexed Job).",
        discussion: """
            Reads the stage's plan that `run` wrote into the store folder, re-plans the workflow to check it is unchanged, runs             the items of shard i of N and commits them per batch. It takes no run lock: the coordinating `run` holds it.
            """)
    @Option(help: "The coordinating run's store: its folder (SQLite) or postgresql:// URL (the password from PGPASSWORD).") var store: String
    @Option(help: "A PostgreSQL store's shared media folder, where the run wrote the stage plans.") var media: String?
    @Option(name: .customLong("run"), help: "The coordinating run's id.") var runID: Int64
    @Option(help: "The stage (0-based).") var stage: Int
    @Option(help: "i/N, or N with i from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.") var shard: String
    @Option(help: "Threads for model math (default: all cores).") var threads: Int?
    @Option(help: "Batches in flight at once.") var jobs: Int = 1

    func run() async throws {
        try await reportingErrors {
            let started = Date()
            let spec = try ShardSpec.parse(shard)
            if let threads, threads > 0 { Threads.set(threads) }
            let (session, manifest) = try WorkflowSession.forWork(store: StoreOptions(store: store, media: media), runID: runID, stage: stage,
                                                                  registry: StandardSteps.registry)
            print("storyloom work: run \(runID) of \(manifest.workflow), stage \(stage) (\(manifest.steps.joined(separator: ", "))), shard \(spec)")
            try await session.recoveringDamage {
                let report = try await session.work(manifest: manifest, shard: spec,
                                                    options: RunOptions(jobs: jobs, progress: ProgressReporter(quiet: false, forceTTY: false)))
                try session.recordShard(report, manifest: manifest, shard: spec, started: started)
                print(report.text)
            }
        }
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Show, per step, how many items are new, stale (and why) or cached.")
    @OptionGroup var options: WorkflowOptions
    @Flag(help: "Print {\"steps\":[{\"id\":…,\"new\":…,\"stale\":…,\"cached\":…}]} (as --format json).") var json = false
    @Option(help: "text, json, dot (Graphviz) or mermaid: the step graph with per-step counts.") var format: PlanFormat = .text

    func run() async throws {
        try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            try await session.recoveringDamage {
                let plan = try session.makePlan()
                switch json ? .json : format {
                case .text: print(plan.text)
                case .json: print(try plan.json())
                case .dot: print(plan.graph.dot)
                case .mermaid: print(plan.graph.mermaid)
                }
            }
        }
    }
}

enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, dot, mermaid
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Stored results as a table for pandas: one row per item of each step (ids, texts, scores, decisions, media paths).")
    @OptionGroup var options: WorkflowOptions
    @Option(help: "jsonl or csv.") var format: ResultExport.Format = .jsonl
    @Option(parsing: .upToNextOption, help: "Steps or step outputs to export (STEP or STEP.OUTPUT; default: every output but embeddings).")
    var columns: [String] = []
    @Option(help: "The file to write (default: standard output); media paths are relative to its folder.") var output: String?

    func run() async throws {
        try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            try await session.recoveringDamage {
                let plan = try session.makePlan(explainStale: false)
                try ResultExport(plan: plan, store: session.store)
                    .write(format: format, columns: columns, to: output.map(UserPath.commandLine))
            }
        }
    }
}

extension ResultExport.Format: ExpressibleByArgument {}

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "A/B comparison: two variants of a workflow side by side, with the paired score difference per entry.",
        discussion: """
            Variants: --a/--b param overrides of one workflow; or --with another workflow file; or two score steps of one \
            workflow (--score STEP.OUTPUT --score-b OTHER.OUTPUT). Only what is not cached is computed.
            """)
    @Argument(help: "The workflow YAML file (variant A).", completion: .file(extensions: ["yaml", "yml"])) var workflow: String
    @Option(name: .customLong("a"), help: "A param override of variant A: STEP.PARAM=VALUE (repeatable).") var overridesA: [String] = []
    @Option(name: .customLong("b"), help: "A param override of variant B: STEP.PARAM=VALUE (repeatable).") var overridesB: [String] = []
    @Option(name: .customLong("with"), help: "Variant B's workflow file (default: the same file).") var other: String?
    @Option(help: "The score both are judged by: STEP.OUTPUT (a number per panel or entry).") var score: String
    @Option(help: "Variant B's score when it differs (two steps of one workflow).") var scoreB: String?
    @Option(parsing: .upToNextOption, help: "Outputs to show side by side (default: what the score steps read).") var show: [String] = []
    @Option(help: "Differences within this count as ties.") var tie: Double = 1e-6
    @Option(help: "The project store: a folder (SQLite), or postgresql://USER@HOST:PORT/DATABASE (default: the workflow's store: key, else ./Output/store).") var store: String?
    @Option(help: "With a PostgreSQL store: the folder every node sees for its media (default: the workflow's media: key, else $STORYLOOM_MEDIA).") var media: String?
    @Option(help: "Output folder (default: <store>/../galleries/<workflow>-compare).") var output: String?

    func run() async throws {
        try await reportingErrors {
            let fileA = UserPath.commandLine(workflow)
            let fileB = other.map(UserPath.commandLine) ?? fileA
            guard !(overridesA.isEmpty && overridesB.isEmpty && other == nil && (scoreB == nil || scoreB == score)) else {
                throw CLIError("error: the variants are the same: give --a/--b overrides, --with another workflow, or --score-b another score step")
            }
            func label(_ overrides: [String], _ file: URL, _ score: String) -> String {
                !overrides.isEmpty ? overrides.joined(separator: " ") : file != fileA ? file.lastPathComponent : score
            }
            let comparison = Comparison(
                a: .init(file: fileA, overrides: overridesA, score: score, label: label(overridesA, fileA, score)),
                b: .init(file: fileB, overrides: overridesB, score: scoreB ?? score, label: label(overridesB, fileB, scoreB ?? score)),
                store: StoreOptions(store: store, media: media), registry: StandardSteps.registry, tie: tie, show: show)
            let (document, summary, folder) = try await comparison.run(progress: ProgressReporter())
            let index = try GalleryWriter.write(document, to: output.map(UserPath.commandLine) ?? folder)
            print(summary.text)
            print("gallery: \(index.path)")
        }
    }
}

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "explain", abstract: "Explain why one item of one step is new, stale or cached.")
    @OptionGroup var options: WorkflowOptions
    @Argument(help: "The step id.") var step: String
    @Argument(help: "The item id (an entry id, or ENTRY#PANEL for panel steps).") var item: String

    func run() async throws {
        try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            try await session.recoveringDamage { print(try session.explain(step: step, item: item)) }
        }
    }
}

struct GalleryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gallery", abstract: "Render the workflow's gallery from stored results.")
    @OptionGroup var options: WorkflowOptions
    @Option(help: "Output folder (default: <store>/../galleries/<workflow>).") var output: String?

    func run() async throws {
        try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            let index = try await session.recoveringDamage { try session.renderGallery(output: output.map(UserPath.commandLine)) }
            print(index.path)
        }
    }
}

struct StepsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "steps", abstract: "List the step kinds with their params, inputs and outputs.")
    @Flag(help: "Print the README's step table (Markdown).") var markdown = false

    func run() throws {
        print(markdown ? StandardSteps.registry.catalogMarkdown : StandardSteps.registry.catalogText)
    }
}
