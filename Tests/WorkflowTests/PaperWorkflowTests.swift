import Foundation
import Stories
import Testing
@testable import Steps
@testable import Workflow

/// `Workflows/gill-vist.yaml` and `gill-visdial.yaml`: GILL's evaluation as workflows on folders the user
/// fills in. They validate as written (every step, param and reference); what stops them here is only the
/// data and checkpoints that are not on this machine, and the error says which file.
@Suite struct PaperWorkflowTests {
    static var workflows: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Workflows")
    }

    func step(_ spec: WorkflowSpec, _ id: String) throws -> StepSpec {
        try #require(spec.steps.first { $0.id == id }, "step \(id)")
    }

    @Test("both parse and validate; GILL's call (num_words 2, gen_scale_factor 1e5), 50 PNDM steps, guidance 7.5, CLIP similarity against the 224×224 truth")
    func evaluationProtocol() throws {
        let parser = SpecParser(registry: StandardSteps.registry)
        for (file, gill, annotations) in [("gill-vist.yaml", ["gill_images", "gill_captions"], "val.story-in-sequence.json"),
                                          ("gill-visdial.yaml", ["gill_10"], "visdial_1.0_val.json")] {
            let spec = try parser.parse(file: Self.workflows.appendingPathComponent(file))
            for id in gill {
                let s = try step(spec, id)
                #expect(s.use == "gill-story")
                #expect(s.params["num_words"] == .number(2) && s.params["gen_scale_factor"] == .number(100000))
                #expect(s.params["steps"] == .number(50) && s.params["guidance"] == .number(7.5) && s.params["scheduler"] == .string("pndm"))
                #expect(s.inputs["pool"] == nil, "GILL's evaluation loads no retrieval embeddings")
            }
            let truth = try step(spec, "truth")
            #expect(truth.params["width"] == .number(224) && truth.params["height"] == .number(224))
            let scores = spec.steps.filter { $0.use == "score" }
            #expect(!scores.isEmpty && scores.allSatisfy { $0.params["metric"] == .string("clip-image-similarity") && $0.model == "clip" })
            #expect(spec.models["clip"]?.path.hasSuffix("clip-vit-large-patch14") == true)
            // Not runnable here: the dataset is the user's to download, and the error names the file.
            do {
                _ = try CollectionLoader.load(spec, storeRoot: FileManager.default.temporaryDirectory)
                Issue.record("\(file): the placeholder dataset path loaded")
            } catch {
                #expect("\(error)".contains(annotations) && "\(error)".contains("no such file"), "\(error)")
            }
        }
    }

    @Test("the StoryWorld retrieval measures follow GILL's protocol: the last panel, the context's panels left out")
    func retrievalProtocol() throws {
        let parser = SpecParser(registry: StandardSteps.registry)
        for (file, id) in [("storyworld-retrieval.yaml", "retrieved"), ("storyworld-vist.yaml", "retrieved"), ("quickstart.yaml", "found")] {
            let s = try step(try parser.parse(file: Self.workflows.appendingPathComponent(file)), id)
            #expect(s.use == "retrieve" && s.panels == .last, "\(file): \(id)")
            #expect(s.params["exclude_context"] == .bool(true), "\(file): \(id)")
        }
    }
}
