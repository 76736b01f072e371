import Foundation

/// The project store as the workflow engine uses it: results by fingerprint, per-workflow item states,
/// runs and events, the plan cache and the generation it is keyed on, and content-addressed media files.
///
/// Two implementations: ``ProjectStore`` (SQLite in a local folder, the default) and ``PostgresStore``
/// (a PostgreSQL database that many nodes share, with media in a shared folder). Every write is safe to
/// repeat: results are keyed by fingerprint, so a second writer of the same result changes nothing.
public protocol ResultStore: AnyObject, Sendable {
    /// The folder for the store's files: media objects in `media/`, generated worlds in `worlds/`;
    /// galleries go to `galleries/` beside it.
    var root: URL { get }
    var media: MediaStore { get }
    /// Where the store is, for messages: a folder, or a PostgreSQL URL without its password.
    var location: String { get }

    /// Takes the store's run lock, held while the returned object lives: one `run` (or `cache gc`) at a
    /// time. With `wait`, blocks until it is free; otherwise fails at once, naming the holder.
    func lockRuns(wait: Bool) throws -> any RunLock

    // Results
    /// The subset of `fingerprints` that have a successful stored result.
    func okFingerprints(among fingerprints: [String]) throws -> Set<String>
    /// Stored results by fingerprint (vectors included).
    func results(for fingerprints: [String]) throws -> [String: StoredResult]
    /// Commits one batch atomically: results, their vectors and media references, and the workflow's item
    /// states for them.
    func commit(results: [StoredResult], states: [ItemState], workflow: String) throws
    /// Records item states without new results (items found cached under a new fingerprint).
    func saveStates(_ states: [ItemState], workflow: String) throws

    // Item states
    /// (fingerprint, status) of every item a workflow last computed, by step id then item id.
    func stateIndex(workflow: String) throws -> [String: [String: (fingerprint: String, ok: Bool)]]
    func state(workflow: String, stepID: String, itemID: String) throws -> ItemState?
    func components(workflow: String, stepID: String, itemIDs: [String]) throws -> [String: Data]
    /// Drops states of steps a workflow no longer has.
    func pruneStates(workflow: String, keepSteps: Set<String>) throws
    func deleteStates(workflow: String, stepID: String, itemIDs: [String]) throws

    // Runs and events
    func beginRun(workflow: String, specPath: String) throws -> Int64
    func finishRun(id: Int64, status: String, summary: Data?) throws
    /// The workflow's latest run; with `finished`, the latest that ended with a summary.
    func latestRun(workflow: String, finished: Bool) throws -> RunRecord?
    func runs(limit: Int) throws -> [RunRecord]
    func logEvent(runID: Int64, stepID: String?, itemID: String?, kind: String, message: String) throws

    // File hashes, generation, plan cache
    /// Content hashes of files, recomputed only when a file's size or mtime changed.
    func fileHashes(for urls: [URL]) throws -> [String: String]
    /// A counter bumped by every write of a result or an item state, in the same transaction.
    func generation() throws -> Int64
    func cachedPlan(workflow: String) throws -> CachedPlan?
    func saveCachedPlan(_ plan: CachedPlan, workflow: String) throws

    // Maintenance
    /// Results per referenced media object, by `hash.ext`.
    func mediaReferences() throws -> [String: Int]
    /// Forgets every result that references one of these media objects (with its vectors, media references
    /// and item states), so the next run recomputes those items; returns how many.
    func forgetResults(usingMedia hashes: Set<String>) throws -> Int
    func stats() throws -> StoreStats
    /// Removes results that no workflow's item states reference, and media no kept result references.
    func collectGarbage(dryRun: Bool) throws -> GCReport
}

extension ResultStore {
    public func latestRun(workflow: String) throws -> RunRecord? { try latestRun(workflow: workflow, finished: false) }
    public func runs() throws -> [RunRecord] { try runs(limit: 20) }
}

/// A held run lock; released when the object goes.
public protocol RunLock: AnyObject, Sendable {}

/// A workflow's cached plan: its content key, the generation its statuses were computed at (nil: they must
/// be recomputed), whether stale items carry their reasons, and the encoded plan.
public struct CachedPlan: Sendable {
    public var key: String
    public var generation: Int64?
    public var explained: Bool
    public var data: Data

    public init(key: String, generation: Int64?, explained: Bool, data: Data) {
        self.key = key
        self.generation = generation
        self.explained = explained
        self.data = data
    }
}

public struct StoreStats: Sendable, Codable {
    public var results: Int
    public var failedResults: Int
    public var vectors: Int
    public var mediaObjects: Int
    public var mediaBytes: Int64
    public var databaseBytes: Int64
    public var runs: Int
    public var workflows: [String: Int]   // workflow -> tracked items
    public var stepKinds: [String: Int]   // step kind -> results
}

public struct GCReport: Sendable, Codable {
    public var results: Int
    public var mediaObjects: Int
    public var mediaBytes: Int64
    public var temporaries: Int
    public var dryRun: Bool
}

extension MediaStore {
    /// Count and bytes of every stored object.
    func usage() -> (objects: Int, bytes: Int64) {
        let objects = allObjects()
        var bytes: Int64 = 0
        for o in objects {
            bytes += Int64((try? FileManager.default.attributesOfItem(atPath: o.url.path)[.size] as? Int) ?? 0)
        }
        return (objects.count, bytes)
    }

    /// Removes every object whose hash is not in `live` (unless `dryRun`); returns what it removed.
    func removeObjects(notIn live: Set<String>, dryRun: Bool) -> (count: Int, bytes: Int64) {
        var count = 0
        var bytes: Int64 = 0
        for object in allObjects() where !live.contains(object.hash) {
            count += 1
            bytes += Int64((try? FileManager.default.attributesOfItem(atPath: object.url.path)[.size] as? Int) ?? 0)
            if !dryRun { try? FileManager.default.removeItem(at: object.url) }
        }
        return (count, bytes)
    }
}
