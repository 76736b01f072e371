import Foundation
import Store
#if canImport(Glibc)
import Glibc
#endif

/// How `run --executor slurm` spreads a run over a Slurm cluster.
public struct SlurmOptions: Sendable {
    /// N: every stage is cut into N shards of entries; array task i runs shard i.
    public var shards: Int
    /// K in `--array=…%K`: tasks of one stage running at once (nil: as many as Slurm allows).
    public var maxParallel: Int?
    public var partition: String?
    /// Extra `sbatch` arguments, passed as given (e.g. `--time=01:00:00`, `--mem=4G`).
    public var sbatchArguments: [String]
    /// Resubmissions of failed array indices per stage.
    public var retries: Int
    /// The `storyloom` executable the tasks run (default: this process's own).
    public var executable: URL
    /// squeue back-off: first and longest interval between controller queries, in seconds.
    public var poll: (first: Double, longest: Double)

    public init(shards: Int, maxParallel: Int? = nil, partition: String? = nil, sbatchArguments: [String] = [], retries: Int = 2,
                executable: URL? = nil, poll: (first: Double, longest: Double) = (1, 15)) throws {
        guard shards >= 1 else { throw StepError("--shards must be at least 1") }
        if let maxParallel, maxParallel < 1 { throw StepError("--max-parallel must be at least 1") }
        guard retries >= 0 else { throw StepError("--retries cannot be negative") }
        self.shards = shards
        self.maxParallel = maxParallel
        self.partition = partition
        self.sbatchArguments = sbatchArguments
        self.retries = retries
        self.executable = executable ?? Self.currentExecutable
        self.poll = poll
    }

    /// This process's executable, symbolic links resolved.
    public static var currentExecutable: URL {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    }
}

/// What a Slurm run submitted, per stage, and which array tasks failed for good.
public struct SlurmRunSummary: Codable, Sendable {
    public struct Job: Codable, Sendable {
        public var id: String
        public var indices: [Int]
    }
    public struct Stage: Codable, Sendable {
        public var stage: Int
        public var steps: [String]
        public var jobs: [Job]
        /// From the first submission to the last task seen finished.
        public var seconds: Double
        /// Seconds during which at least one task ran (the union of the tasks' own start–end intervals).
        public var taskSeconds: Double?
        /// `seconds − taskSeconds`: submission, scheduling (incl. gaps between waves of tasks) and polling.
        public var overheadSeconds: Double? { taskSeconds.map { max(0, seconds - $0) } }
    }
    public struct FailedTask: Codable, Sendable {
        public var stage: Int
        public var shard: Int
        public var job: String
        public var state: String
        public var log: String
    }
    public var shards: Int
    public var stages: [Stage]
    public var failedTasks: [FailedTask]
    /// Stages not submitted because an earlier one had failed tasks.
    public var skippedStages: [Int]
}

/// Written by a `work` task after its last commit (`stage-S-shard-i.done`): the coordinator's proof that the
/// task finished, with its figures.
struct ShardMarker: Codable {
    var job: String?
    var started: Date
    var finished: Date
    var steps: [StepSummary]

    static func url(folder: URL, stage: Int, shard: Int) -> URL {
        folder.appendingPathComponent("stage-\(stage)-shard-\(shard).done")
    }
}

extension WorkflowSession {
    /// Writes the task's marker (see ``ShardMarker``).
    public func recordShard(_ report: ShardReport, manifest: StageManifest, shard: ShardSpec, started: Date) throws {
        let marker = ShardMarker(job: ProcessInfo.processInfo.environment["SLURM_ARRAY_JOB_ID"], started: started, finished: Date(), steps: report.steps)
        let encoder = OutputCoding.encoder
        try encoder.encode(marker).write(to: ShardMarker.url(folder: StageManifest.folder(storeRoot: store.root, runID: manifest.runID),
                                                             stage: manifest.stage, shard: shard.index), options: .atomic)
    }
}

/// Job ids submitted so far, for `scancel` on Ctrl-C (read from the signal handler).
final class SubmittedJobs: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    func add(_ id: String) { lock.withLock { ids.append(id) } }
    var all: [String] { lock.withLock { ids } }
}

/// The coordinating side of `run --executor slurm`: plans were made locally; per stage it writes the stage's
/// manifest, submits one array job over the shards that have work, follows it (task markers in the store
/// folder every half second, `squeue` at a growing interval, then `sacct` until every index has a final
/// state), resubmits failed indices with N unchanged, and sums up from the tasks' markers.
struct SlurmCoordinator {
    let session: WorkflowSession
    let plan: Plan
    let options: SlurmOptions
    let progress: ProgressReporter
    let cancellation: CancellationFlag
    let submitted: SubmittedJobs
    let commands = SlurmCommands()

