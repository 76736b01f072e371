import Foundation
import GRDB

/// Recognises SQLite reporting a damaged database and says how to recover, so a damaged store never
/// surfaces as a bare "SQLite error 11".
public enum StoreDamage {
    /// True when `error` is SQLite finding the database file damaged or not a database at all.
    public static func isDamage(_ error: any Error) -> Bool {
        guard let e = error as? DatabaseError else { return false }
        return e.resultCode == .SQLITE_CORRUPT || e.resultCode == .SQLITE_NOTADB
    }

    /// How to get a working store back when `store.sqlite` is damaged.
    public static func databaseRecovery(storeRoot root: URL) -> String {
        let db = root.appendingPathComponent("store.sqlite").path
        return "move \(db) (with its -wal and -shm files, if any) aside and run again: every result is recomputed, "
            + "and media already in \(root.appendingPathComponent("media").path) is reused; or restore the store from a backup"
    }

    /// `error` with the recovery advice when it reports a damaged database; otherwise `error` unchanged.
    public static func explained(_ error: any Error, storeRoot root: URL) -> any Error {
        guard isDamage(error) else { return error }
        return StoreError("""
            the store database \(root.appendingPathComponent("store.sqlite").path) is damaged (\(error)).
            `storyloom cache check --store \(root.path)` lists what is damaged. To recover, \(databaseRecovery(storeRoot: root)).
            """)
    }
}
