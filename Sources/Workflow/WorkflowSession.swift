import Foundation
import Gallery
import Store
#if canImport(Glibc)
import Glibc
#endif

/// A workflow opened against its store: the one path of `run`, `plan`, `explain` and `gallery`, also what
/// `bench cache` and the tests call, so that what they measure and check is what a user runs.
public struct WorkflowSession {
    public internal(set) var spec: WorkflowSpec
    public let store: ProjectStore
    public let registry: StepRegistry

    /// - Parameters:
    ///   - overrides: `STEP.PARAM=VALUE` from `--set`.
    ///   - storeRoot: `--store`, resolved by the caller; otherwise ``WorkflowSpec/storeRoot(commandLine:)``.
    public init(file: URL, overrides: [String] = [], storeRoot: URL? = nil, registry: StepRegistry) throws {
        self.registry = registry
        spec = try SpecParser(registry: registry).parse(file: file, overrides: overrides)
        let root = storeRoot ?? spec.storeRoot(commandLine: nil)
        do { store = try ProjectStore(root: root.standardizedFileURL) }
        catch { throw StoreDamage.explained(error, storeRoot: root) }
    }

    /// Runs `body` on this session's store; when SQLite finds the database damaged, the error says which
    /// file, how to see what is damaged and how to recover.
    public func recoveringDamage<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw StoreDamage.explained(error, storeRoot: store.root) }
    }

    public func makePlan(explainStale: Bool = true) throws -> Plan {
        let collection = try CollectionLoader.load(spec, storeRoot: store.root)
        let models = try ModelResolver.resolve(spec, store: store)
        return try Planner(registry: registry, store: store).plan(spec, collection: collection, models: models,
                                                                 explainStale: explainStale)
    }

    /// `<store>/../galleries/<workflow>`.
    public var galleryFolder: URL {
        store.root.deletingLastPathComponent().appendingPathComponent("galleries").appendingPathComponent(Self.folderName(spec.name))
    }

    /// A workflow name as a folder name: letters, digits, - and _ kept, anything else `_`.
    static func folderName(_ s: String) -> String {
        let cleaned = String(s.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" })
        return cleaned.isEmpty ? "workflow" : cleaned
    }

    /// How a run is carried out.
    public struct RunRequest: Sendable {
        public var jobs: Int
        /// Overrides every step's batch size.
        public var batchSize: Int?
        /// Wait for another run on the same store instead of refusing.
        public var wait: Bool
        public var gallery: Bool
        public var progress: ProgressReporter
        /// Whether Ctrl-C (SIGINT) and SIGTERM interrupt the run (the command line); off in libraries and tests.
        public var handleSignals: Bool

        public init(jobs: Int = 1, batchSize: Int? = nil, wait: Bool = false, gallery: Bool = true,
                    progress: ProgressReporter = ProgressReporter(quiet: true), handleSignals: Bool = false) {
            self.jobs = jobs
            self.batchSize = batchSize
            self.wait = wait
            self.gallery = gallery
            self.progress = progress
            self.handleSignals = handleSignals
        }
    }

    /// Locks the store, plans, runs the stale items, renders the gallery. The first SIGINT finishes the
    /// batches in flight (committed; the next run continues), a second stops at once.
    public func run(_ request: RunRequest) async throws -> RunSummary {
        let lock = try StoreLock(storeRoot: store.root, wait: request.wait)
        defer { withExtendedLifetime(lock) {} }
        let plan = try makePlan(explainStale: false)
        let cancellation = CancellationFlag()
        let progress = request.progress
        let signals = request.handleSignals ? SignalWatcher { count in
            if count == 1 {
                progress.note("interrupt: finishing the batches in flight; press Ctrl-C again to stop at once")
                cancellation.cancel()
            } else {
                exit(130)
            }
        } : nil
        let options = RunOptions(jobs: request.jobs, progress: progress, cancellation: cancellation, batchSize: request.batchSize)
        var summary = try await Executor(store: store).run(plan, options: options)
        signals?.stop()
        if request.gallery {
            summary.gallery = try renderGallery(plan: plan, summary: summary, output: nil).path
        }
        return summary
    }

    /// Re-renders the gallery from stored results and the latest run's summary.
    public func renderGallery(output: URL?) throws -> URL {
        let plan = try makePlan(explainStale: false)
        let summary = try store.latestRun(workflow: spec.name)?.summary.flatMap { try? OutputCoding.decoder.decode(RunSummary.self, from: $0) }
        return try renderGallery(plan: plan, summary: summary, output: output)
    }

    func renderGallery(plan: Plan, summary: RunSummary?, output: URL?) throws -> URL {
        let document = try GalleryBuilder.document(plan: plan, store: store, summary: summary)
        return try GalleryWriter.write(document, to: output ?? galleryFolder)
    }

    public func explain(step: String, item: String) throws -> String {
        try Explainer.explain(plan: try makePlan(explainStale: false), stepID: step, itemID: item, store: store)
    }
}

