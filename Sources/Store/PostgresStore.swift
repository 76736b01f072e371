import Foundation
import PostgresNIO

/// The project store in a PostgreSQL database that many nodes share, with media in a shared folder.
///
/// The tables mirror ``ProjectStore``'s. Writes are safe to repeat and to run concurrently from many
/// processes (a `run` and the `storyloom work` tasks it started): a result is inserted with
/// `ON CONFLICT DO NOTHING` (one fingerprint, one content), item states and plan-cache rows are upserts.
/// Every writing transaction first bumps the generation row, so writers queue on that one row lock
/// (taken first, it cannot deadlock) and a reader that sees the generation unchanged saw no write land.
public final class PostgresStore: ResultStore, @unchecked Sendable {
    public let root: URL
    public let media: MediaStore
    public let address: PostgresAddress
    public var location: String { address.description }
    let db: PostgresConnectionBridge

    /// The schema this code writes; a database with a newer one was written by a newer storyloom.
    static let schemaVersion = 1

    /// Connects and creates the tables on first use. `mediaFolder` must be a folder every node sees.
    public init(address: PostgresAddress, mediaFolder: URL) throws {
        self.address = address
        root = mediaFolder
        try FileManager.default.createDirectory(at: mediaFolder, withIntermediateDirectories: true)
        media = try MediaStore(root: mediaFolder.appendingPathComponent("media"))
        db = try PostgresConnectionBridge(address: address, purpose: "store")
        try createSchema()
    }