    var store: any ResultStore { session.store }

    func run() async throws -> RunSummary {
        let started = Date()
        let workflow = plan.spec.name
        let stages = Stages.split(plan)
        let byID = Dictionary(plan.steps.map { ($0.spec.id, $0) }, uniquingKeysWith: { a, _ in a })
        let labels = stages.enumerated().map { "stage \($0.offset + 1) (\($0.element.joined(separator: ", ")))" }
        let toRun = stages.map { $0.reduce(0) { $0 + (byID[$1].map { s in s.items.count - s.counts.cached } ?? 0) } }
        progress.begin(run: Array(zip(labels, toRun)).map { (id: $0.0, toRun: $0.1) })

        let runID = try store.beginRun(workflow: workflow, specPath: plan.spec.file.path)
        let folder = StageManifest.folder(storeRoot: store.root, runID: runID)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Items found cached under a new fingerprint only need their state rewritten; no task is needed.
        for step in plan.steps {
            let restored = step.items.filter { $0.status == .cached && $0.stateChanged }
            try store.saveStates(restored.map { ItemState(stepID: step.spec.id, itemID: $0.id, fingerprint: $0.fingerprint,
                                                           status: .ok, components: Data($0.components.utf8)) }, workflow: workflow)
        }

        let manifests = StageManifest.stages(of: plan, session: session, runID: runID, shards: options.shards)
        var record = SlurmRunSummary(shards: options.shards, stages: [], failedTasks: [], skippedStages: [])
        var markers: [Int: [Int: ShardMarker]] = [:]
        var interrupted = false
        for (s, stepIDs) in stages.enumerated() {
            if cancellation.isCancelled { interrupted = true; break }
            if !record.failedTasks.isEmpty { record.skippedStages.append(s); continue }
            let manifest = manifests[s]
            let indices = manifest.shardsWithWork(in: plan)
            progress.begin(step: labels[s], total: toRun[s], cached: stepIDs.reduce(0) { $0 + (byID[$1]?.counts.cached ?? 0) })
            guard !indices.isEmpty else { progress.end(); continue }
            try manifest.write(storeRoot: store.root)
            let outcome = try await runStage(manifest, indices: indices, folder: folder, label: labels[s], byID: byID)
            progress.end()
            record.stages.append(outcome.stage)
            record.failedTasks += outcome.failed
            markers[s] = outcome.markers
            if outcome.interrupted { interrupted = true; break }
        }

        // Figures per step from the tasks' markers; a task that ended without one (failed, cancelled) counts
        // the items it committed ok, read from the store.
        var byStep: [String: StepSummary] = [:]
        for (s, stepIDs) in stages.enumerated() {
            for id in stepIDs {
                let step = byID[id]!
                var summary = StepSummary(id: id, kind: step.kind.name, ran: 0, cached: step.counts.cached, failed: 0, seconds: 0, errors: [], scores: [])
                for marker in (markers[s] ?? [:]).values {
                    guard let part = marker.steps.first(where: { $0.id == id }) else { continue }
                    summary.ran += part.ran
                    summary.failed += part.failed
                    summary.seconds += part.seconds
                    summary.errors += part.errors.prefix(max(0, 50 - summary.errors.count))
                }
                byStep[id] = summary
            }
        }
        let unmarked = record.stages.map { stage in
            (stage.stage, Set(stage.jobs.flatMap(\.indices)).subtracting((markers[stage.stage] ?? [:]).keys))
        }.filter { !$0.1.isEmpty }
        if !unmarked.isEmpty {
            let states = try store.stateIndex(workflow: workflow)
            let assignment = ShardAssignment(entries: plan.entryCount, shards: options.shards)
            for (s, shards) in unmarked {
                for id in stages[s] {
                    let step = byID[id]!
                    let committed = step.items.filter { item in
                        item.status != .cached && shards.contains(assignment.shard(ofEntry: item.entryIndex))
                            && states[id]?[item.id].map { $0.fingerprint == item.fingerprint && $0.ok } == true
                    }
                    byStep[id]?.ran += committed.count
                }
            }
        }
        let summaries = plan.steps.compactMap { byStep[$0.spec.id] }
        if !interrupted && record.failedTasks.isEmpty {
            try store.pruneStates(workflow: workflow, keepSteps: Set(plan.steps.map(\.spec.id)))
            for step in plan.steps { try store.deleteStates(workflow: workflow, stepID: step.spec.id, itemIDs: step.orphans) }
        }
        let failed = !record.failedTasks.isEmpty || summaries.contains { $0.failed > 0 }
        var summary = RunSummary(runID: runID, workflow: workflow, status: interrupted ? "interrupted" : failed ? "failed" : "ok",
                                 seconds: Date().timeIntervalSince(started), steps: summaries, gallery: nil, startedAt: started)
        summary.slurm = record
        summary.steps = try ScoreCollector(store: store).addScores(to: summary.steps, plan: plan)
        try store.finishRun(id: runID, status: summary.status, summary: try OutputCoding.encoder.encode(summary))
        return summary
    }