extension RunSummary {
    /// The process exit status of a run: 0 ok, 1 some items failed, 130 interrupted.
    public var exitStatus: Int32 {
        switch status {
        case "ok": return 0
        case "interrupted": return 130
        default: return 1
        }
    }

    /// What `storyloom run --json` prints (dates in ISO 8601).
    public func json() throws -> String {
        let encoder = OutputCoding.encoder
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// What `storyloom run` prints.
    public var text: String {
        var lines = ["run \(runID) of \(workflow): \(status) in \(String(format: "%.2f", seconds)) s"]
        for step in steps {
            lines.append("  \(step.id.padding(toLength: 14, withPad: " ", startingAt: 0)) ran \(step.ran), cached \(step.cached), failed \(step.failed)  (\(String(format: "%.2f", step.seconds)) s)")
            for score in step.scores where score.n > 0 {
                lines.append("      \(score.name): mean \(String(format: "%.4f", score.mean)) ± \(String(format: "%.4f", score.ci95)) (95%, n=\(score.n))")
            }
            for e in step.errors.prefix(3) { lines.append("      failed \(e.item): \(e.error)") }
            if step.errors.count > 3 { lines.append("      … \(step.failed - 3) more failures (see the gallery's report)") }
        }
        if let g = gallery { lines.append("gallery: \(g)") }
        return lines.joined(separator: "\n")
    }
}

extension Plan {
    /// Stale reasons with their counts, per step.
    public static func reasons(_ s: StepPlan) -> [String: Int] {
        var out: [String: Int] = [:]
        for item in s.items { if case .stale(let rs) = item.status { for r in rs { out[r, default: 0] += 1 } } }
        return out
    }

    /// What `storyloom plan` prints.
    public var text: String {
        var lines = ["workflow \(spec.name): \(collection.entries.count) entries from \(collection.root.path)"]
        for s in steps {
            let c = s.counts
            lines.append("  \(s.spec.id.padding(toLength: 14, withPad: " ", startingAt: 0)) \(s.kind.name.padding(toLength: 10, withPad: " ", startingAt: 0)) new \(c.new), stale \(c.stale), cached \(c.cached)")
            for (reason, n) in Self.reasons(s).sorted(by: { $0.value > $1.value }).prefix(6) {
                lines.append("      \(n) × \(reason)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// What `storyloom plan --json` prints.
    public func json() throws -> String {
        struct Row: Codable { var id: String; var kind: String; var new: Int; var stale: Int; var cached: Int; var reasons: [String: Int] }
        struct Out: Codable { var workflow: String; var steps: [Row] }
        let rows = steps.map { s -> Row in
            let c = s.counts
            return Row(id: s.spec.id, kind: s.kind.name, new: c.new, stale: c.stale, cached: c.cached, reasons: Self.reasons(s))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(Out(workflow: spec.name, steps: rows)), as: UTF8.self)
    }
}

/// Calls back on SIGINT/SIGTERM with the count of signals so far.
final class SignalWatcher: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var count = 0

    init(_ handler: @escaping @Sendable (Int) -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                let n = lock.withLock { count += 1; return count }
                handler(n)
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        for s in sources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
