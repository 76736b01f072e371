import Foundation
import Store
import Testing

@Suite struct StoreCheckTests {
    /// A store with `count` results, each referencing its own media object; closed on return, so its
    /// write-ahead log is folded into store.sqlite.
    func filledStore(count: Int) throws -> (root: URL, hashes: [String]) {
        let store = try scratchStore()
        var hashes: [String] = []
        var results: [StoredResult] = []
        for i in 0..<count {
            let hash = try store.media.put(Data("image \(i)".utf8), ext: "png")
            hashes.append(hash)
            results.append(result("fp\(i)", media: [(hash, "png")]))
        }
        try store.commit(results: results, states: (0..<count).map { state("a", "s\($0)", "fp\($0)") }, workflow: "wf")
        return (store.root, hashes)
    }

    /// A store whose file is nearly all `results` pages: 1,200 rows of ~600 bytes (within one page each, so
    /// no overflow pages, whose garbage SQLite could read back without noticing), and nothing else.
    func resultsOnlyStore() throws -> URL {
        let store = try scratchStore()
        let padding = String(repeating: "x", count: 600)
        try store.commit(results: (0..<1200).map { result("fp\($0)", outputs: #"{"text":"\#($0) \#(padding)"}"#) },
                         states: [], workflow: "wf")
        return store.root
    }

    @Test("a sound store passes; unreferenced objects and partial writes are counted, not damage")
    func soundStore() throws {
        let (root, _) = try filledStore(count: 3)
        let media = try MediaStore(root: root.appendingPathComponent("media"))
        try media.put(Data("orphan".utf8), ext: "png")
        try Data("half".utf8).write(to: media.root.appendingPathComponent("tmp/x.part"))
        let report = try StoreCheck.run(storeRoot: root)
        #expect(report.databaseIsSound && !report.damaged)
        #expect(report.mediaChecked == 4 && report.orphans == 1 && report.temporaries == 1)
        #expect(report.orphanBytes == Int64("orphan".utf8.count))
        #expect(report.description.contains("no damage found"))
    }

    @Test("a flipped byte in a media file is found with its expected and actual hash, and repair makes it recomputable")
    func flippedByte() throws {
        let (root, hashes) = try filledStore(count: 3)
        let media = try MediaStore(root: root.appendingPathComponent("media"))
        let victim = media.url(hash: hashes[1], ext: "png")
        var bytes = try Data(contentsOf: victim)
        bytes[2] ^= 0x01
        try bytes.write(to: victim)
        try FileManager.default.removeItem(at: media.url(hash: hashes[2], ext: "png"))

        let report = try StoreCheck.run(storeRoot: root)
        #expect(report.damaged && report.databaseIsSound)
        let relative = "media/\(hashes[1].prefix(2))/\(hashes[1]).png"
        #expect(report.corrupt == [.init(path: relative, expected: hashes[1], actual: Hashing.sha256Hex(bytes), referencedBy: 1)])
        #expect(report.missing.map(\.expected) == [hashes[2]])
        #expect(report.description.contains("damaged \(relative): expected sha256 \(hashes[1]), found \(Hashing.sha256Hex(bytes))"))
        #expect(report.description.contains("missing media/\(hashes[2].prefix(2))/\(hashes[2]).png (referenced by 1 result)"))
        #expect(report.description.contains("cache check --repair"))

        let store = try ProjectStore(root: root)
        let repair = try store.repairMedia(report)
        #expect(repair.filesRemoved == 1 && repair.resultsForgotten == 2)
        #expect(!FileManager.default.fileExists(atPath: victim.path))
        #expect(Set(try store.results(for: ["fp0", "fp1", "fp2"]).keys) == ["fp0"])
        #expect(try store.stateIndex(workflow: "wf")["a"]?.keys.sorted() == ["s0"])   // the others plan as new
        #expect(!(try StoreCheck.run(storeRoot: root)).damaged)
    }

    @Test("garbage over a page in the middle of store.sqlite fails SQLite's integrity check with its messages")
    func damagedPage() throws {
        let root = try resultsOnlyStore()
        let file = root.appendingPathComponent("store.sqlite")
        let wal = (try? FileManager.default.attributesOfItem(atPath: file.path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0)   // closing the store folded its log into the file
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int)
        let pageSize = 4096
        #expect(size / pageSize > 100)   // the middle page is one of the results table's
        let handle = try FileHandle(forWritingTo: file)
        try handle.seek(toOffset: UInt64(size / pageSize / 2 * pageSize))
        // Starts with 0xA7, which is no valid page type.
        try handle.write(contentsOf: Data((0..<pageSize).map { UInt8(truncatingIfNeeded: 0xA7 + $0 * 31) }))
        try handle.close()

        let report = try StoreCheck.run(storeRoot: root)
        #expect(!report.databaseIsSound && report.damaged)
        #expect(!report.database.isEmpty && !report.database.contains("ok"))
        #expect(report.description.contains("database  DAMAGED: SQLite reports for store.sqlite:"))
        #expect(report.description.contains("move \(file.path) (with its -wal and -shm files, if any) aside and run again"))
        #expect(throws: StoreError.self) { try ProjectStore(root: root).repairMedia(report) }

        // Reading the damaged rows says which file is damaged and how to recover.
        let store = try ProjectStore(root: root)
        do {
            _ = try store.results(for: (0..<1200).map { "fp\($0)" })
            Issue.record("reading every result of a damaged database succeeded")
        } catch {
            #expect(StoreDamage.isDamage(error))
            let text = "\(StoreDamage.explained(error, storeRoot: root))"
            #expect(text.contains("the store database \(file.path) is damaged"))
            #expect(text.contains("storyloom cache check --store \(root.path)"))
        }
    }

    @Test("a store.sqlite that is not a database at all refuses to open, saying how to recover")
    func notADatabase() throws {
        let root = try scratchStore().root
        let file = root.appendingPathComponent("store.sqlite")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
        try Data(String(repeating: "not a database ", count: 500).utf8).write(to: file)
        #expect { try ProjectStore(root: root) } throws: { error in
            let text = "\(error)"
            return text.contains("the store database \(file.path) is damaged") && text.contains("not a database")
                && text.contains("cache check --store \(root.path)") && text.contains("aside and run again")
        }
        let report = try StoreCheck.run(storeRoot: root)
        #expect(report.damaged && report.orphans == nil)
        #expect(report.database.joined().contains("not a database"))
    }

    @Test("checking a folder that holds no store names what it expected")
    func noStore() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-empty-\(UUID().uuidString)")
        #expect { try StoreCheck.run(storeRoot: empty) } throws: { "\($0)".contains("no store at \(empty.path) (expected \(empty.path)/store.sqlite)") }
    }
}
