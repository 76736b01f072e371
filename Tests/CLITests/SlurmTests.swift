import Foundation
import GRDB
import StoreTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A Slurm cluster the tests can submit to: `sinfo` answers with a usable node. CI starts a one-node cluster
/// (Tools/ci/slurm.sh) and sets STORYLOOM_TEST_SLURM=1, which turns a missing cluster into a failure.
enum SlurmCluster {
    static let required = ProcessInfo.processInfo.environment["STORYLOOM_TEST_SLURM"] == "1"
    static let up: Bool = {
        guard let out = try? command("sinfo", ["-h", "-o", "%T"]), out.status == 0 else { return false }
        return ["idle", "mixed", "allocated"].contains { out.stdout.contains($0) }
    }()
    static let reason = "no Slurm cluster answers sinfo (start one with `bash Tools/ci/slurm.sh start`; CI does)"

    /// Runs a command to completion (polled: Process.waitUntilExit spins on Linux).
    static func command(_ name: String, _ args: [String]) throws -> (status: Int32, stdout: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [name] + args
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-test-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        defer { try? handle.close() }
        p.standardOutput = handle
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        while p.isRunning { usleep(5000) }
        return (p.terminationStatus, try String(contentsOf: out, encoding: .utf8))
    }
}

@Suite(.serialized, .enabled(if: SlurmCluster.up || SlurmCluster.required, Comment(rawValue: SlurmCluster.reason)))
struct SlurmTests {
    static let clip = CLI.repository.appendingPathComponent("Examples/StoryWorld/models/clip").path

    /// Two stages (the retrieval pool ends the first), media, vectors and texts over 120 StoryWorld stories.
    /// Embeddings and retrieval scores are computed one item per batch on one thread on both sides: their float
    /// sums depend on batch composition (sgemm blocking) and thread count, and the test wants bit-equal results.
    func workflow(_ name: String) -> String {
        """
        name: \(name)
        collection:
          world: {seed: 3, stories: 120, dialogues: 0, display_size: 32}
        models:
          clip: {kind: clip, path: \(Self.clip)}
        steps:
          - {id: small, use: thumbnail, inputs: {image: image}, params: {width: 16, height: 16}}
          - {id: story, use: template, inputs: {texts: texts}, params: {template: "{texts}"}}
          - {id: emb, use: embed, model: clip, panels: last, batch_size: 1, inputs: {image: image}}
          - {id: ret, use: retrieve, panels: last, batch_size: 1, inputs: {query: emb.image_embedding, pool: emb.image_embedding}, params: {k: 3, exclude_same_entry: true}}
        """
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    /// What a store holds, as comparable rows (timings left out).
    func contents(_ store: URL) throws -> [String: [String]] {
        let db = try DatabaseQueue(path: store.appendingPathComponent("store.sqlite").path)
        var out: [String: [String]] = [:]
        let queries = [
            "states": "SELECT workflow, step_id, item_id, fingerprint, status, hex(components) FROM item_states ORDER BY 1, 2, 3",
            "results": "SELECT fingerprint, step_kind, status, hex(outputs), error, model_digest FROM results ORDER BY 1",
            "vectors": "SELECT fingerprint, name, dim, hex(data) FROM vectors ORDER BY 1, 2",
            "media": "SELECT fingerprint, hash, ext FROM result_media ORDER BY 1, 2",
        ]
        try db.read { db in
            for (name, sql) in queries {
                out[name] = try Row.fetchAll(db, sql: sql).map { row in
                    (0..<row.count).map { i in (row[i] as DatabaseValue).description }.joined(separator: "|")
                }
            }
        }
        out["files"] = try mediaFiles(store.appendingPathComponent("media"))
        return out
    }

    @Test func slurmRunStoresWhatALocalRunStores() throws {
        try #require(SlurmCluster.up, Comment(rawValue: "STORYLOOM_TEST_SLURM=1 but " + SlurmCluster.reason))
        let cli = try CLI()
        try cli.write(workflow("slurm-parity"), to: "wf.yaml")
        let local = try cli.run(["run", "wf.yaml", "--store", "local", "--threads", "1", "--no-gallery", "--quiet"])
        #expect(local.status == 0, "\(local.stderr)")

        let slurm = try cli.run(["run", "wf.yaml", "--store", "slurm", "--executor", "slurm", "--shards", "4", "--json"])
        #expect(slurm.status == 0, "\(slurm.stdout)\n\(slurm.stderr)")
        let summary = try json(slurm.stdout)
        let record = try #require(summary["slurm"] as? [String: Any], "no Slurm record in \(slurm.stdout)")
        let stages = try #require(record["stages"] as? [[String: Any]])
        #expect(stages.count == 2)
        #expect(stages.map { $0["steps"] as? [String] ?? [] } == [["small", "story", "emb"], ["ret"]])
        #expect(stages.allSatisfy { (($0["jobs"] as? [[String: Any]])?.first?["indices"] as? [Int]) == [0, 1, 2, 3] })
        // The gallery is rendered locally from the store.
        let gallery = try #require(summary["gallery"] as? String)
        #expect(FileManager.default.fileExists(atPath: gallery))

        let a = try contents(cli.root.appendingPathComponent("local"))
        let b = try contents(cli.root.appendingPathComponent("slurm"))
        let expectedStates = 120 * 5 + 3 * 120   // small per panel; story, emb and ret once per story
        #expect(a["states"]?.count == expectedStates)
        for key in ["states", "results", "vectors", "media", "files"] {
            let (x, y) = (a[key] ?? [], b[key] ?? [])
            let differ = Set(x).symmetricDifference(y).map { String($0.prefix(160)) }.sorted()
            let same = x == y   // not inside #expect, which would print every row
            #expect(same, "\(key): \(x.count) local rows, \(y.count) Slurm rows, \(differ.count) differ, e.g. \(differ.prefix(4))")
        }

        // Nothing stale: nothing submitted.
        let again = try cli.run(["run", "wf.yaml", "--store", "slurm", "--executor", "slurm", "--shards", "4", "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        let second = try json(again.stdout)
        #expect(second["slurm"] == nil, "a no-op run submitted jobs: \(again.stdout)")
        #expect((second["steps"] as? [[String: Any]])?.allSatisfy { $0["ran"] as? Int == 0 } == true)
    }

    /// Many nodes share a PostgreSQL store: the tasks open it from the URL the batch script passes (the
    /// password would come from PGPASSWORD) and write the media to the shared folder.
    @Test(.enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipReason)))
    func slurmRunOnPostgresStoresWhatALocalRunStores() throws {
        try #require(SlurmCluster.up, Comment(rawValue: "STORYLOOM_TEST_SLURM=1 but " + SlurmCluster.reason))
        let url = TestPostgres.url(of: try TestPostgres.freshDatabase())
        let cli = try CLI()
        try cli.write(workflow("slurm-postgres"), to: "wf.yaml")
        let local = try cli.run(["run", "wf.yaml", "--store", "local", "--threads", "1", "--no-gallery", "--quiet"])
        #expect(local.status == 0, "\(local.stderr)")
        let shared = ["--store", url, "--media", "shared"]
        let slurm = try cli.run(["run", "wf.yaml", "--executor", "slurm", "--shards", "4", "--json"] + shared)
        #expect(slurm.status == 0, "\(slurm.stdout)\n\(slurm.stderr)")
        let stages = try #require((try json(slurm.stdout)["slurm"] as? [String: Any])?["stages"] as? [[String: Any]], "\(slurm.stdout)")
        #expect(stages.count == 2)

        // Every result as a table, and every media file, as a local SQLite run stores them.
        let a = try cli.run(["export", "wf.yaml", "--store", "local", "--format", "jsonl"])
        let b = try cli.run(["export", "wf.yaml", "--format", "jsonl"] + shared)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\n\(b.stderr)")
        #expect(a.stdout.split(separator: "\n").count >= 120, "the local export has fewer rows than stories: \(a.stdout.prefix(300))")
        // Image paths name each store's media folder; the rest is compared as is.
        let same = a.stdout.replacingOccurrences(of: "local/media/", with: "shared/media/") == b.stdout
        #expect(same, "the exports differ: \(a.stdout.count) vs \(b.stdout.count) characters")
        #expect(try contents(cli.root.appendingPathComponent("local"))["files"] == mediaFiles(cli.root.appendingPathComponent("shared/media")))

        let again = try cli.run(["run", "wf.yaml", "--executor", "slurm", "--shards", "4", "--json"] + shared)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try json(again.stdout)["slurm"] == nil, "a no-op run submitted jobs: \(again.stdout)")
    }

