import ArgumentParser
import Foundation
import Gallery
import Store
import Workflow
#if canImport(Glibc)
import Glibc
#endif

/// A workflow opened against its store: the shared path of run, plan, explain and gallery.
struct Session {
    let spec: WorkflowSpec
    let store: ProjectStore
    let registry: StepRegistry

    init(_ options: WorkflowOptions, registry: StepRegistry) throws {
        self.registry = registry
        let file = URL(fileURLWithPath: options.workflow)
        do {
            spec = try SpecParser(registry: registry).parse(file: file, overrides: options.overrides)
        } catch let e as WorkflowErrors {
            throw CLIError(e.description)
        }
        store = try ProjectStore(root: spec.storeRoot(commandLine: options.store))
    }

    func makePlan(explainStale: Bool = true) throws -> Plan {
        do {
            let collection = try CollectionLoader.load(spec, storeRoot: store.root)
            let models = try ModelResolver.resolve(spec, store: store)
            return try Planner(registry: registry, store: store).plan(spec, collection: collection, models: models,
                                                                     explainStale: explainStale)
        } catch let e as WorkflowErrors {
            throw CLIError(e.description)
        }
    }

    var galleryFolder: URL {
        store.root.deletingLastPathComponent().appendingPathComponent("galleries").appendingPathComponent(Self.safeName(spec.name))
    }

    static func safeName(_ s: String) -> String {
        let cleaned = String(s.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" })
        return cleaned.isEmpty ? "workflow" : cleaned
    }

    /// Runs the workflow; returns the exit code (0 ok, 1 some items failed, 130 interrupted).
    func run(jobs: Int, batchSize: Int?, wait: Bool, json: Bool, gallery: Bool, quiet: Bool) async throws -> Int32 {
        let lock = try StoreLock(storeRoot: store.root, wait: wait)
        let plan = try makePlan(explainStale: false)
        let cancellation = CancellationFlag()
        let progress = ProgressReporter(quiet: quiet || json)
        let signals = SignalWatcher { count in
            if count == 1 {
                progress.note("interrupt: finishing the batches in flight; press Ctrl-C again to stop at once")
                cancellation.cancel()
            } else {
                exit(130)
            }
        }
        let options = RunOptions(jobs: jobs, progress: progress, cancellation: cancellation, batchSize: batchSize)
        var summary = try await Executor(store: store).run(plan, options: options)
        signals.stop()
        if gallery {
            let index = try renderGallery(plan: plan, summary: summary, output: nil)
            summary.gallery = index.path
        }
        withExtendedLifetime(lock) {}
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            encoder.dateEncodingStrategy = .iso8601
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(Self.describe(summary))
        }
        switch summary.status {
        case "ok": return 0
        case "interrupted": return 130
        default: return 1
        }
    }

    static func describe(_ s: RunSummary) -> String {
        var lines = ["run \(s.runID) of \(s.workflow): \(s.status) in \(String(format: "%.2f", s.seconds)) s"]
        for step in s.steps {
            lines.append("  \(step.id.padding(toLength: 14, withPad: " ", startingAt: 0)) ran \(step.ran), cached \(step.cached), failed \(step.failed)  (\(String(format: "%.2f", step.seconds)) s)")
            for score in step.scores where score.n > 0 {
                lines.append("      \(score.name): mean \(String(format: "%.4f", score.mean)) ± \(String(format: "%.4f", score.ci95)) (95%, n=\(score.n))")
            }
            for e in step.errors.prefix(3) { lines.append("      failed \(e.item): \(e.error)") }
            if step.errors.count > 3 { lines.append("      … \(step.failed - 3) more failures (see the gallery's report)") }
        }
        if let g = s.gallery { lines.append("gallery: \(g)") }
        return lines.joined(separator: "\n")
    }

    func printPlan(json: Bool) throws {
        let plan = try makePlan()
        if json {
            struct Row: Codable { var id: String; var kind: String; var new: Int; var stale: Int; var cached: Int; var reasons: [String: Int] }
            struct Out: Codable { var workflow: String; var steps: [Row] }
            let rows = plan.steps.map { s -> Row in
                let c = s.counts
                return Row(id: s.spec.id, kind: s.kind.name, new: c.new, stale: c.stale, cached: c.cached, reasons: Self.reasons(s))
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(Out(workflow: plan.spec.name, steps: rows)), as: UTF8.self))
            return
        }
        print("workflow \(plan.spec.name): \(plan.collection.entries.count) entries from \(plan.collection.root.path)")
        for s in plan.steps {
            let c = s.counts
            print("  \(s.spec.id.padding(toLength: 14, withPad: " ", startingAt: 0)) \(s.kind.name.padding(toLength: 10, withPad: " ", startingAt: 0)) new \(c.new), stale \(c.stale), cached \(c.cached)")
            for (reason, n) in Self.reasons(s).sorted(by: { $0.value > $1.value }).prefix(6) {
                print("      \(n) × \(reason)")
            }
        }
    }

    static func reasons(_ s: StepPlan) -> [String: Int] {
        var out: [String: Int] = [:]
        for item in s.items { if case .stale(let rs) = item.status { for r in rs { out[r, default: 0] += 1 } } }
        return out
    }

    func explain(step: String, item: String) throws {
        let plan = try makePlan(explainStale: false)
        do { print(try Explainer.explain(plan: plan, stepID: step, itemID: item, store: store)) }
        catch let e as StepError { throw CLIError(e.message) }
    }

    func renderGallery(output: URL?) throws -> URL {
        let plan = try makePlan(explainStale: false)
        let latest = try store.latestRun(workflow: spec.name)
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let summary = latest?.summary.flatMap { try? decoder.decode(RunSummary.self, from: $0) }
        return try renderGallery(plan: plan, summary: summary, output: output)
    }

    func renderGallery(plan: Plan, summary: RunSummary?, output: URL?) throws -> URL {
        let document = try GalleryBuilder.document(plan: plan, store: store, summary: summary)
        return try GalleryWriter.write(document, to: output ?? galleryFolder)
    }
}

/// A message for the user, printed without a stack trace; exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// Runs a command body, printing user-facing errors (located workflow errors, store and collection
/// problems) as they are, without ArgumentParser's "Error:" prefix, and exiting 1.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CLIError {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode.failure
    } catch let error as CustomStringConvertible & Error {
        FileHandle.standardError.write(Data(("error: \(error.description)\n").utf8))
        throw ExitCode.failure
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
