import ArgumentParser
import Bench
import Foundation
import Models
import Store
import Stories
import StoryWorld
import Workflow

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cache", abstract: "Inspect or clean the project store.",
                                                    subcommands: [Stats.self, GC.self, Check.self])

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts and sizes of stored results and media.")
        @OptionGroup var store: StoreOption
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let opened = try store.address().open()
            let s = try opened.stats()
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys]
                print(String(decoding: try e.encode(s), as: UTF8.self))
                return
            }
            print("store \(opened.location)")
            print("  results   \(s.results) (\(s.failedResults) failed)")
            for (k, n) in s.stepKinds.sorted(by: { $0.key < $1.key }) { print("    \(k): \(n)") }
            print("  vectors   \(s.vectors)")
            print("  media     \(s.mediaObjects) objects, \(ByteCountFormatter.string(fromByteCount: s.mediaBytes, countStyle: .file))")
            print("  database  \(ByteCountFormatter.string(fromByteCount: s.databaseBytes, countStyle: .file))")
            print("  runs      \(s.runs)")
            for (w, n) in s.workflows.sorted(by: { $0.key < $1.key }) { print("    workflow \(w): \(n) items tracked") }
        }
    }

    struct GC: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "gc", abstract: "Remove results and media that no workflow's latest run references.")
        @OptionGroup var store: StoreOption
        @Flag(help: "Only report what would be removed.") var dryRun = false

        func run() throws {
            let opened = try store.address().open()
            let lock = try opened.lockRuns(wait: false)
            let r = try opened.collectGarbage(dryRun: dryRun)
            withExtendedLifetime(lock) {}
            let verb = dryRun ? "would remove" : "removed"
            print("\(verb) \(r.results) results and \(r.mediaObjects) media objects (\(ByteCountFormatter.string(fromByteCount: r.mediaBytes, countStyle: .file)))\(dryRun ? "" : ", \(r.temporaries) temporary files")")
        }
    }
}

extension CacheCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the store for damage: SQLite's integrity check (a SQLite store), every media file against its hash; exits 1 when damaged.")
        @OptionGroup var store: StoreOption
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Delete damaged media files and forget the results that use damaged or missing ones, so the next run recomputes them.")
        var repair = false

        func run() throws {
            let address = try store.address()
            let report: StoreCheckReport
            switch address {
            case .sqlite(let root): report = try StoreCheck.run(storeRoot: root)
            case .postgres(let server, let media): report = try StoreCheck.run(store: PostgresStore(address: server, mediaFolder: media))
            }
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys]
                print(String(decoding: try e.encode(report), as: UTF8.self))
            } else {
                print(report)
            }
            guard report.damaged else { return }
            if repair && report.databaseIsSound {
                // Opened for writing only now, with the database found sound.
                let opened = try address.open()
                let lock = try opened.lockRuns(wait: false)
                let done = try opened.repairMedia(report)
                withExtendedLifetime(lock) {}
                if !json { print("repaired: removed \(done.filesRemoved) damaged media files, forgot \(done.resultsForgotten) results; the next run recomputes them") }
                return
            }
            throw ExitCode.failure
        }
    }
}

struct WorldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "world", abstract: "Generate a StoryWorld collection (deterministic from the seed).")
    @Option(help: "Output folder.") var output: String
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Number of 5-panel stories.") var stories: Int = 100
    @Option(help: "Number of dialogues.") var dialogues: Int = 50
    @Option(help: "Model-resolution image size.") var imageSize: Int = 64
    @Option(help: "Display image size (0 for none).") var displaySize: Int = 256
    @Flag(help: "Write text and scene graphs only, no images.") var noImages = false

    func run() throws {
        var options = WorldOptions(seed: seed, stories: stories, dialogues: dialogues)
        options.imageSize = imageSize
        options.displaySize = displaySize > 0 ? displaySize : nil
        options.renderImages = !noImages
        let summary = try StoryWorldGenerator.generate(options, into: UserPath.commandLine(output))
        print("wrote \(summary.stories) stories, \(summary.dialogues) dialogues and \(summary.images) images to \(summary.folder.path)")
    }
}

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "Inspect model folders.",
                                                    subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a model folder (clip, stable-diffusion, opt, gill) without running it: kind, tensors against what the code needs, memory.")
        @Argument(help: "The model folder.", completion: .directory) var path: String
        @Flag(help: "List every tensor, not only the problems.") var tensors = false

        func run() throws {
            let check = ModelCheck.run(URL(fileURLWithPath: path))
            print(check.report(tensors: tensors))
            if !check.ok { throw ExitCode.failure }
        }
    }
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks: Storyloom beside the PyTorch reference, as a ratio.",
                                                    subcommands: [CacheBenchCommand.self, ClipBenchCommand.self, SDBenchCommand.self, LLMBenchCommand.self, ConvBenchCommand.self, AttentionBenchCommand.self])
}

