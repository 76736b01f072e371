import Foundation
import Stories
import Store
import StoryWorld
import Testing
@testable import Steps
@testable import Workflow

@Suite("caption-check step")
struct CaptionCheckStepTests {
    func runStep(_ items: [(Entry, Int?, Value)], set: [String: JSONValue] = [:]) async throws -> [ItemOutcome] {
        let h = try StepHarness()
        defer { try? FileManager.default.removeItem(at: h.root) }
        var params: [String: JSONValue] = [:]
        for p in CaptionCheckStep.kind.params { if let d = p.defaultValue { params[p.name] = d } }
        params.merge(set) { _, new in new }
        let config = StepConfiguration(stepID: "cc", kind: "caption-check", params: params, model: nil,
                                       collection: StoryCollection(name: "c", root: h.root, entries: []),
                                       workflowFolder: h.root, media: h.media, allowOutsideRoot: false)
        let runner = try CaptionCheckStep.kind.makeRunner(config)
        let stepItems = items.enumerated().map { i, item in
            StepItem(id: "\(item.0.id)#\(i)", entry: item.0, panelIndex: item.1, inputs: ["caption": item.2], pools: [:], seed: 0)
        }
        return try await runner.run(stepItems, services: StepServices(media: h.media, isCancelled: { false }))
    }

    @Test("per-attribute scores are 1/0 where named and absent where not; entry scope reads the chosen panel; declares its scores")
    func step() async throws {
        #expect(StandardSteps.registry["caption-check"] != nil)
        #expect(CaptionCheckStep.kind.scoreOutputs == ["background", "kind", "colour", "size", "position", "dialogue_text", "hallucinated", "repeated"])
        let entry = StoryWorldGenerator.storyEntry(WorldOptions(seed: 41, stories: 1, dialogues: 0), 0)
        let first = try Scene(metadata: try #require(entry.panels[0].metadata))
        let o = first.objects[0]
        let wrongColour = ObjectColour.allCases.first { $0 != o.colour }!
        let absent = try #require(ObjectKind.allCases.first { k in !first.objects.contains { $0.kind == k } })
        let out = try await runStep([
            (entry, 0, .text(entry.panels[0].text)),
            (entry, nil, .text("A \(wrongColour.word) \(o.kind.word). Is it on the left? Yes")),
            (entry, 0, .text("A \(absent.word).")),
            (entry, 0, .number(3)),
            (entry, 0, .text("A \(o.kind.word), a \(o.kind.word), a \(o.kind.word) and a \(o.kind.word).")),
        ], set: ["panel": .number(0)])
        func outputs(_ o: ItemOutcome) -> Outputs? { if case .success(let out) = o { return out }; return nil }
        let own = try #require(outputs(out[0])), wrong = try #require(outputs(out[1])), made = try #require(outputs(out[2]))
        #expect(own["background"]?.number == 1 && own["kind"]?.number == 1 && own["colour"]?.number == 1)
        #expect(own["dialogue_text"]?.number == 0 && own["hallucinated"]?.number == 0 && own["repeated"]?.number == 0)
        // Four of a kind the scene holds fewer of: repeated, not hallucinated.
        let four = try #require(outputs(out[4]))
        #expect(four["repeated"]?.number == 1 && four["hallucinated"]?.number == 0 && four["kind"]?.number == 1)
        // Entry scope with panel 0: the same scene as the first panel.
        #expect(wrong["colour"]?.number == 0 && wrong["kind"]?.number == 1 && wrong["dialogue_text"]?.number == 1)
        #expect(wrong["background"] == nil && wrong["position"] == nil && wrong["size"] == nil)
        #expect(made["kind"]?.number == 0 && made["hallucinated"]?.number == 1 && made["colour"] == nil)
        #expect(made["findings"]?.text?.contains("not in the scene") == true)
        guard case .failure(let m) = out[3] else { Issue.record("expected a failure: \(out[3])"); return }
        #expect(m.contains("caption is not a text"))
    }

    @Test("a panel without a scene graph fails its item, naming the entry, the panel and the step")
    func missingSceneGraph() async throws {
        let entry = Entry(id: "story-x", kind: .story, panels: [Panel(image: nil, text: "a", metadata: nil)])
        let out = try await runStep([(entry, 0, .text("A ball."))])
        guard case .failure(let m) = out[0] else { Issue.record("expected a failure: \(out)"); return }
        #expect(m.contains("story-x") && m.contains("panel 1") && m.contains("caption-check needs a StoryWorld scene graph"))
    }

    @Test("the quickstart and storyworld-captions check GILL's captions; the measurement uses a held-out evaluation world")
    func workflows() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Workflows")
        let parser = SpecParser(registry: StandardSteps.registry)
        for file in ["quickstart.yaml", "storyworld-captions.yaml"] {
            let spec = try parser.parse(file: folder.appendingPathComponent(file))
            let captioner = try #require(spec.steps.first { $0.use == "caption" }, "\(file)")
            #expect(spec.steps.contains { $0.use == "caption-check" && $0.inputs["caption"]?.text == "\(captioner.id).caption" }, "\(file)")
        }
        let spec = try parser.parse(file: folder.appendingPathComponent("storyworld-captions.yaml"))
        guard case .world(let seed, _, _, _) = spec.collection.source else { Issue.record("expected a StoryWorld collection"); return }
        #expect((1...99).contains(seed), "evaluation worlds are seeds 1–99 (training 1000+, validation 900–999)")
    }
}