    /// Creates an empty database `name` on the server of `server` (connecting to `server`'s database),
    /// for a new store; returns the address of the new database.
    public static func createDatabase(_ name: String, server: PostgresAddress) throws -> PostgresAddress {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }), !name.isEmpty else {
            throw StoreError("database name \(name) must be letters, digits and _")
        }
        let admin = try PostgresConnectionBridge(address: server, purpose: "admin")
        try admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        var address = server
        address.database = name
        return address
    }

    /// Drops database `name` on `server`'s server, ending its sessions (for a benchmark's scratch database).
    public static func dropDatabase(_ name: String, server: PostgresAddress) throws {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }), !name.isEmpty else {
            throw StoreError("database name \(name) must be letters, digits and _")
        }
        let admin = try PostgresConnectionBridge(address: server, purpose: "admin")
        try admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
    }

    private func createSchema() throws {
        // Usually the tables are there: one round trip to see that, before the transaction that creates them.
        let exists = try db.query("SELECT to_regclass('storyloom_meta') IS NOT NULL").first?.decode(Bool.self) ?? false
        if exists, try schemaVersion() == Self.schemaVersion { return }
        try db.transaction { tx in
            // Many nodes may open a new database at once: one creates the tables, the others wait here.
            try tx.query("SELECT pg_advisory_xact_lock(\(Self.lockClass), 0)")
            for statement in Self.schema { try tx.query(PostgresQuery(unsafeSQL: statement)) }
            try tx.query("INSERT INTO storyloom_meta (key, value) VALUES ('schema_version', \(String(Self.schemaVersion))) ON CONFLICT (key) DO NOTHING")
        }
        let version = try schemaVersion()
        guard version <= Self.schemaVersion else {
            throw StoreError("the PostgreSQL store \(address) has schema version \(version), newer than this storyloom's \(Self.schemaVersion): use a newer storyloom")
        }
    }

    private func schemaVersion() throws -> Int {
        try db.query("SELECT value FROM storyloom_meta WHERE key = 'schema_version'").first
            .flatMap { Int(try $0.decode(String.self)) } ?? 0
    }

    static let schema = [
        "CREATE TABLE IF NOT EXISTS storyloom_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS results (
            fingerprint TEXT PRIMARY KEY, step_kind TEXT NOT NULL, status TEXT NOT NULL, outputs BYTEA, error TEXT,
            seconds DOUBLE PRECISION NOT NULL, model_digest TEXT, created_at DOUBLE PRECISION NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS vectors (
            fingerprint TEXT NOT NULL, name TEXT NOT NULL, dim INTEGER NOT NULL, model_digest TEXT, data BYTEA NOT NULL,
            PRIMARY KEY (fingerprint, name))
        """,
        "CREATE TABLE IF NOT EXISTS result_media (fingerprint TEXT NOT NULL, hash TEXT NOT NULL, ext TEXT NOT NULL, PRIMARY KEY (fingerprint, hash))",
        "CREATE INDEX IF NOT EXISTS result_media_hash ON result_media (hash)",
        """
        CREATE TABLE IF NOT EXISTS item_states (
            workflow TEXT NOT NULL, step_id TEXT NOT NULL, item_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
            status TEXT NOT NULL, components BYTEA, PRIMARY KEY (workflow, step_id, item_id))
        """,
        "CREATE INDEX IF NOT EXISTS item_states_fingerprint ON item_states (fingerprint)",
        """
        CREATE TABLE IF NOT EXISTS runs (
            id BIGSERIAL PRIMARY KEY, workflow TEXT NOT NULL, spec_path TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION, status TEXT NOT NULL, summary BYTEA)
        """,
        """
        CREATE TABLE IF NOT EXISTS events (
            id BIGSERIAL PRIMARY KEY, run_id BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL, step_id TEXT, item_id TEXT,
            kind TEXT NOT NULL, message TEXT NOT NULL)
        """,
        "CREATE TABLE IF NOT EXISTS file_hashes (path TEXT PRIMARY KEY, size BIGINT NOT NULL, mtime DOUBLE PRECISION NOT NULL, hash TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS store_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value BIGINT NOT NULL)",
        "INSERT INTO store_generation (id, value) VALUES (0, 0) ON CONFLICT (id) DO NOTHING",
        """
        CREATE TABLE IF NOT EXISTS plan_cache (
            workflow TEXT PRIMARY KEY, key TEXT NOT NULL, generation BIGINT, explained BOOLEAN NOT NULL, data BYTEA NOT NULL)
        """,
    ]

    /// The first key of the store's advisory locks ("SLOM"); the second is 0 for schema creation, 1 for runs.
    static let lockClass: Int32 = 0x534C_4F4D

    /// Marks a write: first in every writing transaction (see the type's comment).
    private func bumpGeneration(_ tx: PostgresConnectionBridge.Transaction) throws {
        try tx.query("UPDATE store_generation SET value = value + 1 WHERE id = 0")
    }

    // MARK: Run lock

    public func lockRuns(wait: Bool) throws -> any RunLock {
        try PostgresRunLock(address: address, wait: wait)
    }

    // MARK: Results

    public func okFingerprints(among fingerprints: [String]) throws -> Set<String> {
        var found = Set<String>()
        for chunk in fingerprints.chunked(5000) {
            for row in try db.query("SELECT fingerprint FROM results WHERE status = 'ok' AND fingerprint = ANY(\(Array(chunk)))") {
                found.insert(try row.decode(String.self))
            }
        }
        return found
    }

    public func results(for fingerprints: [String]) throws -> [String: StoredResult] {
        var out: [String: StoredResult] = [:]
        for chunk in fingerprints.chunked(5000) {
            let keys = Array(chunk)
            for row in try db.query("""
                SELECT fingerprint, step_kind, status, outputs, error, seconds, model_digest FROM results WHERE fingerprint = ANY(\(keys))
                """) {
                let (fp, kind, status, outputs, error, seconds, digest) = try row.decode((String, String, String, Data?, String?, Double, String?).self)
                out[fp] = StoredResult(fingerprint: fp, stepKind: kind, status: StoredResult.Status(rawValue: status) ?? .failed,
                                       outputs: outputs, error: error, seconds: seconds, modelDigest: digest)
            }
            for row in try db.query("SELECT fingerprint, name, data FROM vectors WHERE fingerprint = ANY(\(keys))") {
                let (fp, name, data) = try row.decode((String, String, Data).self)
                out[fp]?.vectors[name] = ProjectStore.floats(from: data)
            }
        }
        return out
    }

    /// A fingerprint's result is written once: a second writer (a resubmitted task, another node that
    /// computed the same item) finds it there and leaves it. A failed result is replaced by a later one,
    /// as a retry after a failure must be able to store its success. Rows go in multi-row statements: a
    /// batch is a few round trips, not a few per item.
    public func commit(results: [StoredResult], states: [ItemState], workflow: String) throws {
        let now = Date().timeIntervalSince1970
        // One row per fingerprint (two items can share one), the last as SQLite's INSERT OR REPLACE keeps.
        var unique: [String: StoredResult] = [:]
        for r in results { unique[r.fingerprint] = r }
        let rows = unique.values.sorted { $0.fingerprint < $1.fingerprint }
        try db.transaction { tx in
            try bumpGeneration(tx)
            let written = Set(try Self.insert(tx, into: "results",
                                              columns: ["fingerprint", "step_kind", "status", "outputs", "error", "seconds", "model_digest", "created_at"],
                                              rows: rows.map { r -> [Bind] in [r.fingerprint, r.stepKind, r.status.rawValue, r.outputs, r.error, r.seconds, r.modelDigest, now] },
                                              then: """
                                                ON CONFLICT (fingerprint) DO UPDATE SET step_kind = EXCLUDED.step_kind, status = EXCLUDED.status,
                                                    outputs = EXCLUDED.outputs, error = EXCLUDED.error, seconds = EXCLUDED.seconds,
                                                    model_digest = EXCLUDED.model_digest, created_at = EXCLUDED.created_at
                                                WHERE results.status <> 'ok' RETURNING fingerprint
                                                """).map { try $0.decode(String.self) })
            // An ok result already there keeps its vectors and media references too.
            let fresh = rows.filter { written.contains($0.fingerprint) }
            guard !fresh.isEmpty else { try upsert(states: states, workflow: workflow, tx: tx); return }
            try tx.query("DELETE FROM vectors WHERE fingerprint = ANY(\(fresh.map(\.fingerprint)))")
            try Self.insert(tx, into: "vectors", columns: ["fingerprint", "name", "dim", "model_digest", "data"],
                            rows: fresh.flatMap { r in r.vectors.map { v -> [Bind] in [r.fingerprint, v.key, v.value.count, r.modelDigest, ProjectStore.data(from: v.value)] } },
                            then: "ON CONFLICT DO NOTHING")
            try Self.insert(tx, into: "result_media", columns: ["fingerprint", "hash", "ext"],
                            rows: fresh.flatMap { r in r.media.map { m -> [Bind] in [r.fingerprint, m.hash, m.ext] } },
                            then: "ON CONFLICT DO NOTHING")
            try upsert(states: states, workflow: workflow, tx: tx)
        }
    }

    public func saveStates(_ states: [ItemState], workflow: String) throws {
        guard !states.isEmpty else { return }
        try db.transaction { tx in
            try bumpGeneration(tx)
            try upsert(states: states, workflow: workflow, tx: tx)
        }
    }

    private func upsert(states: [ItemState], workflow: String, tx: PostgresConnectionBridge.Transaction) throws {
        var unique: [String: ItemState] = [:]
        for s in states { unique[s.stepID + "\u{0}" + s.itemID] = s }
        try Self.insert(tx, into: "item_states", columns: ["workflow", "step_id", "item_id", "fingerprint", "status", "components"],
                        rows: unique.keys.sorted().map { key -> [Bind] in
                            let s = unique[key]!
                            return [workflow, s.stepID, s.itemID, s.fingerprint, s.status.rawValue, s.components]
                        },
                        then: """
                            ON CONFLICT (workflow, step_id, item_id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                                status = EXCLUDED.status, components = EXCLUDED.components
                            """)
    }

    typealias Bind = (any PostgresThrowingDynamicTypeEncodable)?

    /// `INSERT INTO table (columns) VALUES (…), (…) then` in statements of at most 1000 rows (a statement
    /// takes at most 65535 values); the rows any RETURNING clause returns. Nothing is sent for no rows.
    @discardableResult
    static func insert(_ tx: PostgresConnectionBridge.Transaction, into table: String, columns: [String], rows: [[Bind]],
                       then clause: String) throws -> [PostgresRow] {
        var out: [PostgresRow] = []
        for chunk in rows.chunked(1000) {
            var binds = PostgresBindings(capacity: chunk.count * columns.count)
            var tuples: [String] = []
            tuples.reserveCapacity(chunk.count)
            for row in chunk {
                var marks: [String] = []
                for value in row {
                    if let value { try binds.append(value) } else { binds.appendNull() }
                    marks.append("$\(binds.count)")
                }
                tuples.append("(" + marks.joined(separator: ", ") + ")")
            }
            let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", ")) \(clause)"
            out += try tx.query(PostgresQuery(unsafeSQL: sql, binds: binds))
        }
        return out
    }

    // MARK: Item states

    public func stateIndex(workflow: String) throws -> [String: [String: (fingerprint: String, ok: Bool)]] {
        var out: [String: [String: (fingerprint: String, ok: Bool)]] = [:]
        for row in try db.query("SELECT step_id, item_id, fingerprint, status FROM item_states WHERE workflow = \(workflow)") {
            let (step, item, fp, status) = try row.decode((String, String, String, String).self)
            out[step, default: [:]][item] = (fp, status == "ok")
        }
        return out
    }

    public func state(workflow: String, stepID: String, itemID: String) throws -> ItemState? {
        try db.query("""
            SELECT fingerprint, status, components FROM item_states
            WHERE workflow = \(workflow) AND step_id = \(stepID) AND item_id = \(itemID)
            """).first.map { row in
            let (fp, status, components) = try row.decode((String, String, Data?).self)
            return ItemState(stepID: stepID, itemID: itemID, fingerprint: fp, status: StoredResult.Status(rawValue: status) ?? .failed,
                             components: components)
        }
    }

    public func components(workflow: String, stepID: String, itemIDs: [String]) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for chunk in itemIDs.chunked(5000) {
            for row in try db.query("""
                SELECT item_id, components FROM item_states
                WHERE workflow = \(workflow) AND step_id = \(stepID) AND item_id = ANY(\(Array(chunk))) AND components IS NOT NULL
                """) {
                let (item, components) = try row.decode((String, Data).self)
                out[item] = components
            }
        }
        return out
    }

    public func pruneStates(workflow: String, keepSteps: Set<String>) throws {
        let keep = Array(keepSteps)
        // Only a transaction that will delete something bumps the generation.
        let stale = try db.query("SELECT 1 FROM item_states WHERE workflow = \(workflow) AND NOT (step_id = ANY(\(keep))) LIMIT 1")
        guard !stale.isEmpty else { return }
        try db.transaction { tx in
            try bumpGeneration(tx)
            try tx.query("DELETE FROM item_states WHERE workflow = \(workflow) AND NOT (step_id = ANY(\(keep)))")
        }
    }

    public func deleteStates(workflow: String, stepID: String, itemIDs: [String]) throws {
        guard !itemIDs.isEmpty else { return }
        try db.transaction { tx in
            try bumpGeneration(tx)
            try tx.query("DELETE FROM item_states WHERE workflow = \(workflow) AND step_id = \(stepID) AND item_id = ANY(\(itemIDs))")
        }
    }

    // MARK: Runs and events

    public func beginRun(workflow: String, specPath: String) throws -> Int64 {
        let rows = try db.query("""
            INSERT INTO runs (workflow, spec_path, started_at, status) VALUES (\(workflow), \(specPath), \(Date().timeIntervalSince1970), 'running')
            RETURNING id
            """)
        guard let id = try rows.first?.decode(Int64.self) else { throw StoreError("PostgreSQL store \(address): no run id returned") }
        return id
    }

    public func finishRun(id: Int64, status: String, summary: Data?) throws {
        try db.query("UPDATE runs SET finished_at = \(Date().timeIntervalSince1970), status = \(status), summary = \(summary) WHERE id = \(id)")
    }

    public func latestRun(workflow: String, finished: Bool) throws -> RunRecord? {
        let condition = finished ? " AND summary IS NOT NULL" : ""
        return try db.query("""
            SELECT id, workflow, spec_path, started_at, finished_at, status, summary FROM runs
            WHERE workflow = \(workflow)\(unescaped: condition) ORDER BY id DESC LIMIT 1
            """).first.map(Self.run)
    }

    public func runs(limit: Int) throws -> [RunRecord] {
        try db.query("SELECT id, workflow, spec_path, started_at, finished_at, status, summary FROM runs ORDER BY id DESC LIMIT \(limit)")
            .map(Self.run)
    }

    static func run(_ row: PostgresRow) throws -> RunRecord {
        let (id, workflow, spec, started, finished, status, summary) = try row.decode((Int64, String, String, Double, Double?, String, Data?).self)
        return RunRecord(id: id, workflow: workflow, specPath: spec, startedAt: Date(timeIntervalSince1970: started),
                         finishedAt: finished.map { Date(timeIntervalSince1970: $0) }, status: status, summary: summary)
    }

    public func logEvent(runID: Int64, stepID: String?, itemID: String?, kind: String, message: String) throws {
        try db.query("""
            INSERT INTO events (run_id, at, step_id, item_id, kind, message)
            VALUES (\(runID), \(Date().timeIntervalSince1970), \(stepID), \(itemID), \(kind), \(message))
            """)
    }

    // MARK: File hashes

    /// As ``ProjectStore/fileHashes(for:)``; paths are those of the node that asks, so nodes that see the
    /// shared folder under one path share the cache.
    public func fileHashes(for urls: [URL]) throws -> [String: String] {
        var known: [String: (Int64, Double, String)] = [:]
        let paths = urls.map(\.path)
        for chunk in paths.chunked(5000) {
            for row in try db.query("SELECT path, size, mtime, hash FROM file_hashes WHERE path = ANY(\(Array(chunk)))") {
                let (path, size, mtime, hash) = try row.decode((String, Int64, Double, String).self)
                known[path] = (size, mtime, hash)
            }
        }
        let (out, updates) = try FileHashing.hashes(for: urls, known: known)
        if !updates.isEmpty {
            try db.transaction { tx in
                for u in updates {
                    try tx.query("""
                        INSERT INTO file_hashes (path, size, mtime, hash) VALUES (\(u.path), \(u.size), \(u.mtime), \(u.hash))
                        ON CONFLICT (path) DO UPDATE SET size = EXCLUDED.size, mtime = EXCLUDED.mtime, hash = EXCLUDED.hash
                        """)
                }
            }
        }
        return out
    }

    // MARK: Generation and plan cache

    public func generation() throws -> Int64 {
        try db.query("SELECT value FROM store_generation WHERE id = 0").first?.decode(Int64.self) ?? 0
    }

    public func cachedPlan(workflow: String) throws -> CachedPlan? {
        try db.query("SELECT key, generation, explained, data FROM plan_cache WHERE workflow = \(workflow)").first.map { row in
            let (key, generation, explained, data) = try row.decode((String, Int64?, Bool, Data).self)
            return CachedPlan(key: key, generation: generation, explained: explained, data: data)
        }
    }

    public func saveCachedPlan(_ plan: CachedPlan, workflow: String) throws {
        try db.query("""
            INSERT INTO plan_cache (workflow, key, generation, explained, data)
            VALUES (\(workflow), \(plan.key), \(plan.generation), \(plan.explained), \(plan.data))
            ON CONFLICT (workflow) DO UPDATE SET key = EXCLUDED.key, generation = EXCLUDED.generation,
                explained = EXCLUDED.explained, data = EXCLUDED.data
            """)
    }

    // MARK: Statistics and garbage collection

    public func stats() throws -> StoreStats {
        let usage = media.usage()
        func count(_ sql: String) throws -> Int {
            Int(try db.query(PostgresQuery(unsafeSQL: sql)).first?.decode(Int64.self) ?? 0)
        }
        var workflows: [String: Int] = [:]
        for row in try db.query("SELECT workflow, COUNT(*) FROM item_states GROUP BY workflow") {
            let (w, n) = try row.decode((String, Int64).self)
            workflows[w] = Int(n)
        }
        var kinds: [String: Int] = [:]
        for row in try db.query("SELECT step_kind, COUNT(*) FROM results GROUP BY step_kind") {
            let (k, n) = try row.decode((String, Int64).self)
            kinds[k] = Int(n)
        }
        let bytes = try db.query("SELECT pg_database_size(current_database())").first?.decode(Int64.self) ?? 0
        return StoreStats(results: try count("SELECT COUNT(*) FROM results"),
                          failedResults: try count("SELECT COUNT(*) FROM results WHERE status = 'failed'"),
                          vectors: try count("SELECT COUNT(*) FROM vectors"),
                          mediaObjects: usage.objects, mediaBytes: usage.bytes, databaseBytes: bytes,
                          runs: try count("SELECT COUNT(*) FROM runs"), workflows: workflows, stepKinds: kinds)
    }

    public func mediaReferences() throws -> [String: Int] {
        var refs: [String: Int] = [:]
        for row in try db.query("SELECT hash, ext, COUNT(*) FROM result_media GROUP BY hash, ext") {
            let (hash, ext, n) = try row.decode((String, String, Int64).self)
            refs["\(hash).\(ext)"] = Int(n)
        }
        return refs
    }

    public func forgetResults(usingMedia hashes: Set<String>) throws -> Int {
        try db.transaction { tx in
            try bumpGeneration(tx)
            let fingerprints = try tx.query("SELECT DISTINCT fingerprint FROM result_media WHERE hash = ANY(\(Array(hashes)))")
                .map { try $0.decode(String.self) }
            guard !fingerprints.isEmpty else { return 0 }
            try tx.query("DELETE FROM results WHERE fingerprint = ANY(\(fingerprints))")
            try tx.query("DELETE FROM vectors WHERE fingerprint = ANY(\(fingerprints))")
            try tx.query("DELETE FROM result_media WHERE fingerprint = ANY(\(fingerprints))")
            // Plans trust a workflow's item state; without it the item is planned anew.
            try tx.query("DELETE FROM item_states WHERE fingerprint = ANY(\(fingerprints))")
            return fingerprints.count
        }
    }

    /// As ``ProjectStore/collectGarbage(dryRun:)``. Hold the run lock: `storyloom work` tasks take no lock,
    /// but they only run while a `run` holds it.
    public func collectGarbage(dryRun: Bool) throws -> GCReport {
        let unreferenced = "SELECT fingerprint FROM results r WHERE NOT EXISTS (SELECT 1 FROM item_states s WHERE s.fingerprint = r.fingerprint)"
        let doomed = try db.query(PostgresQuery(unsafeSQL: unreferenced)).map { try $0.decode(String.self) }
        if !dryRun && !doomed.isEmpty {
            try db.transaction { tx in
                try bumpGeneration(tx)
                for chunk in doomed.chunked(5000) {
                    let keys = Array(chunk)
                    try tx.query("DELETE FROM results WHERE fingerprint = ANY(\(keys))")
                    try tx.query("DELETE FROM vectors WHERE fingerprint = ANY(\(keys))")
                    try tx.query("DELETE FROM result_media WHERE fingerprint = ANY(\(keys))")
                }
            }
        }
        let doomedSet = Set(doomed)
        var live = Set<String>()
        for row in try db.query("SELECT fingerprint, hash FROM result_media") {
            let (fp, hash) = try row.decode((String, String).self)
            if !doomedSet.contains(fp) { live.insert(hash) }
        }
        let removed = media.removeObjects(notIn: live, dryRun: dryRun)
        let temps = dryRun ? 0 : media.removeTemporaries()
        return GCReport(results: doomed.count, mediaObjects: removed.count, mediaBytes: removed.bytes, temporaries: temps, dryRun: dryRun)
    }
}

/// The run lock of a PostgreSQL store: a session-level advisory lock on a connection of its own, so the
/// server releases it when the process dies or its connection drops, as the kernel drops a flock.
final class PostgresRunLock: RunLock, @unchecked Sendable {
    private let connection: PostgresConnectionBridge

    init(address: PostgresAddress, wait: Bool) throws {
        connection = try PostgresConnectionBridge(address: address, purpose: "run", reconnects: false)
        let key = PostgresStore.lockClass
        if wait {
            try connection.query("SELECT pg_advisory_lock(\(key), 1)")
            return
        }
        let taken = try connection.query("SELECT pg_try_advisory_lock(\(key), 1)").first?.decode(Bool.self) ?? false
        guard taken else {
            // The holder's application_name says which process it is (see PostgresConnectionBridge).
            let holder = try? connection.query("""
                SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.classid::bigint = \(Int64(key)) AND l.objid::bigint = 1 AND l.granted
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """).first?.decode(String.self)
            throw StoreError("another storyloom run (\(holder.map { $0.isEmpty ? "unknown process" : $0 } ?? "unknown process")) is using the store at \(address); wait for it to finish or pass --wait")
        }
    }

    deinit {
        _ = try? connection.query("SELECT pg_advisory_unlock(\(PostgresStore.lockClass), 1)")
    }
}
