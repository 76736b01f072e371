import Foundation
import GRDB

/// A stored result of one item of one step, addressed by the item's fingerprint.
public struct StoredResult: Sendable {
    public enum Status: String, Sendable { case ok, failed }
    public var fingerprint: String
    public var stepKind: String
    public var status: Status
    /// The step's outputs as JSON (vectors are kept apart in `vectors`).
    public var outputs: Data?
    public var error: String?
    public var seconds: Double
    /// Float32 vectors by output name (embeddings), with the model digest that produced them.
    public var vectors: [String: [Float]]
    public var modelDigest: String?
    /// Media objects the outputs reference, as (hash, ext); garbage collection keeps them alive.
    public var media: [(hash: String, ext: String)]

    public init(fingerprint: String, stepKind: String, status: Status, outputs: Data?, error: String?,
                seconds: Double, vectors: [String: [Float]] = [:], modelDigest: String? = nil,
                media: [(hash: String, ext: String)] = []) {
        self.fingerprint = fingerprint
        self.stepKind = stepKind
        self.status = status
        self.outputs = outputs
        self.error = error
        self.seconds = seconds
        self.vectors = vectors
        self.modelDigest = modelDigest
        self.media = media
    }
}

/// What a workflow last computed for one item of one step: the fingerprint and the components it was
/// made of, so `plan` and `explain` can say what changed.
public struct ItemState: Sendable {
    public var stepID: String
    public var itemID: String
    public var fingerprint: String
    public var status: StoredResult.Status
    /// JSON of the fingerprint's components (params, input fingerprints, model digest, seed, version).
    public var components: Data?

    public init(stepID: String, itemID: String, fingerprint: String, status: StoredResult.Status, components: Data?) {
        self.stepID = stepID
        self.itemID = itemID
        self.fingerprint = fingerprint
        self.status = status
        self.components = components
    }
}

/// A run of a workflow as recorded in the store.
public struct RunRecord: Sendable {
    public var id: Int64
    public var workflow: String
    public var specPath: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: String
    /// The run summary JSON.
    public var summary: Data?
}

/// The project store: results by fingerprint in SQLite (WAL), media files by content hash, per-workflow
/// item states and run history. One store per project, shared by all workflows; the default
/// ``ResultStore``, on a local disk only (see ``NetworkFilesystem``).
public final class ProjectStore: ResultStore, Sendable {
    public let root: URL
    public let media: MediaStore
    public let db: DatabasePool
    public var location: String { root.path }

