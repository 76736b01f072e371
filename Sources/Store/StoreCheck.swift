import Foundation
import GRDB

/// What `storyloom cache check` found in a store.
public struct StoreCheckReport: Sendable, Codable {
    /// A media object that is not what its name says: missing, or with other bytes.
    public struct BadMedia: Sendable, Codable, Equatable {
        /// The file, relative to the store (`media/ab/<hash>.<ext>`).
        public var path: String
        /// The SHA-256 its name promises.
        public var expected: String
        /// The SHA-256 of its bytes; nil when the file is missing.
        public var actual: String?
        /// Stored results that reference it (0 for an unreferenced object).
        public var referencedBy: Int

        public init(path: String, expected: String, actual: String?, referencedBy: Int) {
            self.path = path
            self.expected = expected
            self.actual = actual
            self.referencedBy = referencedBy
        }
    }

    public var store: String
    /// SQLite's `PRAGMA integrity_check` messages (`["ok"]` when sound), or the error that stopped it;
    /// `["ok"]` for PostgreSQL, whose database this check does not read.
    public var database: [String]
    /// "SQLite", or "PostgreSQL" for a shared store.
    public var databaseEngine = "SQLite"
    /// Media objects on disk whose bytes were hashed.
    public var mediaChecked: Int
    public var corrupt: [BadMedia]
    /// Objects results reference that are not on disk.
    public var missing: [BadMedia]
    /// Objects no result references (`cache gc` removes them); not damage. Nil when the references
    /// could not be read from a damaged database.
    public var orphans: Int?
    public var orphanBytes: Int64
    /// Left-over partial writes under `media/tmp` (`cache gc` removes them); not damage.
    public var temporaries: Int

    public var databaseIsSound: Bool { database == ["ok"] }
    public var damaged: Bool { !databaseIsSound || !corrupt.isEmpty || !missing.isEmpty }
}

/// Checks a store for damage without changing it: SQLite's integrity check of `store.sqlite`, and every
/// media object's bytes against the hash in its name, every referenced object present.
public enum StoreCheck {
    public static func run(storeRoot root: URL) throws -> StoreCheckReport {
        let dbPath = root.appendingPathComponent("store.sqlite").path
        guard FileManager.default.fileExists(atPath: dbPath) else {
            throw StoreError("no store at \(root.path) (expected \(dbPath))")
        }
        var database: [String] = []
        // Referenced objects: "hash.ext" → number of results; nil when unreadable.
        var references: [String: Int]? = nil
        do {
            // Opened on its own, without ProjectStore's migrations, so a damaged file is read, not written.
            let queue = try DatabaseQueue(path: dbPath)
            // Each read on its own: integrity_check may stop at a damaged page the references do not touch.
            do {
                database = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            } catch {
                database = ["\(error)"]
            }
            do {
                references = try queue.read { db in
                    var refs: [String: Int] = [:]
                    for row in try Row.fetchAll(db, sql: "SELECT hash, ext, COUNT(*) FROM result_media GROUP BY hash, ext") {
                        refs["\(row[0] as String).\(row[1] as String)"] = row[2]
                    }
                    return refs
                }
            } catch {
                database.append("cannot read the media references (result_media): \(error)")
            }
        } catch {
            database = ["\(error)"]
        }

        return checkMedia(MediaStore(unchecked: root.appendingPathComponent("media")), references: references,
                          store: root.path, database: database)
    }

    /// Checks a PostgreSQL store's media: every object's bytes against the hash in its name, every object the
    /// database references present. The database itself is the server's to check (`pg_amcheck`).
    public static func run(store: PostgresStore) throws -> StoreCheckReport {
        var report = checkMedia(store.media, references: try store.mediaReferences(), store: store.location, database: ["ok"])
        report.databaseEngine = "PostgreSQL"
        return report
    }

