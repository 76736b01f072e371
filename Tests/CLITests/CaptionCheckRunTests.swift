import Foundation
import Testing

/// `caption-check` in a run: the summary reports each attribute's accuracy over the captions that name it.
@Suite struct CaptionCheckRunTests {
    @Test("on the world's own captions every named attribute's mean is 1 and n counts the captions naming it; dialogue text 0 over all")
    func summaryAggregatesPerAttribute() throws {
        let cli = try CLI()
        defer { try? FileManager.default.removeItem(at: cli.root) }
        try cli.write("""
            name: captions
            collection:
              world: {seed: 5, stories: 6, dialogues: 4}
            steps:
              - {id: truth, use: caption-check, inputs: {caption: text}}
            """, to: "wf.yaml")
        let run = try cli.run(["run", "wf.yaml", "--store", "store", "--no-gallery", "--json", "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let step = try #require((json?["steps"] as? [[String: Any]])?.first { $0["id"] as? String == "truth" })
        #expect(step["ran"] as? Int == 6 * 5 + 4 && step["failed"] as? Int == 0)
        var scores: [String: (Double, Int)] = [:]
        for s in step["scores"] as? [[String: Any]] ?? [] {
            if let name = s["name"] as? String, let mean = s["mean"] as? Double, let n = s["n"] as? Int { scores[name] = (mean, n) }
        }
        for name in ["background", "kind", "colour", "size", "position"] {
            let (mean, n) = try #require(scores["truth.\(name)"], "truth.\(name) in \(scores.keys.sorted())")
            #expect(mean == 1, "\(name)")
            #expect(n > 0 && n < 34, "\(name): n = \(n) should count only the captions naming it")
        }
        #expect(scores["truth.dialogue_text"]?.0 == 0 && scores["truth.dialogue_text"]?.1 == 34)
        #expect(scores["truth.hallucinated"]?.0 == 0)
    }
}