    struct StageOutcome {
        var stage: SlurmRunSummary.Stage
        var failed: [SlurmRunSummary.FailedTask]
        var markers: [Int: ShardMarker]
        var interrupted: Bool
    }

    /// Submits the stage's array over `indices`, follows it, resubmits failed indices up to the retry limit.
    func runStage(_ manifest: StageManifest, indices: [Int], folder: URL, label: String, byID: [String: StepPlan]) async throws -> StageOutcome {
        let s = manifest.stage
        let script = folder.appendingPathComponent("stage-\(s).sh")
        try scriptText(manifest).write(to: script, atomically: true, encoding: .utf8)
        let name = "storyloom-\(WorkflowSession.folderName(manifest.workflow))-r\(manifest.runID)-s\(s)-\(UUID().uuidString.prefix(6).lowercased())"
        let started = Date()
        var record = SlurmRunSummary.Stage(stage: s, steps: manifest.steps, jobs: [], seconds: 0, taskSeconds: nil)
        var markers: [Int: ShardMarker] = [:]
        var pending = indices
        var attempt = 0
        // Items per shard, for progress: done when its marker exists.
        let assignment = ShardAssignment(entries: manifest.entryCount, shards: manifest.shards)
        var itemsPerShard: [Int: Int] = [:]
        for (step, items) in manifest.items {
            for id in items.keys { if let p = byID[step], let i = p.index[id] { itemsPerShard[assignment.shard(ofEntry: p.items[i].entryIndex), default: 0] += 1 } }
        }
        var reported = 0, reportedFailed = 0

        while true {
            for i in pending { try? FileManager.default.removeItem(at: ShardMarker.url(folder: folder, stage: s, shard: i)) }
            var args = ["--job-name", name, "--array", SlurmCommands.arraySpec(pending, maxParallel: options.maxParallel),
                        "--output", folder.appendingPathComponent("stage-\(s)-%A_%a.log").path]
            if let partition = options.partition { args += ["--partition", partition] }
            args += options.sbatchArguments
            let submittedAt = Date()
            let job = try commands.submit(script: script, arguments: args)
            submitted.add(job)
            record.jobs.append(.init(id: job, indices: pending))
            progress.note("[\(label)] submitted job \(job): shard\(pending.count == 1 ? "" : "s") \(SlurmCommands.arraySpec(pending, maxParallel: nil)) of \(manifest.shards)\(attempt > 0 ? " (retry \(attempt) of \(options.retries))" : "")")

            // Follow the job: markers often (a file check), the controller at a growing interval.
            var interval = options.poll.first
            var squeueFailures = 0
            var nextQuery = Date().addingTimeInterval(interval)
            while true {
                if cancellation.isCancelled {
                    commands.cancel(jobs: submitted.all)
                    record.seconds = Date().timeIntervalSince(started)
                    return StageOutcome(stage: record, failed: [], markers: markers, interrupted: true)
                }
                for i in pending where markers[i] == nil {
                    if let data = try? Data(contentsOf: ShardMarker.url(folder: folder, stage: s, shard: i)),
                       let m = try? OutputCoding.decoder.decode(ShardMarker.self, from: data) { markers[i] = m }
                }
                let finished = pending.filter { markers[$0] != nil }
                let failedItems = markers.values.reduce(0) { $0 + $1.steps.reduce(0) { $0 + $1.failed } }
                let doneItems = finished.reduce(0) { $0 + (itemsPerShard[$1] ?? 0) } + indices.filter { !pending.contains($0) }.reduce(0) { $0 + (itemsPerShard[$1] ?? 0) }
                if doneItems > reported { progress.advance(by: doneItems - reported, failed: max(0, failedItems - reportedFailed)); reported = doneItems; reportedFailed = failedItems }
                if finished.count == pending.count { break }
                if Date() >= nextQuery {
                    // A busy controller may time out now and then: keep following the markers, give up only
                    // when it has not answered for many intervals in a row.
                    do {
                        if try commands.queued(job: job) == nil { break }
                        squeueFailures = 0
                    } catch {
                        squeueFailures += 1
                        if squeueFailures >= 10 { throw error }
                        progress.note("[\(label)] \(error); asking again")
                    }
                    interval = min(options.poll.longest, interval * 1.5)
                    nextQuery = Date().addingTimeInterval(interval)
                }
                try? await Task.sleep(nanoseconds: 200_000_000)
            }

            // A marker is written after the task's last commit, so it proves the task's work is done. Tasks
            // without one failed: sacct says how (it lags the controller, so it is asked until every one of
            // them has a final state).
            // Read again: a task may have written its marker between the last read and squeue's answer.
            for i in pending where markers[i] == nil {
                if let data = try? Data(contentsOf: ShardMarker.url(folder: folder, stage: s, shard: i)),
                   let m = try? OutputCoding.decoder.decode(ShardMarker.self, from: data) { markers[i] = m }
            }
            let unfinished = pending.filter { markers[$0] == nil }
            let states = unfinished.isEmpty ? [:] : await finalStates(job: job, name: name, since: submittedAt, indices: unfinished)
            // Markers of `pending` were removed before submitting, so one present is this attempt's.
            let failed = unfinished
            if failed.isEmpty || attempt >= options.retries {
                record.seconds = Date().timeIntervalSince(started)
                let last = indices.compactMap { markers[$0] }
                if last.count == indices.count { record.taskSeconds = Self.covered(last.map { ($0.started, $0.finished) }) }
                let failures = failed.map { i in
                    SlurmRunSummary.FailedTask(stage: s, shard: i, job: "\(job)_\(i)",
                                               state: states[i].map { "\($0.state) (exit \($0.exit))" } ?? "ended without finishing its items",
                                               log: folder.appendingPathComponent("stage-\(s)-\(job)_\(i).log").path)
                }
                for i in failed { markers[i] = nil }
                return StageOutcome(stage: record, failed: failures, markers: markers, interrupted: false)
            }
            attempt += 1
            for i in failed { markers[i] = nil }
            pending = failed
        }
    }