    static func checkMedia(_ media: MediaStore, references: [String: Int]?, store: String, database: [String]) -> StoreCheckReport {
        var corrupt: [StoreCheckReport.BadMedia] = []
        var onDisk = Set<String>()
        var orphans = 0
        var orphanBytes: Int64 = 0
        let objects = media.allObjects().sorted { $0.url.path < $1.url.path }
        for object in objects {
            let name = "\(object.hash).\(object.ext)"
            onDisk.insert(name)
            let relative = "media/\(object.hash.prefix(2))/\(name)"
            let uses = references?[name] ?? 0
            let actual: String
            do { actual = try Hashing.sha256Hex(fileAt: object.url) } catch {
                corrupt.append(.init(path: relative, expected: object.hash, actual: "unreadable (\(error.localizedDescription))", referencedBy: uses))
                continue
            }
            if actual != object.hash {
                corrupt.append(.init(path: relative, expected: object.hash, actual: actual, referencedBy: uses))
            }
            if references != nil && uses == 0 {
                orphans += 1
                orphanBytes += Int64((try? FileManager.default.attributesOfItem(atPath: object.url.path)[.size] as? Int) ?? 0)
            }
        }
        var missing: [StoreCheckReport.BadMedia] = []
        for (name, uses) in (references ?? [:]).sorted(by: { $0.key < $1.key }) where !onDisk.contains(name) {
            let hash = String(name.prefix { $0 != "." })
            missing.append(.init(path: "media/\(hash.prefix(2))/\(name)", expected: hash, actual: nil, referencedBy: uses))
        }
        let temporaries = (try? FileManager.default.contentsOfDirectory(atPath: media.root.appendingPathComponent("tmp").path).count) ?? 0
        return StoreCheckReport(store: store, database: database, mediaChecked: objects.count, corrupt: corrupt,
                                missing: missing, orphans: references == nil ? nil : orphans, orphanBytes: orphanBytes,
                                temporaries: temporaries)
    }
}

extension StoreCheckReport: CustomStringConvertible {
    /// What was checked, each damaged thing on its own line, and what to do about it.
    public var description: String {
        var lines = ["store \(store)"]
        if databaseEngine != "SQLite" {
            lines.append("  database  \(databaseEngine): not checked here (the server's own tools check it, e.g. pg_amcheck)")
        } else if databaseIsSound {
            lines.append("  database  ok (SQLite integrity check)")
        } else {
            // integrity_check's own lines, or the error that kept the file from being read at all.
            lines.append("  database  DAMAGED: SQLite reports for store.sqlite:")
            lines += database.prefix(20).map { "      \($0)" }
            if database.count > 20 { lines.append("      … \(database.count - 20) more messages") }
        }
        let orphanText = orphans.map { "\($0) unreferenced (\(ByteCountFormatter.string(fromByteCount: orphanBytes, countStyle: .file)))" }
            ?? "unreferenced not counted (references unreadable)"
        lines.append("  media     \(mediaChecked) objects hashed: \(corrupt.count) damaged, \(missing.count) missing, \(orphanText), \(temporaries) temporary files")
        for m in corrupt {
            lines.append("    damaged \(m.path): expected sha256 \(m.expected), found \(m.actual ?? "nothing") (\(Self.uses(m.referencedBy)))")
        }
        for m in missing {
            lines.append("    missing \(m.path) (\(Self.uses(m.referencedBy)))")
        }
        if !damaged {
            lines.append("no damage found")
            return lines.joined(separator: "\n")
        }
        lines.append("damage found. To recover:")
        if !databaseIsSound {
            lines.append("  " + StoreDamage.databaseRecovery(storeRoot: URL(fileURLWithPath: store)))
        } else {
            lines.append("  storyloom cache check --repair --store \(store)   deletes the damaged media files and forgets the results that reference damaged or missing ones; the next run recomputes them")
        }
        return lines.joined(separator: "\n")
    }

    private static func uses(_ n: Int) -> String {
        n == 0 ? "no result references it" : n == 1 ? "referenced by 1 result" : "referenced by \(n) results"
    }
}
