import Foundation
import Store
import Testing

@Suite struct ProjectStoreTests {
    @Test("results round-trip with their outputs, vectors and status; states index by step and item")
    func resultsAndStatesRoundTrip() throws {
        let store = try scratchStore()
        let failed = StoredResult(fingerprint: "fp-bad", stepKind: "command", status: .failed, outputs: nil,
                                  error: "exit 2: refused", seconds: 0.1)
        try store.commit(results: [result("fp-a", vectors: ["image_embedding": [0.25, -1, 3.5]]), result("fp-b"), failed],
                         states: [state("small", "s1#1", "fp-a"), state("small", "s1#2", "fp-b"), state("picky", "s1", "fp-bad", ok: false)],
                         workflow: "wf")

        let back = try store.results(for: ["fp-a", "fp-b", "fp-bad", "fp-unknown"])
        #expect(Set(back.keys) == ["fp-a", "fp-b", "fp-bad"])
        #expect(back["fp-a"]?.status == .ok)
        #expect(back["fp-a"]?.outputs == Data(#"{"text":"hi"}"#.utf8))
        #expect(back["fp-a"]?.vectors == ["image_embedding": [0.25, -1, 3.5]])
        #expect(back["fp-a"]?.modelDigest == "digest")
        #expect(back["fp-bad"]?.status == .failed)
        #expect(back["fp-bad"]?.error == "exit 2: refused")
        #expect(try store.okFingerprints(among: ["fp-a", "fp-b", "fp-bad", "fp-unknown"]) == ["fp-a", "fp-b"])

        let index = try store.stateIndex(workflow: "wf")
        #expect(index["small"]?["s1#1"]?.fingerprint == "fp-a")
        #expect(index["small"]?["s1#2"]?.ok == true)
        #expect(index["picky"]?["s1"]?.ok == false)
        #expect(try store.stateIndex(workflow: "other").isEmpty)
        let one = try #require(try store.state(workflow: "wf", stepID: "small", itemID: "s1#1"))
        #expect(one.fingerprint == "fp-a" && one.status == .ok && one.components == Data(#"{"param":1}"#.utf8))
        #expect(try store.components(workflow: "wf", stepID: "small", itemIDs: ["s1#1", "s1#9"]).keys.sorted() == ["s1#1"])
    }

    @Test("a recommitted fingerprint replaces its result and vectors; states are replaced, pruned and deleted")
    func replaceAndPrune() throws {
        let store = try scratchStore()
        try store.commit(results: [result("fp", vectors: ["v": [1, 2]])], states: [state("a", "s1", "fp")], workflow: "wf")
        try store.commit(results: [result("fp", outputs: #"{"text":"again"}"#)], states: [state("a", "s1", "fp2")], workflow: "wf")
        let back = try #require(try store.results(for: ["fp"])["fp"])
        #expect(back.outputs == Data(#"{"text":"again"}"#.utf8))
        #expect(back.vectors.isEmpty)
        #expect(try store.stateIndex(workflow: "wf")["a"]?["s1"]?.fingerprint == "fp2")

        try store.saveStates([state("b", "s1", "fp"), state("b", "s2", "fp")], workflow: "wf")
        try store.deleteStates(workflow: "wf", stepID: "b", itemIDs: ["s2"])
        #expect(try store.stateIndex(workflow: "wf")["b"]?.keys.sorted() == ["s1"])
        try store.pruneStates(workflow: "wf", keepSteps: ["b"])
        #expect(try store.stateIndex(workflow: "wf").keys.sorted() == ["b"])
    }

    @Test("runs are recorded with status and summary; the latest run is per workflow")
    func runs() throws {
        let store = try scratchStore()
        let first = try store.beginRun(workflow: "wf", specPath: "/w/wf.yaml")
        try store.finishRun(id: first, status: "ok", summary: Data("{}".utf8))
        let other = try store.beginRun(workflow: "other", specPath: "/w/other.yaml")
        let latest = try #require(try store.latestRun(workflow: "wf"))
        #expect(latest.id == first && latest.status == "ok" && latest.summary == Data("{}".utf8) && latest.finishedAt != nil)
        #expect(try store.latestRun(workflow: "other")?.status == "running")
        #expect(try store.runs().map(\.id) == [other, first])
        #expect(try store.latestRun(workflow: "none") == nil)
    }

    @Test("a store reopens with everything in it")
    func reopen() throws {
        let root: URL
        do {
            let store = try scratchStore()
            root = store.root
            try store.commit(results: [result("fp")], states: [state("a", "s1", "fp")], workflow: "wf")
        }
        let again = try ProjectStore(root: root)
        #expect(try again.okFingerprints(among: ["fp"]) == ["fp"])
        #expect(try again.integrityCheck() == "ok")
    }

    @Test("file hashes are SHA-256 of the content and follow edits")
    func fileHashes() throws {
        let store = try scratchStore()
        let file = store.root.appendingPathComponent("weights.bin")
        try Data("abc".utf8).write(to: file)
        // SHA-256("abc"), the FIPS 180-2 test vector.
        #expect(try store.fileHashes(for: [file])[file.path] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        try Data("abcd".utf8).write(to: file)
        #expect(try store.fileHashes(for: [file])[file.path] == Hashing.sha256Hex(Data("abcd".utf8)))
    }
}
