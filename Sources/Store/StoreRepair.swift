import Foundation
import GRDB

/// What ``ResultStore/repairMedia(_:)`` did.
public struct MediaRepair: Sendable, Codable {
    public var filesRemoved: Int
    public var resultsForgotten: Int
}

extension ResultStore {
    /// Deletes the damaged media objects a check found and forgets every result that references a damaged
    /// or missing one (with its vectors, media references and item states), so the next run recomputes those items
    /// instead of serving broken pictures. A content-addressed write skips an existing name, so a damaged
    /// file must go before the next run can rewrite it. Hold the run lock (``lockRuns(wait:)``) while calling this.
    public func repairMedia(_ report: StoreCheckReport) throws -> MediaRepair {
        guard report.databaseIsSound else {
            throw StoreError("the store database itself is damaged, so media cannot be repaired through it; "
                             + StoreDamage.databaseRecovery(storeRoot: root))
        }
        let bad = report.corrupt + report.missing
        var removed = 0
        for m in report.corrupt {
            let url = root.appendingPathComponent(m.path)
            do { try FileManager.default.removeItem(at: url); removed += 1 } catch {
                throw StoreError("cannot remove damaged media file \(url.path): \(error.localizedDescription)")
            }
        }
        let forgotten = try forgetResults(usingMedia: Set(bad.map(\.expected)))
        return MediaRepair(filesRemoved: removed, resultsForgotten: forgotten)
    }
}

extension ProjectStore {
    public func forgetResults(usingMedia hashes: Set<String>) throws -> Int {
        let hashes = Array(hashes)
        return try db.write { db in
            var fingerprints = Set<String>()
            for chunk in hashes.chunked(500) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                fingerprints.formUnion(try String.fetchAll(db, sql: "SELECT fingerprint FROM result_media WHERE hash IN (\(marks))",
                                                           arguments: StatementArguments(chunk)))
            }
            for chunk in Array(fingerprints).chunked(500) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let args = StatementArguments(chunk)
                try db.execute(sql: "DELETE FROM results WHERE fingerprint IN (\(marks))", arguments: args)
                try db.execute(sql: "DELETE FROM vectors WHERE fingerprint IN (\(marks))", arguments: args)
                try db.execute(sql: "DELETE FROM result_media WHERE fingerprint IN (\(marks))", arguments: args)
                // Plans trust a workflow's item state; without it the item is planned anew.
                try db.execute(sql: "DELETE FROM item_states WHERE fingerprint IN (\(marks))", arguments: args)
            }
            return fingerprints.count
        }
    }

    public func mediaReferences() throws -> [String: Int] {
        try db.read { db in
            var refs: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT hash, ext, COUNT(*) FROM result_media GROUP BY hash, ext") {
                refs["\(row[0] as String).\(row[1] as String)"] = row[2]
            }
            return refs
        }
    }
}
