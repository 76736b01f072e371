import Foundation

/// Which entries a shard owns: contiguous ranges over the plan's entry order, computed from the entry
/// count and the shard count alone. It never depends on which items are stale nor on the scheduler's own
/// view of the array (a resubmitted `--array=2` reports `SLURM_ARRAY_TASK_COUNT=1`), so a rerun of one
/// failed index runs exactly the entries the first attempt owned.
public struct ShardAssignment: Sendable, Equatable {
    public let entries: Int
    public let shards: Int

    public init(entries: Int, shards: Int) {
        precondition(shards >= 1 && entries >= 0)
        self.entries = entries
        self.shards = shards
    }

    /// Entry indices of shard `i` (0-based): `[i·E/N, (i+1)·E/N)`; sizes differ by at most one.
    public func range(of shard: Int) -> Range<Int> {
        precondition(shard >= 0 && shard < shards)
        return shard * entries / shards ..< (shard + 1) * entries / shards
    }

    /// The shard owning entry `e`.
    public func shard(ofEntry e: Int) -> Int {
        precondition(e >= 0 && e < entries)
        // The largest i with ⌊i·E/N⌋ ≤ e, i.e. i·E < (e+1)·N.
        return min(shards - 1, ((e + 1) * shards - 1) / entries)
    }
}

/// `--shard i/N` of `storyloom work`: this task's index and the shard count.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw StepError("the shard count must be at least 1 (got \(count))") }
        guard index >= 0 && index < count else { throw StepError("shard index \(index) is outside 0..<\(count)") }
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }

    /// Parses `i/N`, or `/N` / a bare `N` with the index from the environment: `SLURM_ARRAY_TASK_ID` (Slurm)
    /// or `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job). The count always comes from the argument, never
    /// from `SLURM_ARRAY_TASK_COUNT`, which counts only the indices of the submission at hand.
    public static func parse(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let countText = parts.count == 2 ? parts[1] : parts.count == 1 ? parts[0] : ""
        guard let count = Int(countText) else { throw StepError("--shard wants i/N (e.g. 2/4) or N with the index from SLURM_ARRAY_TASK_ID; got \(text)") }
        var indexText = parts.count == 2 ? parts[0] : ""
        if indexText.isEmpty {
            guard let fromEnv = environment["SLURM_ARRAY_TASK_ID"] ?? environment["JOB_COMPLETION_INDEX"] else {
                throw StepError("--shard \(text) names no index and neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set")
            }
            indexText = fromEnv
        }
        guard let index = Int(indexText) else { throw StepError("shard index \(indexText) is not a number") }
        return try ShardSpec(index: index, count: count)
    }
}

/// Stages of a scale-out run: a stage ends where a step needs every item of an earlier step (an aggregate
/// input such as retrieve's pool), because no shard can start it before all shards finished that step.
/// Every other input reads the same entry, and a shard owns whole entries, so steps of one stage run
/// one after another inside each task.
public enum Stages {
    /// Step ids per stage, each stage's steps in the given (topological) order.
    public static func split(_ steps: [(spec: StepSpec, kind: StepKind)]) -> [[String]] {
        var stage: [String: Int] = [:]
        for (spec, kind) in steps {
            let aggregate = Set(kind.inputs.filter(\.aggregate).map(\.name))
            var s = 0
            for (name, ref) in spec.inputs {
                guard case .step(let id, _, _) = ref.source, let up = stage[id] else { continue }
                s = max(s, aggregate.contains(name) ? up + 1 : up)
            }
            stage[spec.id] = s
        }
        let count = (stage.values.max() ?? -1) + 1
        var out = [[String]](repeating: [], count: count)
        for (spec, _) in steps { out[stage[spec.id]!].append(spec.id) }
        return out
    }

    public static func split(_ plan: Plan) -> [[String]] {
        split(plan.steps.map { ($0.spec, $0.kind) })
    }
}