    /// Opens (creating if needed) the store in `root`: `store.sqlite` and `media/`. Refuses a folder on a
    /// network filesystem, where SQLite's locking is not to be trusted.
    public init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try NetworkFilesystem.refuseSQLite(in: root)
        var config = Configuration()
        config.busyMode = .timeout(30)
        do {
            db = try DatabasePool(path: root.appendingPathComponent("store.sqlite").path, configuration: config)
        } catch {
            throw StoreDamage.isDamage(error) ? StoreDamage.explained(error, storeRoot: root)
                : StoreError("cannot open the store database in \(root.path): \(error)")
        }
        media = try MediaStore(root: root.appendingPathComponent("media"))
        do { try Self.migrator.migrate(db) } catch { throw StoreDamage.explained(error, storeRoot: root) }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE results (
                    fingerprint TEXT PRIMARY KEY NOT NULL,
                    step_kind TEXT NOT NULL,
                    status TEXT NOT NULL,
                    outputs BLOB,
                    error TEXT,
                    seconds REAL NOT NULL,
                    model_digest TEXT,
                    created_at REAL NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE vectors (
                    fingerprint TEXT NOT NULL,
                    name TEXT NOT NULL,
                    dim INTEGER NOT NULL,
                    model_digest TEXT,
                    data BLOB NOT NULL,
                    PRIMARY KEY (fingerprint, name)
                ) WITHOUT ROWID;
                CREATE TABLE result_media (
                    fingerprint TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    ext TEXT NOT NULL,
                    PRIMARY KEY (fingerprint, hash)
                ) WITHOUT ROWID;
                CREATE INDEX result_media_hash ON result_media(hash);
                CREATE TABLE item_states (
                    workflow TEXT NOT NULL,
                    step_id TEXT NOT NULL,
                    item_id TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    status TEXT NOT NULL,
                    components BLOB,
                    PRIMARY KEY (workflow, step_id, item_id)
                ) WITHOUT ROWID;
                CREATE INDEX item_states_fingerprint ON item_states(fingerprint);
                CREATE TABLE runs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    workflow TEXT NOT NULL,
                    spec_path TEXT NOT NULL,
                    started_at REAL NOT NULL,
                    finished_at REAL,
                    status TEXT NOT NULL,
                    summary BLOB
                );
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id INTEGER NOT NULL,
                    at REAL NOT NULL,
                    step_id TEXT,
                    item_id TEXT,
                    kind TEXT NOT NULL,
                    message TEXT NOT NULL
                );
                CREATE TABLE file_hashes (
                    path TEXT PRIMARY KEY NOT NULL,
                    size INTEGER NOT NULL,
                    mtime REAL NOT NULL,
                    hash TEXT NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v2-generation-and-plan-cache") { db in try Self.createGenerationAndPlanCache(db) }
        return m
    }

    public func lockRuns(wait: Bool) throws -> any RunLock {
        try StoreLock(storeRoot: root, wait: wait)
    }

    // MARK: Results

    /// The subset of `fingerprints` that have a successful stored result.
    public func okFingerprints(among fingerprints: [String]) throws -> Set<String> {
        var found = Set<String>()
        try db.read { db in
            for chunk in fingerprints.chunked(500) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try String.fetchAll(db, sql: "SELECT fingerprint FROM results WHERE status = 'ok' AND fingerprint IN (\(marks))",
                                               arguments: StatementArguments(chunk))
                found.formUnion(rows)
            }
        }
        return found
    }

    /// Stored results by fingerprint (vectors included).
    public func results(for fingerprints: [String]) throws -> [String: StoredResult] {
        var out: [String: StoredResult] = [:]
        try db.read { db in
            for chunk in fingerprints.chunked(500) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let args = StatementArguments(chunk)
                for row in try Row.fetchAll(db, sql: "SELECT * FROM results WHERE fingerprint IN (\(marks))", arguments: args) {
                    let fp: String = row["fingerprint"]
                    out[fp] = StoredResult(fingerprint: fp, stepKind: row["step_kind"],
                                           status: StoredResult.Status(rawValue: row["status"]) ?? .failed,
                                           outputs: row["outputs"], error: row["error"], seconds: row["seconds"],
                                           modelDigest: row["model_digest"])
                }
                for row in try Row.fetchAll(db, sql: "SELECT fingerprint, name, data FROM vectors WHERE fingerprint IN (\(marks))", arguments: args) {
                    let fp: String = row["fingerprint"]
                    let data: Data = row["data"]
                    out[fp]?.vectors[row["name"]] = Self.floats(from: data)
                }
            }
        }
        return out
    }

    /// Commits one batch atomically: results, their vectors and media references, and the workflow's
    /// item states for them. Either all of it lands or none does.
    public func commit(results: [StoredResult], states: [ItemState], workflow: String) throws {
        let now = Date().timeIntervalSince1970
        try db.write { db in
            for r in results {
                try db.execute(sql: """
                    INSERT OR REPLACE INTO results (fingerprint, step_kind, status, outputs, error, seconds, model_digest, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [r.fingerprint, r.stepKind, r.status.rawValue, r.outputs, r.error, r.seconds, r.modelDigest, now])
                try db.execute(sql: "DELETE FROM vectors WHERE fingerprint = ?", arguments: [r.fingerprint])
                for (name, vector) in r.vectors {
                    try db.execute(sql: "INSERT INTO vectors (fingerprint, name, dim, model_digest, data) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [r.fingerprint, name, vector.count, r.modelDigest, Self.data(from: vector)])
                }
                for m in r.media {
                    try db.execute(sql: "INSERT OR IGNORE INTO result_media (fingerprint, hash, ext) VALUES (?, ?, ?)",
                                   arguments: [r.fingerprint, m.hash, m.ext])
                }
            }
            try Self.upsert(states: states, workflow: workflow, db: db)
        }
    }

    /// Records item states without new results (items found cached under a new fingerprint).
    public func saveStates(_ states: [ItemState], workflow: String) throws {
        guard !states.isEmpty else { return }
        try db.write { db in try Self.upsert(states: states, workflow: workflow, db: db) }
    }

    static func upsert(states: [ItemState], workflow: String, db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO item_states (workflow, step_id, item_id, fingerprint, status, components)
            VALUES (?, ?, ?, ?, ?, ?)
            """)
        for s in states {
            try statement.execute(arguments: [workflow, s.stepID, s.itemID, s.fingerprint, s.status.rawValue, s.components])
        }
    }

    // MARK: Item states

    /// (fingerprint, status) of every item a workflow last computed, by step id then item id.
    public func stateIndex(workflow: String) throws -> [String: [String: (fingerprint: String, ok: Bool)]] {
        try db.read { db in
            var out: [String: [String: (String, Bool)]] = [:]
            let cursor = try Row.fetchCursor(db, sql: "SELECT step_id, item_id, fingerprint, status FROM item_states WHERE workflow = ?",
                                             arguments: [workflow])
            while let row = try cursor.next() {
                let step: String = row[0]
                out[step, default: [:]][row[1]] = (row[2], (row[3] as String) == "ok")
            }
            return out
        }
    }

    /// One item's last state for a workflow, with its components.
    public func state(workflow: String, stepID: String, itemID: String) throws -> ItemState? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM item_states WHERE workflow = ? AND step_id = ? AND item_id = ?",
                             arguments: [workflow, stepID, itemID]).map {
                ItemState(stepID: $0["step_id"], itemID: $0["item_id"], fingerprint: $0["fingerprint"],
                          status: StoredResult.Status(rawValue: $0["status"]) ?? .failed, components: $0["components"])
            }
        }
    }

    /// Components of several items' last states (for explaining stale items).
    public func components(workflow: String, stepID: String, itemIDs: [String]) throws -> [String: Data] {
        var out: [String: Data] = [:]
        try db.read { db in
            for chunk in itemIDs.chunked(500) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(db, sql: "SELECT item_id, components FROM item_states WHERE workflow = ? AND step_id = ? AND item_id IN (\(marks))",
                                            arguments: StatementArguments([workflow, stepID] + chunk)) {
                    if let c: Data = row["components"] { out[row["item_id"]] = c }
                }
            }
        }
        return out
    }

    /// Drops states of steps or items a workflow no longer has.
    public func pruneStates(workflow: String, keepSteps: Set<String>) throws {
        try db.write { db in
            let steps = try String.fetchAll(db, sql: "SELECT DISTINCT step_id FROM item_states WHERE workflow = ?", arguments: [workflow])
            for step in steps where !keepSteps.contains(step) {
                try db.execute(sql: "DELETE FROM item_states WHERE workflow = ? AND step_id = ?", arguments: [workflow, step])
            }
        }
    }

    public func deleteStates(workflow: String, stepID: String, itemIDs: [String]) throws {
        guard !itemIDs.isEmpty else { return }
        try db.write { db in
            for chunk in itemIDs.chunked(500) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                try db.execute(sql: "DELETE FROM item_states WHERE workflow = ? AND step_id = ? AND item_id IN (\(marks))",
                               arguments: StatementArguments([workflow, stepID] + chunk))
            }
        }
    }

    // MARK: Runs and events

    public func beginRun(workflow: String, specPath: String) throws -> Int64 {
        try db.write { db in
            try db.execute(sql: "INSERT INTO runs (workflow, spec_path, started_at, status) VALUES (?, ?, ?, 'running')",
                           arguments: [workflow, specPath, Date().timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func finishRun(id: Int64, status: String, summary: Data?) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                           arguments: [Date().timeIntervalSince1970, status, summary, id])
        }
    }

    /// The workflow's latest run; with `finished`, the latest that ended with a summary (one killed before
    /// its end has none).
    public func latestRun(workflow: String, finished: Bool) throws -> RunRecord? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE workflow = ?\(finished ? " AND summary IS NOT NULL" : "") ORDER BY id DESC LIMIT 1",
                             arguments: [workflow]).map(Self.run)
        }
    }

    public func runs(limit: Int) throws -> [RunRecord] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM runs ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.run)
        }
    }

    static func run(_ row: Row) -> RunRecord {
        let finished: Double? = row["finished_at"]
        return RunRecord(id: row["id"], workflow: row["workflow"], specPath: row["spec_path"],
                         startedAt: Date(timeIntervalSince1970: row["started_at"]),
                         finishedAt: finished.map { Date(timeIntervalSince1970: $0) },
                         status: row["status"], summary: row["summary"])
    }

    public func logEvent(runID: Int64, stepID: String?, itemID: String?, kind: String, message: String) throws {
        try db.write { db in
            try db.execute(sql: "INSERT INTO events (run_id, at, step_id, item_id, kind, message) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [runID, Date().timeIntervalSince1970, stepID, itemID, kind, message])
        }
    }

    // MARK: File hashes

    public func fileHashes(for urls: [URL]) throws -> [String: String] {
        var known: [String: (Int64, Double, String)] = [:]
        try db.read { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT path, size, mtime, hash FROM file_hashes")
            while let row = try cursor.next() { known[row[0]] = (row[1], row[2], row[3]) }
        }
        let (out, updates) = try FileHashing.hashes(for: urls, known: known)
        if !updates.isEmpty {
            try db.write { db in
                for u in updates {
                    try db.execute(sql: "INSERT OR REPLACE INTO file_hashes (path, size, mtime, hash) VALUES (?, ?, ?, ?)",
                                   arguments: [u.path, u.size, u.mtime, u.hash])
                }
            }
        }
        return out
    }

    // MARK: Statistics and garbage collection

    public func stats() throws -> StoreStats {
        let usage = media.usage()
        var dbBytes: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            let path = root.appendingPathComponent("store.sqlite\(suffix)").path
            dbBytes += Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
        return try db.read { db in
            var workflows: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT workflow, COUNT(*) FROM item_states GROUP BY workflow") {
                workflows[row[0]] = row[1]
            }
            var kinds: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT step_kind, COUNT(*) FROM results GROUP BY step_kind") {
                kinds[row[0]] = row[1]
            }
            return StoreStats(results: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM results") ?? 0,
                              failedResults: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM results WHERE status = 'failed'") ?? 0,
                              vectors: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM vectors") ?? 0,
                              mediaObjects: usage.objects, mediaBytes: usage.bytes, databaseBytes: dbBytes,
                              runs: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM runs") ?? 0,
                              workflows: workflows, stepKinds: kinds)
        }
    }

    /// Removes results that no workflow's item states reference, and media no kept result references.
    /// With `dryRun`, only counts.
    public func collectGarbage(dryRun: Bool) throws -> GCReport {
        let doomed: [String] = try db.read { db in
            try String.fetchAll(db, sql: "SELECT fingerprint FROM results WHERE fingerprint NOT IN (SELECT fingerprint FROM item_states)")
        }
        if !dryRun && !doomed.isEmpty {
            try db.write { db in
                for chunk in doomed.chunked(500) {
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    let args = StatementArguments(chunk)
                    try db.execute(sql: "DELETE FROM results WHERE fingerprint IN (\(marks))", arguments: args)
                    try db.execute(sql: "DELETE FROM vectors WHERE fingerprint IN (\(marks))", arguments: args)
                    try db.execute(sql: "DELETE FROM result_media WHERE fingerprint IN (\(marks))", arguments: args)
                }
            }
        }
        let doomedSet = Set(doomed)
        let live: Set<String> = try db.read { db in
            var live = Set<String>()
            let cursor = try Row.fetchCursor(db, sql: "SELECT fingerprint, hash FROM result_media")
            while let row = try cursor.next() {
                let fp: String = row[0]
                if !doomedSet.contains(fp) { live.insert(row[1]) }
            }
            return live
        }
        let removed = media.removeObjects(notIn: live, dryRun: dryRun)
        let temps = dryRun ? 0 : media.removeTemporaries()
        if !dryRun { try db.writeWithoutTransaction { try $0.execute(sql: "VACUUM") } }
        return GCReport(results: doomed.count, mediaObjects: removed.count, mediaBytes: removed.bytes, temporaries: temps, dryRun: dryRun)
    }

    /// `PRAGMA integrity_check`: "ok" when the database is sound.
    public func integrityCheck() throws -> String {
        try db.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    // MARK: Vectors as BLOBs

    static func data(from vector: [Float]) -> Data {
        vector.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    static func floats(from data: Data) -> [Float] {
        let n = data.count / MemoryLayout<Float>.size
        return [Float](unsafeUninitializedCapacity: n) { buffer, count in
            _ = data.copyBytes(to: UnsafeMutableRawBufferPointer(buffer))
            count = n
        }
    }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