    func mediaFiles(_ media: URL) throws -> [String] {
        let files = (FileManager.default.enumerator(atPath: media.path)?.allObjects as? [String] ?? []).sorted()
        return try files.compactMap { path in
            let url = media.appendingPathComponent(path)
            guard (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { return nil }
            return "\(path) \(try Data(contentsOf: url).base64EncodedString())"
        }
    }

    @Test func aKilledTaskIsNamedAndTheNextRunSubmitsOnlyItsIndex() throws {
        try #require(SlurmCluster.up, Comment(rawValue: "STORYLOOM_TEST_SLURM=1 but " + SlurmCluster.reason))
        let cli = try CLI()
        try cli.writeStories(120)
        let name = "slurm-kill-\(UUID().uuidString.prefix(8).lowercased())"
        try cli.write("""
            name: \(name)
            collection: collection
            steps:
              - id: slow
                use: command
                scope: entry
                batch_size: 2
                params: {run: [sh, -c, 'sleep 0.15; echo "$1"', sh, "{item}:{a}"]}
                inputs: {a: texts}
              - {id: after, use: template, inputs: {a: slow}, params: {template: "done {a}"}}
            """, to: "wf.yaml")
        let args = ["run", "wf.yaml", "--store", "store", "--executor", "slurm", "--shards", "4", "--retries", "0", "--no-gallery"]
        let (p, out, err) = try cli.start(args)

        // Cancel array task 2 while it runs.
        var killed: String?
        let deadline = Date().addingTimeInterval(120)
        while killed == nil && p.isRunning && Date() < deadline {
            let queue = try SlurmCluster.command("squeue", ["-h", "-r", "-o", "%i|%T|%j"]).stdout
            for line in queue.split(separator: "\n") {
                let f = line.split(separator: "|").map(String.init)
                if f.count == 3, f[2].contains(name), f[0].hasSuffix("_2"), f[1] == "RUNNING" { killed = f[0] }
            }
            if let killed { _ = try SlurmCluster.command("scancel", [killed]) } else { usleep(100_000) }
        }
        let task = try #require(killed, "array task 2 was never seen running")
        while p.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!p.isRunning)
        let stdout = try String(contentsOf: out, encoding: .utf8)
        let stderr = try String(contentsOf: err, encoding: .utf8)
        #expect(p.terminationStatus == 1, "\(stdout)\n\(stderr)")
        // The summary names the task, its shard and its log.
        let line = try #require(stdout.split(separator: "\n").first { $0.contains("failed task \(task)") }, "\(stdout)")
        #expect(line.contains("shard 2/4") && line.contains("CANCELLED"))
        let log = try #require(line.components(separatedBy: "log: ").last)
        #expect(FileManager.default.fileExists(atPath: log), "\(log)")

        // The next run submits index 2 alone (N still 4), and finishes the work.
        let second = try cli.run(args + ["--json"])
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        let summary = try json(second.stdout)
        let stages = try #require((summary["slurm"] as? [String: Any])?["stages"] as? [[String: Any]], "\(second.stdout)")
        #expect(stages.count == 1)
        #expect((stages.first?["jobs"] as? [[String: Any]])?.map { $0["indices"] as? [Int] ?? [] } == [[2]])
        let slow = (summary["steps"] as? [[String: Any]])?.first { $0["id"] as? String == "slow" }
        #expect((slow?["ran"] as? Int ?? 0) > 0 && (slow?["ran"] as? Int ?? 0) <= 30, "shard 2 owns entries 60..<90: \(String(describing: slow))")

        // A third submits nothing.
        let third = try cli.run(args + ["--json"])
        #expect(third.status == 0)
        #expect(try json(third.stdout)["slurm"] == nil, "\(third.stdout)")
        let states = try contents(cli.root.appendingPathComponent("store"))["states"] ?? []
        #expect(states.count == 240 && states.allSatisfy { $0.contains("|\"ok\"|") })
    }
}