struct CacheBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cache", abstract: "Plan, first run and no-op rerun of a large cheap workflow.")
    @Option(help: "Stories in the workflow.") var stories: Int = 10_000
    @Option(help: "Also measure a PostgreSQL store on this server: postgresql://USER@HOST:PORT/DATABASE (a scratch database is created there and dropped).")
    var postgres: String?
    @Flag(help: "Print {\"rows\":[…]}.") var json = false
    @Option(help: "local, or slurm: the same workflow also on Slurm beside the local run.") var executor: RunCommand.ExecutorKind = .local
    @Option(help: "Slurm: shards per stage.") var shards: Int = 4
    @Option(help: "Slurm: array tasks running at once.") var maxParallel: Int?
    @Option(help: "Slurm: the partition.") var partition: String?

    func run() async throws {
        let slurm = executor == .slurm ? try SlurmOptions(shards: shards, maxParallel: maxParallel, partition: partition) : nil
        let report = try await CacheBench.run(stories: stories, postgres: try postgres.map { try PostgresAddress(url: $0) }, slurm: slurm)
        print(json ? try report.json() : report.table())
    }
}

/// Options every model benchmark takes.
struct ModelBenchOptions: ParsableArguments {
    @Option(help: "Threads for both sides (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Fewer repetitions.") var quick = false
    @Flag(help: "Print {\"rows\":[…]}.") var json = false

    func print(_ report: BenchReport) throws {
        Swift.print(json ? try report.json() : report.table())
    }
}

struct ClipBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clip", abstract: "ViT-B/32 and ViT-L/14 vision towers (random weights) beside PyTorch.")
    @OptionGroup var options: ModelBenchOptions
    func run() async throws { try options.print(try ClipBench.run(threads: options.threads, quick: options.quick)) }
}

struct SDBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sd", abstract: "SD v1.5 UNet step and VAE decode (random weights) and the StoryWorld UNet beside diffusers; --quick times each row once.")
    @OptionGroup var options: ModelBenchOptions
    @Flag(help: "Only the StoryWorld UNet row (Examples/StoryWorld/models/sd, 16×16 latents, batch 2): seconds instead of minutes.")
    var storyworldOnly = false
    func run() async throws {
        try options.print(try SDBench.run(threads: options.threads, quick: options.quick, storyWorldOnly: storyworldOnly))
    }
}

struct ConvBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conv", abstract: "3×3 convolutions of SD and StoryWorld shapes: Winograd F(2×2, 3×3) beside im2col + sgemm.")
    @OptionGroup var options: ModelBenchOptions
    func run() async throws { try options.print(try ConvBench.run(threads: options.threads, quick: options.quick)) }
}

struct AttentionBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attention", abstract: "Attention of SD and StoryWorld shapes: the fused kernels beside sgemm + softmax + sgemm.")
    @OptionGroup var options: ModelBenchOptions
    func run() async throws { try options.print(try AttentionBench.run(threads: options.threads, quick: options.quick)) }
}

struct LLMBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "llm", abstract: "OPT-125m and OPT-1.3b prefill and cached decode (random weights, float32 and f16) beside transformers; --opt-6.7b adds OPT-6.7B in bf16.")
    @OptionGroup var options: ModelBenchOptions
    @Flag(name: .customLong("opt-6.7b"), help: "Add OPT-6.7B-shaped bf16 rows beside PyTorch bf16 (random weights in memory; ~14 GB per side, one side at a time).")
    var large = false
    func run() async throws { try options.print(try LLMBench.run(threads: options.threads, quick: options.quick, large: large)) }
}
