import Crypto
import Foundation
import Imaging
import Testing
@testable import Models
import Tensor

/// The StoryWorld models (issue #6) against PyTorch outputs recorded by
/// `Tools/record_storyworld_outputs.py` into `Fixtures/storyworld/`: three StoryWorld PNGs, their
/// captions, a story and a dialogue run through each model folder named in `expected.json`
/// (relative to the repository, so the same test covers the random tiny models or the trained
/// ones, whichever the fixture was recorded from). Every model file's SHA-256 is recorded: a
/// changed file fails with "fixture is stale" and the command to rerun, not with a numeric mismatch.
///
/// Tolerances: CLIP, OPT and GILL float outputs within 1e-3 × max(1, max |reference|) (absolute
/// below magnitude 1, relative above); the SD image within 2e-3 absolute on [0, 1]; token ids equal.
@Suite("StoryWorld models against recorded PyTorch outputs")
struct StoryWorldModelTests {
    static let tolerance: Float = 1e-3
    static let imageTolerance: Float = 2e-3

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A model folder that is missing, or whose files differ from the ones the fixture was recorded from.
    struct StaleFixture: Error, CustomStringConvertible {
        var description: String
    }

    /// `Fixtures/storyworld/`: expected.json, expected.safetensors and the input PNGs.
    struct Fixture {
        var folder: URL
        var json: [String: Any]
        var tensors: SafetensorsFile

        func tensor(_ name: String) throws -> Tensor { try tensors.tensor(named: name) }

        func object(_ key: String) throws -> [String: Any] {
            try #require(json[key] as? [String: Any], "expected.json lacks the object '\(key)'")
        }

        var rerun: String {
            "rerun `.venv/bin/\(json["command"] as? String ?? "python Tools/record_storyworld_outputs.py")` to record it again"
        }

        /// The images named in expected.json, read from the fixture folder.
        func images() throws -> [Image] {
            let names = try #require(try object("inputs")["images"] as? [String], "expected.json lacks inputs.images")
            return try names.map { try Image.load(contentsOf: folder.appendingPathComponent($0)).converted(toChannels: 3) }
        }

