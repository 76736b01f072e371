import Foundation
import Stories
import Store

/// Per-step figures of a run.
public struct StepSummary: Codable, Sendable {
    public var id: String
    public var kind: String
    public var ran: Int
    public var cached: Int
    public var failed: Int
    public var seconds: Double
    /// The first failures as (item, error).
    public var errors: [ItemFailure]
    /// Mean, 95% interval and n of each numeric output over the step's items (filled by the summary).
    public var scores: [ScoreSummary]
}

public struct ItemFailure: Codable, Sendable {
    public var item: String
    public var error: String
}

/// Mean with a normal-approximation 95% confidence interval.
public struct ScoreSummary: Codable, Sendable {
    public var name: String
    public var mean: Double
    public var ci95: Double
    public var n: Int

    public init(name: String, values: [Double]) {
        let finite = values.filter(\.isFinite)
        self.name = name
        n = finite.count
        mean = finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
        if finite.count > 1 {
            let m = mean
            let variance = finite.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(finite.count - 1)
            ci95 = 1.96 * (variance / Double(finite.count)).squareRoot()
        } else {
            ci95 = .nan
        }
    }
}

/// What `storyloom run` prints at the end (and `--json` as JSON).
public struct RunSummary: Codable, Sendable {
    public var runID: Int64
    public var workflow: String
    /// `ok`, `failed` (some items failed) or `interrupted`.
    public var status: String
    public var seconds: Double
    public var steps: [StepSummary]
    public var gallery: String?
    public var startedAt: Date
    /// Set by a Slurm run: its jobs per stage and the array tasks that failed (absent for a local run).
    public var slurm: SlurmRunSummary? = nil
}

/// Options of one run.
public struct RunOptions: Sendable {
    /// Batches in flight at once.
    public var jobs: Int
    public var progress: ProgressReporter
    public var cancellation: CancellationFlag
    /// Overrides every step's batch size (mostly for tests).
    public var batchSize: Int?

    public init(jobs: Int = 1, progress: ProgressReporter = ProgressReporter(quiet: true),
                cancellation: CancellationFlag = CancellationFlag(), batchSize: Int? = nil) {
        self.jobs = max(1, jobs)
        self.progress = progress
        self.cancellation = cancellation
        self.batchSize = batchSize
    }
}

/// Runs the stale items of a plan in batches, committing each batch's results in one transaction, so
/// an interruption loses at most the batches in flight. A failing item is recorded and the others go on.
public struct Executor: Sendable {
    public var store: any ResultStore

    public init(store: any ResultStore) {
        self.store = store
    }

    public func run(_ plan: Plan, options: RunOptions) async throws -> RunSummary {
        let started = Date()
        // Before this run is recorded: the pace of the previous one.
        options.progress.begin(run: plan.steps.map { ($0.spec.id, $0.items.count - $0.counts.cached) },
                               secondsPerItem: try previousPace(workflow: plan.spec.name))
        let runID = try store.beginRun(workflow: plan.spec.name, specPath: plan.spec.file.path)
        var summaries: [StepSummary] = []
        var interrupted = false
        var resolved: [String: StepPlan] = [:]

        for step in plan.steps {
            resolved[step.spec.id] = step
            if interrupted || options.cancellation.isCancelled {
                interrupted = true
                break
            }
            let summary = try await runStep(step, plan: plan, steps: resolved, runID: runID, options: options)
            summaries.append(summary)
            if options.cancellation.isCancelled { interrupted = true }
        }
        if !interrupted {
            try store.pruneStates(workflow: plan.spec.name, keepSteps: Set(plan.steps.map(\.spec.id)))
            for step in plan.steps { try store.deleteStates(workflow: plan.spec.name, stepID: step.spec.id, itemIDs: step.orphans) }
        }
        let failed = summaries.contains { $0.failed > 0 }
        var summary = RunSummary(runID: runID, workflow: plan.spec.name,
                                 status: interrupted ? "interrupted" : failed ? "failed" : "ok",
                                 seconds: Date().timeIntervalSince(started), steps: summaries, gallery: nil, startedAt: started)
        summary.steps = try ScoreCollector(store: store).addScores(to: summary.steps, plan: plan)
        try store.finishRun(id: runID, status: summary.status, summary: try OutputCoding.encoder.encode(summary))
        return summary
    }

