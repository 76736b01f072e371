import Foundation
import Store
import StoreTestSupport
import Testing

/// `storyloom run` against a PostgreSQL store, as processes: a killed run resumes, a second run refuses or
/// waits, and the store's settings (`--store URL`, `media:`, `STORYLOOM_MEDIA`) say what is missing.
@Suite(.serialized, .enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipReason)))
struct PostgresRunTests {
    /// The slow workflow with its media in a folder of the test's (the PostgreSQL store needs one).
    let slowWorkflow = CLI.slowWorkflow.replacingOccurrences(of: "collection: collection\n", with: "collection: collection\nmedia: shared-media\n")

    func outputs(_ store: PostgresStore, _ workflow: String = "slow") throws -> [String: Data] {
        let fps = try store.stateIndex(workflow: workflow).values.flatMap { $0.values.map(\.fingerprint) }
        return try store.results(for: fps).compactMapValues { $0.status == .ok ? $0.outputs : nil }
    }

    @Test func killedRunResumesToTheSameResults() throws {
        let cli = try CLI()
        try cli.writeStories(30)
        try cli.write(slowWorkflow, to: "wf.yaml")
        let address = try TestPostgres.freshDatabase()
        let url = TestPostgres.url(of: address)
        let (p, _, _) = try cli.start(["run", "wf.yaml", "--store", url, "--no-gallery", "--quiet"])
        let store = try PostgresStore(address: address, mediaFolder: cli.root.appendingPathComponent("shared-media"))
        var committed = 0
        let deadline = Date().addingTimeInterval(60)
        while committed < 6 && Date() < deadline {
            usleep(20_000)
            committed = (try? store.stats().results) ?? 0
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(committed >= 6)
        #expect(try outputs(store).count < 60)

        // The killed run's lock went with its connection: the next run starts at once and does the rest.
        let resumed = try cli.run(["run", "wf.yaml", "--store", url, "--no-gallery", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any]
        let steps = summary?["steps"] as? [[String: Any]]
        let ranWork = steps?.first { $0["id"] as? String == "work" }?["ran"] as? Int ?? -1
        #expect(ranWork > 0 && ranWork < 30)

        let clean = try cli.run(["run", "wf.yaml", "--store", "clean", "--no-gallery", "--quiet"], environment: [:])
        #expect(clean.status != 0)   // media: is for PostgreSQL only
        #expect(clean.stderr.contains("names a shared media folder, which only a PostgreSQL store"))
        try cli.write(CLI.slowWorkflow, to: "sqlite.yaml")
        #expect(try cli.run(["run", "sqlite.yaml", "--store", "clean", "--no-gallery", "--quiet"]).status == 0)
        let sqlite = try ProjectStore(root: cli.root.appendingPathComponent("clean"))
        let fps = try sqlite.stateIndex(workflow: "slow").values.flatMap { $0.values.map(\.fingerprint) }
        let b = try sqlite.results(for: fps).compactMapValues { $0.outputs }
        let a = try outputs(store)
        #expect(a.count == 60)
        #expect(a == b)
    }

    @Test func aSecondRunOnTheSameDatabaseRefusesOrWaits() throws {
        let cli = try CLI()
        try cli.writeStories(16)
        try cli.write(CLI.slowWorkflow, to: "wf.yaml")
        let address = try TestPostgres.freshDatabase()
        let url = TestPostgres.url(of: address)
        let media = ["STORYLOOM_MEDIA": cli.root.appendingPathComponent("shared-media").path]
        let (first, _, _) = try cli.start(["run", "wf.yaml", "--store", url, "--no-gallery", "--quiet"], environment: media)
        usleep(500_000)
        let refused = try cli.run(["run", "wf.yaml", "--store", url, "--no-gallery"], environment: media)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("another storyloom run (storyloom run pid \(first.processIdentifier) on "))
        #expect(refused.stderr.contains("is using the store at \(address); wait for it to finish or pass --wait"))
        let waited = try cli.run(["run", "wf.yaml", "--store", url, "--no-gallery", "--wait", "--json"], environment: media)
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stdout.contains("\"ran\" : 0"))
        let store = try PostgresStore(address: address, mediaFolder: cli.root.appendingPathComponent("shared-media"))
        #expect(try outputs(store).count == 32)
        #expect(try store.runs().count == 2)   // the refused run never began
    }

