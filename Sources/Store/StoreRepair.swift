import Foundation
import GRDB

extension ProjectStore {
    /// What ``repairMedia(_:)`` did.
    public struct MediaRepair: Sendable, Codable {
        public var filesRemoved: Int
        public var resultsForgotten: Int
    }

    /// Deletes the damaged media objects a check found and forgets every result that references a damaged
    /// or missing one (with its vectors, media references and item states), so the next run recomputes those items
    /// instead of serving broken pictures. A content-addressed write skips an existing name, so a damaged
    /// file must go before the next run can rewrite it. Hold the ``StoreLock`` while calling this.
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
        let hashes = Array(Set(bad.map(\.expected)))
        let forgotten: Int = try db.write { db in
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
        return MediaRepair(filesRemoved: removed, resultsForgotten: forgotten)
    }
}