    /// Runs the listed steps of `plan` in order, as `run` does, without recording a run of its own: what one
    /// `storyloom work` task does with the items of its shard (the plan marks every other item cached).
    public func runSteps(_ stepIDs: [String], of plan: Plan, runID: Int64, options: RunOptions) async throws -> [StepSummary] {
        var resolved: [String: StepPlan] = [:]
        var out: [StepSummary] = []
        let wanted = Set(stepIDs)
        for step in plan.steps {
            resolved[step.spec.id] = step
            guard wanted.contains(step.spec.id), !options.cancellation.isCancelled else { continue }
            out.append(try await runStep(step, plan: plan, steps: resolved, runID: runID, options: options))
        }
        return out
    }

    /// Seconds per item of each step that ran items in the workflow's latest run (for the overall ETA).
    func previousPace(workflow: String) throws -> [String: Double] {
        guard let data = try store.latestRun(workflow: workflow, finished: true)?.summary,
              let summary = try? OutputCoding.decoder.decode(RunSummary.self, from: data) else { return [:] }
        var out: [String: Double] = [:]
        for step in summary.steps where step.ran > 0 { out[step.id] = step.seconds / Double(step.ran) }
        return out
    }

    // MARK: One step

    func runStep(_ step: StepPlan, plan: Plan, steps: [String: StepPlan], runID: Int64,
                 options: RunOptions) async throws -> StepSummary {
        let t0 = Date()
        let workflow = plan.spec.name
        // Items found cached under a new fingerprint only need their state rewritten.
        let restored = step.items.filter { $0.status == .cached && $0.stateChanged }
        try store.saveStates(restored.map { ItemState(stepID: step.spec.id, itemID: $0.id, fingerprint: $0.fingerprint,
                                                       status: .ok, components: Data($0.components.utf8)) },
                             workflow: workflow)
        let toRun = step.items.filter { $0.status != .cached }
        let cachedCount = step.items.count - toRun.count
        options.progress.begin(step: step.spec.id, total: toRun.count, cached: cachedCount)
        guard !toRun.isEmpty else {
            return StepSummary(id: step.spec.id, kind: step.kind.name, ran: 0, cached: cachedCount, failed: 0,
                               seconds: Date().timeIntervalSince(t0), errors: [], scores: [])
        }

        let resolver = try InputResolver(plan: plan, steps: steps, store: store)
        let config = StepConfiguration(stepID: step.spec.id, kind: step.kind.name, params: step.params, model: step.model,
                                       collection: resolver.collection, workflowFolder: plan.spec.folder, media: store.media,
                                       allowOutsideRoot: plan.spec.collection.allowOutsideRoot)
        let runner: (any StepRunner)?
        let setupError: String?
        do {
            runner = try step.kind.makeRunner(config)
            setupError = nil
        } catch {
            runner = nil
            setupError = "step \(step.spec.id) could not start: \(error)"
        }
        let pools = try resolver.pools(for: step)
        let batchSize = options.batchSize ?? step.spec.batchSize ?? step.kind.defaultBatchSize
        let batches = stride(from: 0, to: toRun.count, by: batchSize).map { Array(toRun[$0..<min($0 + batchSize, toRun.count)]) }
        let services = StepServices(media: store.media, isCancelled: { options.cancellation.isCancelled },
                                  progress: { d, t in options.progress.inner(done: d, total: t) })

        var ran = 0, failed = 0
        var errors: [ItemFailure] = []
        var next = 0

        // Bounded concurrency: at most `jobs` batches in flight; results are committed as they arrive.
        try await withThrowingTaskGroup(of: BatchResult?.self) { group in
            func launch() throws {
                guard next < batches.count, !options.cancellation.isCancelled else { return }
                let batch = batches[next]
                next += 1
                let prepared = try resolver.items(for: batch, step: step, pools: pools)
                group.addTask {
                    try await Self.execute(batch: batch, prepared: prepared, runner: runner, setupError: setupError,
                                           step: step, services: services, cancellation: options.cancellation)
                }
            }
            for _ in 0..<options.jobs { try launch() }
            while let result = try await group.next() {
                guard let result else { continue }   // cancelled mid-batch: discarded, rerun next time
                try store.commit(results: result.results, states: result.states, workflow: workflow)
                for (item, message) in result.failures {
                    if errors.count < 50 { errors.append(ItemFailure(item: item, error: message)) }
                    try? store.logEvent(runID: runID, stepID: step.spec.id, itemID: item, kind: "item-failed", message: message)
                }
                ran += result.states.count
                failed += result.failures.count
                options.progress.advance(by: result.states.count, failed: result.failures.count)
                try launch()
            }
        }
        options.progress.end()
        return StepSummary(id: step.spec.id, kind: step.kind.name, ran: ran, cached: cachedCount, failed: failed,
                           seconds: Date().timeIntervalSince(t0), errors: errors, scores: [])
    }

