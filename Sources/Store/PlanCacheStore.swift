import Foundation
import GRDB

/// The store's generation and the plan cache's table.
///
/// The generation is a counter that SQLite triggers bump on every insert, update or delete of a result or
/// an item state, whichever code path writes it (runs, `cache gc`, `cache check --repair`, another
/// workflow's run). A plan's statuses depend on nothing else in the store, so statuses computed at
/// generation G are still right while the generation is G.
extension ProjectStore {
    static func createGenerationAndPlanCache(_ db: Database) throws {
        var sql = """
            CREATE TABLE store_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
            INSERT INTO store_generation (id, value) VALUES (0, 0);
            CREATE TABLE plan_cache (
                workflow TEXT PRIMARY KEY NOT NULL,
                key TEXT NOT NULL,
                generation INTEGER,
                explained INTEGER NOT NULL,
                data BLOB NOT NULL
            );

            """
        for table in ["results", "item_states"] {
            for event in ["INSERT", "UPDATE", "DELETE"] {
                sql += """
                    CREATE TRIGGER \(table)_\(event.lowercased())_generation AFTER \(event) ON \(table)
                    BEGIN UPDATE store_generation SET value = value + 1 WHERE id = 0; END;

                    """
            }
        }
        try db.execute(sql: sql)
    }

    /// The current generation of results and item states.
    public func generation() throws -> Int64 {
        try db.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM store_generation WHERE id = 0") ?? 0 }
    }

    public func cachedPlan(workflow: String) throws -> CachedPlan? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT key, generation, explained, data FROM plan_cache WHERE workflow = ?",
                             arguments: [workflow]).map {
                CachedPlan(key: $0["key"], generation: $0["generation"], explained: $0["explained"], data: $0["data"])
            }
        }
    }

    public func saveCachedPlan(_ plan: CachedPlan, workflow: String) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO plan_cache (workflow, key, generation, explained, data) VALUES (?, ?, ?, ?, ?)",
                           arguments: [workflow, plan.key, plan.generation, plan.explained, plan.data])
        }
    }
}
