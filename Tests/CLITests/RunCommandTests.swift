import Foundation
import GRDB
import Store
import Testing

@Suite(.serialized) struct RunCommandTests {

    func outputs(_ store: ProjectStore) throws -> [String: Data] {
        try store.db.read { db in
            var out: [String: Data] = [:]
            for row in try GRDB.Row.fetchAll(db, sql: "SELECT fingerprint, outputs FROM results WHERE status = 'ok'") {
                out[row[0]] = row[1]
            }
            return out
        }
    }

    @Test func killedRunResumesToTheSameResults() throws {
        let cli = try CLI()
        try cli.writeStories(30)
        try cli.write(CLI.slowWorkflow, to: "wf.yaml")
        let (p, _, _) = try cli.start(["run", "wf.yaml", "--store", "store", "--no-gallery", "--quiet"])
        // Wait until a few batches are committed, then kill -9 in the middle of the step.
        let store = try ProjectStore(root: cli.root.appendingPathComponent("store"))
        var committed = 0
        let deadline = Date().addingTimeInterval(60)
        while committed < 6 && Date() < deadline {
            usleep(20_000)
            committed = (try? store.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM results") ?? 0 }) ?? 0
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(committed >= 6)
        #expect(try store.integrityCheck() == "ok")
        let partial = try outputs(store).count
        #expect(partial < 60)

        let resumed = try cli.run(["run", "wf.yaml", "--store", "store", "--no-gallery", "--json"])
        #expect(resumed.status == 0)
        let summary = try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any]
        let steps = summary?["steps"] as? [[String: Any]]
        let ranWork = steps?.first { $0["id"] as? String == "work" }?["ran"] as? Int ?? -1
        #expect(ranWork > 0 && ranWork < 30)   // only what the killed run had not committed

        let clean = try cli.run(["run", "wf.yaml", "--store", "clean", "--no-gallery", "--quiet"])
        #expect(clean.status == 0)
        let a = try outputs(store), b = try outputs(try ProjectStore(root: cli.root.appendingPathComponent("clean")))
        #expect(a.count == 60)
        #expect(a == b)
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func ctrlCStopsAfterTheBatchesInFlightAndTheNextRunContinues() throws {
        let cli = try CLI()
        try cli.writeStories(30)
        try cli.write(CLI.slowWorkflow, to: "wf.yaml")
        let (p, out, _) = try cli.start(["run", "wf.yaml", "--store", "store", "--no-gallery", "--json"])
        let store = try ProjectStore(root: cli.root.appendingPathComponent("store"))
        var committed = 0
        let deadline = Date().addingTimeInterval(60)
        while committed < 4 && Date() < deadline {
            usleep(20_000)
            committed = (try? store.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM results") ?? 0 }) ?? 0
        }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any]
        #expect(summary?["status"] as? String == "interrupted")
        let kept = try outputs(store).count
        #expect(kept >= 4 && kept < 60)
        let resumed = try cli.run(["run", "wf.yaml", "--store", "store", "--no-gallery", "--quiet"])
        #expect(resumed.status == 0)
        #expect(try outputs(store).count == 60)
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func aSecondRunOnTheSameStoreRefusesOrWaits() throws {
        let cli = try CLI()
        try cli.writeStories(16)
        try cli.write(CLI.slowWorkflow, to: "wf.yaml")
        let (first, _, _) = try cli.start(["run", "wf.yaml", "--store", "store", "--no-gallery", "--quiet"])
        usleep(300_000)
        let refused = try cli.run(["run", "wf.yaml", "--store", "store", "--no-gallery"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("another storyloom run (pid \(first.processIdentifier)) is using the store"))
        let waited = try cli.run(["run", "wf.yaml", "--store", "store", "--no-gallery", "--wait", "--json"])
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(waited.status == 0)
        #expect(waited.stdout.contains("\"ran\" : 0"))
        #expect(try ProjectStore(root: cli.root.appendingPathComponent("store")).integrityCheck() == "ok")
    }

    @Test func planJSONAndValidationErrors() throws {
        let cli = try CLI()
        try cli.writeStories(3)
        try cli.write(CLI.slowWorkflow, to: "wf.yaml")
        let plan = try cli.run(["plan", "wf.yaml", "--store", "store", "--json"])
        #expect(plan.status == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        let steps = obj?["steps"] as? [[String: Any]]
        #expect(steps?.map { $0["id"] as? String } == ["work", "after"])
        #expect(steps?.first?["new"] as? Int == 3)
        #expect(steps?.first?["cached"] as? Int == 0)

        try cli.write("collection: collection\nsteps:\n  - id: x\n    use: templat\n", to: "bad.yaml")
        let bad = try cli.run(["plan", "bad.yaml", "--store", "store"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("bad.yaml:4:10: error: unknown step kind \"templat\" (did you mean \"template\"?)"))
    }
}