    struct BatchResult: Sendable {
        var results: [StoredResult]
        var states: [ItemState]
        var failures: [(String, String)]
    }

    static func execute(batch: [PlannedItem], prepared: [Result<StepItem, StepError>], runner: (any StepRunner)?,
                        setupError: String?, step: StepPlan, services: StepServices,
                        cancellation: CancellationFlag) async throws -> BatchResult? {
        var outcomes = [ItemOutcome?](repeating: nil, count: batch.count)
        var runnable: [StepItem] = []
        var slots: [Int] = []
        for (i, p) in prepared.enumerated() {
            switch p {
            case .success(let item): runnable.append(item); slots.append(i)
            case .failure(let e): outcomes[i] = .failure(e.message)
            }
        }
        var seconds = 0.0
        if let setupError {
            for i in slots { outcomes[i] = .failure(setupError) }
        } else if let runner, !runnable.isEmpty {
            let t0 = Date()
            do {
                let results = try await runner.run(runnable, services: services)
                if cancellation.isCancelled { return nil }
                guard results.count == runnable.count else {
                    throw StepError("step returned \(results.count) results for \(runnable.count) items")
                }
                for (slot, outcome) in zip(slots, results) { outcomes[slot] = outcome }
            } catch is CancellationError {
                return nil
            } catch {
                if cancellation.isCancelled { return nil }
                for i in slots { outcomes[i] = .failure("\(error)") }
            }
            seconds = Date().timeIntervalSince(t0) / Double(max(1, runnable.count))
        }
        var result = BatchResult(results: [], states: [], failures: [])
        let encoder = OutputCoding.encoder
        for (item, outcome) in zip(batch, outcomes) {
            let components = Data(item.components.utf8)
            switch outcome {
            case .success(let outputs)?:
                var json: Outputs = [:]
                var vectors: [String: [Float]] = [:]
                var media: [(String, String)] = []
                for (name, value) in outputs {
                    if case .vector(let v) = value { vectors[name] = v } else { json[name] = value }
                    Self.collectMedia(value, into: &media)
                }
                let data: Data
                do { data = try encoder.encode(json) } catch {
                    result.results.append(StoredResult(fingerprint: item.fingerprint, stepKind: step.kind.name, status: .failed,
                                                       outputs: nil, error: "cannot encode outputs: \(error)", seconds: seconds))
                    result.states.append(ItemState(stepID: step.spec.id, itemID: item.id, fingerprint: item.fingerprint, status: .failed, components: components))
                    result.failures.append((item.id, "cannot encode outputs: \(error)"))
                    continue
                }
                result.results.append(StoredResult(fingerprint: item.fingerprint, stepKind: step.kind.name, status: .ok,
                                                   outputs: data, error: nil, seconds: seconds, vectors: vectors,
                                                   modelDigest: step.model?.digest, media: media))
                result.states.append(ItemState(stepID: step.spec.id, itemID: item.id, fingerprint: item.fingerprint, status: .ok, components: components))
            case .failure(let message)?:
                result.results.append(StoredResult(fingerprint: item.fingerprint, stepKind: step.kind.name, status: .failed,
                                                   outputs: nil, error: message, seconds: seconds))
                result.states.append(ItemState(stepID: step.spec.id, itemID: item.id, fingerprint: item.fingerprint, status: .failed, components: components))
                result.failures.append((item.id, message))
            case nil:
                result.failures.append((item.id, "no result"))
            }
        }
        return result
    }

    static func collectMedia(_ value: Value, into media: inout [(String, String)]) {
        switch value {
        case .image(let ref) where ref.path == nil: media.append((ref.hash, ref.ext))
        case .list(let values): for v in values { collectMedia(v, into: &media) }
        default: break
        }
    }
}

extension StoredResult.Status: Codable {}
