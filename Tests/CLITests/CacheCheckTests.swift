import Foundation
import Store
import Testing

/// `storyloom cache check`: damage is found, named and exits non-zero; `--repair` makes damaged media
/// recomputable; a damaged database stops `run` with a way out.
@Suite struct CacheCheckTests {
    static let workflow = """
        name: check
        collection: collection
        steps:
          - id: small
            use: thumbnail
            inputs: {image: image}
            params: {width: 8, height: 8}
        """

    @Test("a flipped byte in a media file is named with expected and actual hash; --repair and a run restore it")
    func flippedMediaByte() throws {
        let cli = try CLI()
        try cli.writeImageStories(2, in: "collection")
        try cli.write(Self.workflow, to: "wf.yaml")
        #expect(try cli.run(["run", "wf.yaml", "--store", "store", "--quiet", "--no-gallery"]).status == 0)
        let clean = try cli.run(["cache", "check", "--store", "store"])
        #expect(clean.status == 0 && clean.stdout.contains("no damage found"), "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("4 objects hashed: 0 damaged, 0 missing"))

        let media = try ProjectStore(root: cli.root.appendingPathComponent("store")).media
        let victim = try #require(media.allObjects().sorted { $0.hash < $1.hash }.first)
        var bytes = try Data(contentsOf: victim.url)
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: victim.url)

        let damaged = try cli.run(["cache", "check", "--store", "store"])
        #expect(damaged.status == 1)
        let relative = "media/\(victim.hash.prefix(2))/\(victim.hash).\(victim.ext)"
        #expect(damaged.stdout.contains("damaged \(relative): expected sha256 \(victim.hash), found \(Hashing.sha256Hex(bytes)) (referenced by 1 result)"),
                "\(damaged.stdout)")
        #expect(damaged.stdout.contains("--repair"))

        let repaired = try cli.run(["cache", "check", "--store", "store", "--repair"])
        #expect(repaired.status == 0 && repaired.stdout.contains("repaired: removed 1 damaged media files, forgot 1 results"), "\(repaired.stdout)\(repaired.stderr)")
        let rerun = try cli.run(["run", "wf.yaml", "--store", "store", "--no-gallery", "--json"])
        #expect(rerun.status == 0 && rerun.stdout.contains("\"ran\" : 1"), "\(rerun.stdout)")
        #expect(try cli.run(["cache", "check", "--store", "store"]).status == 0)
        #expect(try Data(contentsOf: victim.url) != bytes)   // rewritten from a recomputation
    }

    @Test("garbage over a page in the middle of store.sqlite: check prints SQLite's messages and exits 1")
    func damagedDatabasePage() throws {
        let cli = try CLI()
        let root = cli.root.appendingPathComponent("store")
        do {
            // Nearly all of this file is `results` pages (rows of ~600 bytes, within a page each).
            let store = try ProjectStore(root: root)
            let padding = String(repeating: "y", count: 600)
            try store.commit(results: (0..<1200).map {
                StoredResult(fingerprint: "fp\($0)", stepKind: "template", status: .ok,
                             outputs: Data(#"{"text":"\#($0) \#(padding)"}"#.utf8), error: nil, seconds: 0)
            }, states: [], workflow: "wf")
        }
        let file = root.appendingPathComponent("store.sqlite")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int)
        #expect(size / 4096 > 100)
        let handle = try FileHandle(forWritingTo: file)
        try handle.seek(toOffset: UInt64(size / 4096 / 2 * 4096))
        try handle.write(contentsOf: Data(repeating: 0xEE, count: 4096))
        try handle.close()

        let check = try cli.run(["cache", "check", "--store", "store"])
        #expect(check.status == 1)
        #expect(check.stdout.contains("database  DAMAGED: SQLite reports for store.sqlite:"), "\(check.stdout)")
        #expect(check.stdout.contains("move \(file.path) (with its -wal and -shm files, if any) aside and run again"))
        let json = try cli.run(["cache", "check", "--store", "store", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let messages = report?["database"] as? [String] ?? []
        #expect(json.status == 1 && !messages.isEmpty && !messages.contains("ok"))
    }

    @Test("run on a store.sqlite full of garbage names the file, the check and the way to recover")
    func runOnGarbage() throws {
        let cli = try CLI()
        try cli.writeImageStories(1, in: "collection")
        try cli.write(Self.workflow, to: "wf.yaml")
        let store = try cli.folder("store")
        try Data(String(repeating: "garbage ", count: 1000).utf8).write(to: store.appendingPathComponent("store.sqlite"))
        let run = try cli.run(["run", "wf.yaml", "--store", "store"])
        #expect(run.status == 1)
        let db = store.appendingPathComponent("store.sqlite").path
        #expect(run.stderr.contains("the store database \(db) is damaged"), "\(run.stderr)")
        #expect(run.stderr.contains("storyloom cache check --store \(store.path)"))
        #expect(run.stderr.contains("move \(db) (with its -wal and -shm files, if any) aside and run again"))
        // Doing just that recovers.
        try FileManager.default.moveItem(atPath: db, toPath: db + ".damaged")
        #expect(try cli.run(["run", "wf.yaml", "--store", "store", "--quiet"]).status == 0)
    }
}