    /// Seconds during which at least one task ran: the union of their intervals, so that the gaps between
    /// waves of tasks (more shards than CPUs) count as overhead, not as work.
    static func covered(_ intervals: [(Date, Date)]) -> Double {
        var total = 0.0
        var current: (Date, Date)?
        for (a, b) in intervals.sorted(by: { $0.0 < $1.0 }) {
            if let (ca, cb) = current, a <= cb { current = (ca, max(cb, b)); continue }
            if let (ca, cb) = current { total += cb.timeIntervalSince(ca) }
            current = (a, b)
        }
        if let (ca, cb) = current { total += cb.timeIntervalSince(ca) }
        return total
    }

    /// `sacct` states of the indices, retried while some are missing or not final (accounting lags).
    func finalStates(job: String, name: String, since: Date, indices: [Int]) async -> [Int: (state: String, exit: String)] {
        let final: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"]
        var states: [Int: (state: String, exit: String)] = [:]
        var wait = 0.25
        let deadline = Date().addingTimeInterval(60)
        while true {
            do { states = try commands.accounted(job: job, name: name, since: since) } catch {
                progress.note("sacct: \(error); judging job \(job) by its tasks' markers alone")
                return [:]
            }
            if indices.allSatisfy({ states[$0].map { final.contains($0.state) } ?? false }) { return states }
            if Date() > deadline || cancellation.isCancelled {
                progress.note("sacct has no final state for every task of job \(job) after 60 s; judging the rest by their markers")
                return states.filter { final.contains($0.value.state) }
            }
            try? await Task.sleep(nanoseconds: UInt64(wait * 1e9))
            wait = min(2, wait * 1.5)
        }
    }

    /// The batch script of one stage: every array task runs `storyloom work` on its shard, N written out
    /// (never read back from `SLURM_ARRAY_TASK_COUNT`, which is 1 on a resubmitted single index).
    func scriptText(_ manifest: StageManifest) -> String {
        func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        // A PostgreSQL store is named by its URL without the password (tasks read PGPASSWORD, which sbatch
        // passes on with the rest of the environment) and its shared media folder.
        let storeArguments = store is PostgresStore ? "--store \(quote(store.location)) --media \(quote(store.root.path))" : "--store \(quote(store.root.path))"
        return """
            #!/bin/sh
            # storyloom run \(manifest.runID) of \(manifest.workflow), stage \(manifest.stage): \(manifest.steps.joined(separator: ", ")).
            exec \(quote(options.executable.path)) work \(storeArguments) --run \(manifest.runID) --stage \(manifest.stage) \
            --shard "${SLURM_ARRAY_TASK_ID}/\(manifest.shards)" --threads "${SLURM_CPUS_PER_TASK:-1}"

            """
    }
}
