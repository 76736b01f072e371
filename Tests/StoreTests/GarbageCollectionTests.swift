import Foundation
import Store
import Testing

@Suite struct GarbageCollectionTests {
    @Test("gc removes results no state references and media no kept result references; a dry run only counts")
    func collects() throws {
        let store = try scratchStore()
        let kept = try store.media.put(Data("kept image".utf8), ext: "png")
        let dropped = try store.media.put(Data("dropped image".utf8), ext: "png")
        let stray = try store.media.put(Data("never referenced".utf8), ext: "png")
        try Data("half".utf8).write(to: store.media.root.appendingPathComponent("tmp/x.part"))
        try store.commit(results: [result("live", media: [(kept, "png")]),
                                   result("dead", vectors: ["v": [1]], media: [(dropped, "png")])],
                         states: [state("a", "s1", "live")], workflow: "wf")

        let dry = try store.collectGarbage(dryRun: true)
        #expect(dry.results == 1 && dry.mediaObjects == 2 && dry.temporaries == 0 && dry.dryRun)
        #expect(store.media.allObjects().count == 3)
        #expect(try store.results(for: ["dead"]).count == 1)

        let done = try store.collectGarbage(dryRun: false)
        #expect(done.results == 1 && done.mediaObjects == 2 && done.temporaries == 1)
        #expect(done.mediaBytes == Int64("dropped image".utf8.count + "never referenced".utf8.count))
        #expect(Set(try store.results(for: ["live", "dead"]).keys) == ["live"])
        #expect(store.media.allObjects().map(\.hash) == [kept])
        #expect(!store.media.contains(hash: dropped, ext: "png") && !store.media.contains(hash: stray, ext: "png"))
        #expect(try store.collectGarbage(dryRun: false).results == 0)
        #expect(try store.integrityCheck() == "ok")
    }
}