        /// The repository-relative folder of model `key` (clip, sd, gill), after checking that it
        /// exists and that its files are byte for byte the ones the outputs were recorded from.
        func modelFolder(_ key: String) throws -> URL {
            let relative = try #require(try object("models")[key] as? String, "expected.json lacks models.\(key)")
            let url = StoryWorldModelTests.repository.appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw StaleFixture(description: "\(key) model folder \(url.path) (models.\(key) in Fixtures/storyworld/expected.json) is missing; "
                                   + "restore it, or \(rerun) from the models that exist")
            }
            let recorded = try #require(try object("digests")[key] as? [String: String], "expected.json lacks digests.\(key)")
            let present = Set(try StoryWorldModelTests.modelFiles(in: url).map { relative + "/" + $0 })
            let added = present.subtracting(recorded.keys).sorted(), removed = Set(recorded.keys).subtracting(present).sorted()
            guard added.isEmpty, removed.isEmpty else {
                throw StaleFixture(description: "fixture is stale: \(key) folder \(relative) gained \(added) and lost \(removed) since "
                                   + "Tools/record_storyworld_outputs.py ran; \(rerun)")
            }
            for (file, digest) in recorded.sorted(by: { $0.key < $1.key }) {
                let actual = try StoryWorldModelTests.sha256(of: StoryWorldModelTests.repository.appendingPathComponent(file))
                guard actual == digest else {
                    throw StaleFixture(description: "fixture is stale: \(file) has SHA-256 \(actual.prefix(12))… but the outputs were "
                                       + "recorded from \(digest.prefix(12))…; \(rerun)")
                }
            }
            return url
        }
    }

    static func fixture() throws -> Fixture {
        let folder = try #require(Bundle.module.url(forResource: "Fixtures/storyworld", withExtension: nil),
                                  "missing fixture storyworld/ (Tools/record_storyworld_outputs.py writes it)")
        let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "expected.json is not an object")
        return Fixture(folder: folder, json: json, tensors: try SafetensorsFile(url: folder.appendingPathComponent("expected.safetensors")))
    }

    /// Files under `folder` as paths relative to it, model cards (`*.md`) left out — as the script walks it.
    static func modelFiles(in folder: URL) throws -> [String] {
        guard let walk = FileManager.default.enumerator(atPath: folder.path) else { return [] }
        var files: [String] = []
        for case let path as String in walk where !path.hasSuffix(".md") {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent(path).path, isDirectory: &isDirectory),
               !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files
    }

    static func sha256(of url: URL) throws -> String {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// max |a − b| over the reference's magnitude floor of 1, or infinity when the sizes differ.
    static func relativeDifference(_ a: [Float], _ b: Tensor) -> Float {
        guard a.count == b.count, !a.isEmpty else { return .infinity }
        let scale = max(1, b.data.map(abs).max() ?? 0)
        return (zip(a, b.data).map { abs($0 - $1) }.max() ?? 0) / scale
    }

    /// Checks one output against the recorded tensor, naming it in the failure.
    static func expectClose(_ name: String, _ ours: [Float], _ fixture: Fixture, tolerance: Float = tolerance,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = try fixture.tensor(name)
        #expect(ours.count == reference.count, "\(name): \(ours.count) values, recorded \(reference.shape)", sourceLocation: sourceLocation)
        let d = relativeDifference(ours, reference)
        #expect(d <= tolerance, "\(name): max |Δ| / max(1, max |ref|) = \(d)", sourceLocation: sourceLocation)
    }

    @Test("model folders exist and match the recorded SHA-256 digests")
    func digests() throws {
        let f = try Self.fixture()
        for key in ["clip", "sd", "gill"] {
            _ = try f.modelFolder(key)
            #expect((try f.object("digests")[key] as? [String: String])?.isEmpty == false, "no files recorded for \(key)")
        }
    }

    @Test("CLIP: image embeddings of the PNGs, text embeddings of the captions")
    func clip() throws {
        let f = try Self.fixture()
        let model = try CLIPModel.load(from: try f.modelFolder("clip"))
        let meta = try f.object("clip")
        let images = try f.images()
        try Self.expectClose("clip.image_pooler", model.imageEmbeddings(images, projected: false).flatMap { $0 }, f)
        if f.tensors.names.contains("clip.image_embeds") {
            try Self.expectClose("clip.image_embeds", model.imageEmbeddings(images).flatMap { $0 }, f)
        } else {
            #expect(model.vision?.hasProjection != true, "the folder has a visual projection but no image_embeds were recorded")
        }
        if let ids = meta["text_ids"] as? [[Int]] {
            let captions = try #require(try f.object("inputs")["captions"] as? [String])
            #expect(try model.tokenIDs(captions) == ids)
            try Self.expectClose("clip.text_pooler", model.textEmbeddings(captions, projected: false).flatMap { $0 }, f)
            if f.tensors.names.contains("clip.text_embeds") {
                try Self.expectClose("clip.text_embeds", model.textEmbeddings(captions).flatMap { $0 }, f)
            }
        } else {
            // Not recorded because the folder cannot embed text: the Swift loader must agree.
            let reason = meta["text"] as? String ?? "?"
            #expect(model.text == nil || model.tokenizer == nil, "no text outputs recorded (\(reason)) yet Swift loads a text tower and tokenizer")
            #expect(throws: ModelError.self) { _ = try model.textEmbeddings(["a ball"]) }
        }
    }

    /// diffusers scheduler classes and the Swift schedulers that reproduce them.
    static let schedulers: [String: SchedulerKind] = [
        "DDIMScheduler": .ddim, "PNDMScheduler": .pndm, "EulerDiscreteScheduler": .euler, "DPMSolverMultistepScheduler": .dpmSolverMultistep,
    ]

    @Test("Stable Diffusion: the pipeline image of one caption with the folder's scheduler")
    func stableDiffusion() throws {
        let f = try Self.fixture()
        let pipe = try StableDiffusionPipeline(folder: try f.modelFolder("sd"))
        let meta = try f.object("sd")
        let className = try #require(meta["scheduler"] as? String)
        #expect(pipe.schedulerConfig.className == className)
        let kind = try #require(Self.schedulers[className], "scheduler \(className) has no Swift counterpart")
        let options = GenerationOptions(steps: try #require(meta["steps"] as? Int), guidance: Float(try #require(meta["guidance"] as? Double)),
                                        scheduler: kind, seed: UInt64(try #require(meta["seed"] as? Int)))
        let image = try pipe.generate(prompt: try #require(meta["prompt"] as? String),
                                      negativePrompt: try #require(meta["negative_prompt"] as? String), options: options)
        let reference = try f.tensor("sd.image")
        #expect(image.shape == reference.shape)
        try Self.expectClose("sd.image", image.data, f, tolerance: Self.imageTolerance)
    }

    @Test("OPT (gill/opt): last-position logits of a story text and its greedy continuation")
    func opt() throws {
        let f = try Self.fixture()
        let folder = try f.modelFolder("gill").appendingPathComponent("opt")
        let model = try OPTModel.load(from: folder)
        let meta = try f.object("opt")
        let ids = try #require(meta["ids"] as? [Int])
        #expect(try GPT2Tokenizer(folder: folder).encode(try #require(meta["text"] as? String)) == ids)
        let logits = try model.forward(ids: ids).logits
        try Self.expectClose("opt.last_logits", logits.row(logits.rowCount - 1), f)
        let greedy = try #require(meta["greedy_ids"] as? [Int])
        let margins = meta["greedy_margins"] as? [Double] ?? []
        #expect(try model.generate(prompt: ids, options: TextGenerationOptions(maxNewTokens: greedy.count)) == greedy,
                "recorded top-1 − top-2 logit margins per step: \(margins)")
    }

    @Test("GILL: caption of a PNG, image retrieval embeddings, [IMG] outputs of caption, story and dialogue contexts")
    func gill() throws {
        let f = try Self.fixture()
        let model = try GILLModel.load(from: try f.modelFolder("gill"))
        let meta = try f.object("gill")
        let inputs = try f.object("inputs")
        let images = try f.images()
        #expect(model.imageTokenIDs == (try #require(meta["img_ids"] as? [Int])))

        let imageRet = try model.imageRetrievalEmbeddings(images)
        try Self.expectClose("gill.image_ret", imageRet.flatMap { $0 }, f)

        // Captioning as the caption step does it: BOS, the image's visual tokens, [IMG] banned, stop at </s>.
        let captionIDs = try #require(meta["caption_ids"] as? [Int])
        let prompt = try model.embed([.image(images[0])])
        let options = TextGenerationOptions(maxNewTokens: 12, stopTokens: [model.tokenizer.eosTokenID], bannedTokens: Set(model.imageTokenIDs))
        #expect(try model.llm.generate(promptEmbeddings: prompt, options: options) == captionIDs,
                "recorded top-1 − top-2 logit margins per step: \(meta["caption_margins"] as? [Double] ?? [])")

        // Contexts in the legacy layout the outputs were recorded with (GILLContext), then the forced [IMG] block.
        let captions = try #require(inputs["captions"] as? [String])
        let story = try #require(inputs["story"] as? [String])
        let dialogue = try #require(inputs["dialogue"] as? [String: Any])
        let rounds = try #require(dialogue["rounds"] as? [[String]]).map { (question: $0[0], answer: $0[1]) }
        let segments: [String: [GILLSegment]] = [
            "caption": GILLContext.story(captions: [captions[0]], mode: .lastCaption, layout: .legacy),
            "story": GILLContext.story(captions: story, mode: .captions, layout: .legacy),
            "dialogue": GILLContext.dialogue(caption: try #require(dialogue["caption"] as? String), rounds: rounds,
                                             maxRounds: rounds.count, mode: .captions, layout: .legacy),
        ]
        let contexts = try #require(meta["contexts"] as? [String: [String: Any]])
        #expect(Set(contexts.keys) == Set(segments.keys))
        for (name, segment) in segments.sorted(by: { $0.key < $1.key }) {
            let recorded = try #require(contexts[name])
            guard case .text(let text)? = segment.first, segment.count == 1 else {
                Issue.record("\(name): expected one text segment, got \(segment.count)")
                continue
            }
            #expect(text == recorded["text"] as? String, "\(name): context text")
            #expect([model.tokenizer.bosTokenID] + model.tokenizer.encode(text, addBOS: false) == recorded["ids"] as? [Int], "\(name): ids")
            let out = try model.imageOutputs(context: model.embed(segment))
            try Self.expectClose("gill.\(name).ret_embedding", out.retrievalEmbedding, f)
            try Self.expectClose("gill.\(name).decision", out.decision, f)
            try Self.expectClose("gill.\(name).scores", model.retrievalScores(text: out.retrievalEmbedding, images: imageRet), f)
            if name == "caption" {
                #expect(out.promptEmbeddings.shape == [model.config.numClipTokens, model.config.genEmbDim])
                try Self.expectClose("gill.caption.prompt_embeds", out.promptEmbeddings.data, f)
            }
        }
    }
}