    @Test func cacheStatsCheckRepairAndGCWorkOnAPostgresStore() throws {
        let cli = try CLI()
        try cli.writeImageStories(2, in: "collection")
        try cli.write(CacheCheckTests.workflow, to: "wf.yaml")
        let store = ["--store", TestPostgres.url(of: try TestPostgres.freshDatabase()), "--media", "shared"]
        #expect(try cli.run(["run", "wf.yaml", "--quiet", "--no-gallery"] + store).status == 0)
        let stats = try cli.run(["cache", "stats", "--json"] + store)
        #expect(stats.status == 0 && stats.stdout.contains("\"mediaObjects\":4") && stats.stdout.contains("\"results\":4"), "\(stats.stdout)\(stats.stderr)")
        let clean = try cli.run(["cache", "check"] + store)
        #expect(clean.status == 0 && clean.stdout.contains("no damage found"), "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("database  PostgreSQL: not checked here"))

        let media = try MediaStore(root: cli.root.appendingPathComponent("shared/media"))
        let victim = try #require(media.allObjects().sorted { $0.hash < $1.hash }.first)
        var bytes = try Data(contentsOf: victim.url)
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: victim.url)
        let damaged = try cli.run(["cache", "check"] + store)
        #expect(damaged.status == 1)
        #expect(damaged.stdout.contains("damaged media/\(victim.hash.prefix(2))/\(victim.hash).\(victim.ext): expected sha256 \(victim.hash), found \(Hashing.sha256Hex(bytes)) (referenced by 1 result)"),
                "\(damaged.stdout)")
        let repaired = try cli.run(["cache", "check", "--repair"] + store)
        #expect(repaired.status == 0 && repaired.stdout.contains("repaired: removed 1 damaged media files, forgot 1 results"), "\(repaired.stdout)\(repaired.stderr)")
        let rerun = try cli.run(["run", "wf.yaml", "--no-gallery", "--json"] + store)
        #expect(rerun.status == 0 && rerun.stdout.contains("\"ran\" : 1"), "\(rerun.stdout)")
        #expect(try cli.run(["cache", "check"] + store).status == 0)
        #expect(try Data(contentsOf: victim.url) != bytes)
        let gc = try cli.run(["cache", "gc", "--dry-run"] + store)
        #expect(gc.status == 0 && gc.stdout.contains("would remove 0 results and 0 media objects"), "\(gc.stdout)\(gc.stderr)")
    }
}

/// The settings of a PostgreSQL store, checked without a server.
@Suite struct PostgresSettingsTests {
    let workflow = """
        name: slow
        collection: collection
        steps:
          - id: after
            use: template
            inputs: {a: texts}
            params: {template: "done {a}"}
        """

    @Test func aPostgresStoreWithoutAMediaFolderSaysHowToNameOne() throws {
        let cli = try CLI()
        try cli.writeStories(2)
        try cli.write(workflow, to: "wf.yaml")
        let url = "postgresql://someone:topsecret@127.0.0.1:1/nowhere"
        let r = try cli.run(["plan", "wf.yaml", "--store", url], environment: ["STORYLOOM_MEDIA": ""])
        #expect(r.status != 0)
        #expect(r.stderr.contains("the store postgresql://someone@127.0.0.1:1/nowhere is a PostgreSQL database"))
        #expect(r.stderr.contains("media: DIR"))
        #expect(r.stderr.contains("--media DIR, or STORYLOOM_MEDIA=DIR"))
        #expect(!r.stderr.contains("topsecret"))
        let stats = try cli.run(["cache", "stats", "--store", url, "--media", "m"])
        #expect(stats.status != 0)
        #expect(stats.stderr.contains("cannot connect to the PostgreSQL store postgresql://someone@127.0.0.1:1/nowhere"))
        #expect(!stats.stderr.contains("topsecret"))
    }
}
