import ArgumentParser
import Foundation
import Steps
import Stories
import Tensor
import Workflow

/// The `storyloom` command line: argument parsing only; the work happens in the library targets.
/// The process starts in ``StoryloomMain``.
struct Storyloom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storyloom",
        abstract: "Run GILL-style multimodal story workflows with per-item caching and static galleries.",
        subcommands: [RunCommand.self, PlanCommand.self, ExplainCommand.self, GalleryCommand.self,
                      CacheCommand.self, WorldCommand.self, StepsCommand.self, BenchCommand.self, ModelsCommand.self,
                      DoctorCommand.self])
}

/// Options shared by the commands that open a workflow.
struct WorkflowOptions: ParsableArguments {
    @Argument(help: "The workflow YAML file.", completion: .file(extensions: ["yaml", "yml"]))
    var workflow: String

    @Option(name: .customLong("set"), help: "Override a step param: STEP.PARAM=VALUE, or *.PARAM=VALUE for every step that has PARAM (repeatable).")
    var overrides: [String] = []

    @Option(help: "The project store folder (default: the workflow's store: key, else ./Output/store).")
    var store: String?
}

struct StoreOption: ParsableArguments {
    @Option(help: "The project store folder (default: ./Output/store).")
    var store: String = "Output/store"
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

    func run() async throws {
        let code = try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            if let threads { Threads.set(threads) }
            return try await session.recoveringDamage {
                let summary = try await session.run(.init(jobs: jobs, batchSize: batchSize, wait: wait, gallery: !noGallery,
                                                          progress: ProgressReporter(quiet: quiet || json), handleSignals: true))
                print(json ? try summary.json() : summary.text)
                return summary.exitStatus
            }
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Show, per step, how many items are new, stale (and why) or cached.")
    @OptionGroup var options: WorkflowOptions
    @Flag(help: "Print {\"steps\":[{\"id\":…,\"new\":…,\"stale\":…,\"cached\":…}]}.") var json = false

    func run() async throws {
        try await reportingErrors {
            let session = try options.session(registry: StandardSteps.registry)
            try await session.recoveringDamage {
                let plan = try session.makePlan()
                print(json ? try plan.json() : plan.text)
            }
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