extension SlurmTests {
    /// Ctrl-C (SIGINT) cancels every job the run submitted and exits 130.
    @Test func interruptCancelsTheJobs() throws {
        try #require(SlurmCluster.up, Comment(rawValue: "STORYLOOM_TEST_SLURM=1 but " + SlurmCluster.reason))
        let cli = try CLI()
        try cli.writeStories(40)
        let name = "slurm-int-\(UUID().uuidString.prefix(8).lowercased())"
        try cli.write("""
            name: \(name)
            collection: collection
            steps:
              - {id: slow, use: command, scope: entry, batch_size: 2, inputs: {a: texts}, params: {run: [sh, -c, 'sleep 0.3; echo "$1"', sh, "{item}"]}}
            """, to: "wf.yaml")
        let (p, out, _) = try cli.start(["run", "wf.yaml", "--store", "store", "--executor", "slurm", "--shards", "4", "--no-gallery"])
        func ours() throws -> [String] {
            try SlurmCluster.command("squeue", ["-h", "-r", "-o", "%i|%T|%j"]).stdout.split(separator: "\n").map(String.init).filter { $0.contains(name) }
        }
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline, try !ours().contains(where: { $0.contains("|RUNNING|") }) { usleep(100_000) }
        #expect(p.isRunning, "the run ended before a task was seen running")
        kill(p.processIdentifier, SIGINT)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        #expect(p.terminationStatus == 130)
        #expect(try String(contentsOf: out, encoding: .utf8).contains("interrupted"))
        // scancel'd: the tasks leave the queue (after Slurm's short completing phase).
        var left = try ours()
        while !left.isEmpty && Date() < deadline { usleep(200_000); left = try ours() }
        #expect(left.isEmpty, "still queued after Ctrl-C: \(left)")
    }
}

/// What `run --executor slurm` says without Slurm's client commands (no cluster needed).
@Suite struct SlurmClientMissingTests {
    @Test func sbatchMissingSaysWhatToDo() throws {
        let cli = try CLI()
        try cli.writeStories(3)
        try cli.write("""
            collection: collection
            steps:
              - {id: t, use: template, inputs: {texts: texts}, params: {template: "{texts}"}}
            """, to: "wf.yaml")
        let r = try cli.run(["run", "wf.yaml", "--store", "store", "--executor", "slurm", "--shards", "2", "--no-gallery"],
                            environment: ["PATH": cli.root.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("sbatch not found on PATH") && r.stderr.contains("slurm-client") && r.stderr.contains("--executor local"), "\(r.stderr)")
        let usage = try cli.run(["run", "wf.yaml", "--store", "store", "--executor", "slurm", "--no-gallery"])
        #expect(usage.status != 0 && usage.stderr.contains("--shards"), "\(usage.stderr)")
    }
}
