import Foundation
import Imaging
import Testing
@testable import Models
import Tensor

/// Storyloom's GILL against GILL's own code (`Tools/make_gill_release_fixtures.py`, run on GILL's
/// source): the released checkpoint's manifest, a small checkpoint written by GILL's save filter
/// and prune script (bf16, `module.`, 8 [IMG] rows, model_args.json only, OPT/CLIP as torch
/// pickles), and the VIST / VisDial layouts of GILL's evaluation scripts.
/// Tolerances: float32 on both sides from the same bf16 weights — 1e-5 on the input embeddings
/// (gathers and one linear), 2e-4 on the retrieval embedding and decision, 1e-3 on the 77×768
/// mapper output after two transformer stacks, 1e-6 on pixel values (Pillow-exact resizes);
/// token ids and layouts exactly.
@Suite("GILL as released: manifest, small checkpoint, input layouts")
struct GILLReleaseTests {
    static func root() throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/gill/release", withExtension: nil))
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try root().appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
    }

    static func smallModel() throws -> GILLModel { try GILLModel.load(from: try root().appendingPathComponent("small")) }

    @Test("the loader asks for exactly the released pretrained_ckpt.pth.tar's names and shapes (bf16)")
    func manifest() throws {
        let manifest = try Self.json("manifest.json")
        let tensors = try #require(manifest["tensors"] as? [[String: Any]])
        var released: [String: [Int]] = [:]
        for t in tensors {
            let name = try #require(t["name"] as? String), shape = try #require(t["shape"] as? [Int])
            #expect(t["dtype"] as? String == "BF16", "\(name)")
            released[GILLWeights.releasedName(name)] = shape
        }
        #expect(tensors.count == 137 && released.count == 137)
        let args = try Self.root().appendingPathComponent("small/model_args.json")
        var config = try GILLConfig.load(from: args)
        // The small folder's model_args.json is the release's but for its [IMG] ids and model names.
        config.retrievalTokenIdx = Array(50266...50273)
        config.genTokenIdx = Array(50266...50273)
        let mapper = try GILLMapper.sizes(file: "manifest.json") { released[$0] }
        #expect(mapper == GILLConfig.Mapper(dim: 512, heads: 4, layers: 4, ffn: 2048))
        let spec = GILLModel.tensorSpec(config: config, mapper: mapper, llmDim: 4096, clipDim: 1024, decision: false)
        let wanted = Dictionary(uniqueKeysWithValues: spec.map { ($0.name, $0.shape) })
        #expect(spec.count == wanted.count, "the spec lists a name twice")
        #expect(Set(wanted.keys).subtracting(released.keys).sorted() == [], "asked for but not released")
        #expect(Set(released.keys).subtracting(wanted.keys).sorted() == [], "released but not asked for")
        for (name, shape) in wanted where released[name] != shape {
            Issue.record("\(name): loader wants \(shape), released \(released[name] ?? [])")
        }
        #expect(released["input_embeddings.weight"] == [8, 4096])
    }

    @Test("a model_args.json-only folder loads: bf16 .pth.tar with module. prefixes, OPT in torch shards, CLIP as pytorch_model.bin")
    func smallLoads() throws {
        let model = try Self.smallModel()
        #expect(model.unusedTensors == [])
        #expect(model.config.mapper == nil)
        #expect(model.imageTokenIDs == Array(401...408))
        #expect(model.llm.config.vocabSize == 409, "OPT's 404 rows grown to hold [IMG3..7]")
        let opt = try Checkpoint(url: model.folder.appendingPathComponent("opt"))
        #expect(opt.urls.map(\.lastPathComponent) == ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"])
        #expect(opt.files.isEmpty && opt.info("model.decoder.embed_tokens.weight")?.dtype == "F32")
        // The loader took every name of its spec, at the spec's shape, and nothing else.
        let weights = try GILLWeights(folder: model.folder)
        let mapper = try GILLMapper.sizes(from: weights, prefix: "gen_text_hidden_fcs.0.")
        #expect(mapper == GILLConfig.Mapper(dim: 16, heads: 4, layers: 4, ffn: 64))
        #expect(try weights.validate(GILLModel.tensorSpec(config: model.config, mapper: mapper, llmDim: 32, clipDim: 24, decision: true)) == [])
    }

    @Test("[image, text] through the small model equals GILL's generate_for_images_and_texts: layout, embeddings, retrieval, mapper, decision")
    func smallOutputs() throws {
        let model = try Self.smallModel()
        let meta = try Self.json("small_expected.json")
        let e = try SafetensorsFile(url: try Self.root().appendingPathComponent("small_expected.safetensors"))
        let image = try Image.load(contentsOf: try #require(Bundle.module.url(forResource: "Fixtures/clip/images/gradient_40x30", withExtension: "png")))
            .converted(toChannels: 3)
        let prompt = try #require(meta["prompt"] as? [String])
        let segments = GILLPrompt.segments([.image(image), .text(prompt[1])])
        #expect(GILLPrompt.layout(segments, tokenizer: model.tokenizer, visualTokens: model.config.nVisualTokens)
                == (meta["sequence"] as? [Int]))
        let pixels = try model.clip.pixelValues([image])
        #expect(Self.maxDifference(pixels.data, try e.tensor(named: "pixel_values").data) < 1e-6)
        let embs = try model.embed(segments)
        let inputDiff = Self.maxDifference(embs.data, try e.tensor(named: "input_embs").data)
        #expect(inputDiff < 1e-5, "input embeddings differ by \(inputDiff)")
        let out = try model.imageOutputs(context: embs)
        let retDiff = Self.maxDifference(out.retrievalEmbedding, try e.tensor(named: "ret_embedding").data)
        let promptDiff = Self.maxDifference(out.promptEmbeddings.data, try e.tensor(named: "prompt_embeds").data)
        let decisionDiff = Self.maxDifference(out.decision, try e.tensor(named: "decision").data)
        print("small GILL against GILL's code, max |diff|: input embeddings \(inputDiff), retrieval \(retDiff), mapper \(promptDiff), decision \(decisionDiff)")
        #expect(retDiff < 2e-4, "retrieval embedding differs by \(retDiff)")
        #expect(promptDiff < 1e-3, "mapper output differs by \(promptDiff)")
        #expect(decisionDiff < 2e-4, "decision differs by \(decisionDiff)")
        #expect(out.promptEmbeddings.shape == [77, 768])
        // GILL's idx2dec as its code has it: index 0 is gen.
        #expect((meta["decision_classes"] as? [String]) == ["gen", "ret"])
        #expect(out.decisionClasses == [.gen, .ret])
        #expect(out.pGenerate == out.decision[0] && out.pRetrieve == out.decision[1])
    }

    @Test("GILL's released decision_model.pth.tar: class 0 is gen, 1 is ret (idx2dec)")
    func releasedDecisionOrder() throws {
        let url = GILLCheckpointTests.decisionModel
        guard FileManager.default.fileExists(atPath: url.path) else {
            print("skipped: \(url.path) is absent (GILL's release is not on this machine)")
            return
        }
        let head = try GILLDecisionHead.load(released: url)
        #expect(head.classes == [.gen, .ret])
        #expect(head.weight.shape == [2, 4096])
        // Hidden states along each row's direction: GILL's argmax picks that row, idx2dec names it.
        let w0 = head.weight.row(0), w1 = head.weight.row(1)
        let towardGen = zip(w0, w1).map { ($0 - $1) * 10 }, towardRet = zip(w0, w1).map { ($1 - $0) * 10 }
        #expect(try head.decide(towardGen) == .gen)
        #expect(try head.decide(towardRet) == .ret)
        let p = try head.probabilities(towardGen)
        let out = GILLImageOutputs(retrievalEmbedding: [], promptEmbeddings: try Tensor(shape: [0], data: []), decision: p,
                                   decisionClasses: head.classes)
        #expect(out.prefersGeneration && out.pGenerate == p[0])
        // A folder trained the other way round reads the same probabilities the other way.
        let flipped = try GILLDecisionHead(weight: head.weight, bias: head.bias, classes: [.ret, .gen])
        #expect(try flipped.decide(towardGen) == .ret)
    }

    @Test("a VIST story and a VisDial dialogue lay out as GILL's evaluation scripts build them")
    func evalLayouts() throws {
        let model = try Self.smallModel()
        let layout = try Self.json("layout.json")
        let vist = try #require(layout["vist"] as? [String: Any]), visdial = try #require(layout["visdial"] as? [String: Any])
        let captions = try #require(vist["captions"] as? [String])
        let images = try (0..<captions.count).map { i in
            try Image.load(contentsOf: try Self.root().appendingPathComponent("vist/p\(i).png")).converted(toChannels: 3)
        }
        let story = GILLContext.story(captions: captions, images: images, mode: .captionsAndImages)
        // The images squashed to 224×224 (Pillow's bicubic) and through the CLIP processor, as GILL's script feeds them.
        let squashed = story.compactMap { if case let .image(i) = $0 { i } else { nil } }
        #expect(squashed.count == 4)
        let pixels = try model.clip.pixelValues(squashed)
        let expectedPixels = try SafetensorsFile(url: try Self.root().appendingPathComponent("vist_pixels.safetensors")).tensor(named: "pixel_values")
        #expect(pixels.shape == expectedPixels.shape)
        let pixelDiff = Self.maxDifference(pixels.data, expectedPixels.data)
        #expect(pixelDiff < 1e-6, "VIST pixel values differ by \(pixelDiff)")
        func describe(_ s: [GILLSegment]) -> [String] {
            s.compactMap {
                switch $0 {
                case let .text(t): t
                case let .image(i): "image \(i.width)x\(i.height)"
                default: nil
                }
            }
        }
        let pieces = try #require(vist["pieces"] as? [Any]).map { p in
            (p as? String) ?? ((p as? [String: Any])?["image"] as? [Int]).map { "image \($0[0])x\($0[1])" } ?? "?"
        }
        #expect(describe(story) == pieces)
        #expect(GILLPrompt.layout(story, tokenizer: model.tokenizer, visualTokens: model.config.nVisualTokens) == (vist["sequence"] as? [Int]))

        let rounds = try #require(visdial["rounds"] as? [[String]]).map { (question: $0[0], answer: $0[1]) }
        let dialogue = GILLContext.dialogue(caption: "a red ball on a beach", rounds: rounds, maxRounds: 10, mode: .captions)
        #expect(describe(dialogue) == (visdial["pieces"] as? [String]))
        #expect(GILLPrompt.layout(dialogue, tokenizer: model.tokenizer, visualTokens: model.config.nVisualTokens) == (visdial["sequence"] as? [Int]))
        // The same rounds with their question marks already written read the same.
        let marked = rounds.map { (question: $0.question + "?", answer: $0.answer) }
        #expect(GILLPrompt.visdialText(rounds: marked) == GILLPrompt.visdialText(rounds: rounds))
    }

    @Test("captions stop at the newline token GILL's tokenizer gives and are cut as utils.truncate_caption")
    func captionEnds() throws {
        let model = try Self.smallModel()
        let newline = try #require(model.newlineTokenID)
        #expect(model.tokenizer.id(of: "\n") == nil, "byte-level BPE has no \"\\n\" entry")
        #expect(model.tokenizer.id(of: "Ċ") == newline)
        #expect(GILLPrompt.truncateCaption("\n\nA ball. It rolls.\nMore") == "A ball. It rolls.\n")
        #expect(GILLPrompt.truncateCaption("A ball rolls. It stops.") == "A ball rolls.")
        #expect(GILLPrompt.truncateCaption("no stop here\n") == "no stop here")
        // [image, text] puts BOS after the image; text first puts it first; image alone has none.
        let bos = model.tokenizer.bosTokenID
        let img = Image(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 9, count: 192))
        #expect(GILLPrompt.layout(GILLPrompt.segments([.image(img), .text("A")]), tokenizer: model.tokenizer, visualTokens: 2)
                == [-1, -1, bos] + model.tokenizer.encode("A", addBOS: false))
        #expect(GILLPrompt.layout(GILLPrompt.segments([.image(img)]), tokenizer: model.tokenizer, visualTokens: 2, addBOS: false) == [-1, -1])
    }

    @Test("missing GILL tensors fail together by name; extra ones are reported, not fatal")
    func strictness() throws {
        let source = try GILLParityTests.root().appendingPathComponent("tiny")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gill-strict-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try SafetensorsFile(url: dir.appendingPathComponent("gill.safetensors"))
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(named: name) }
        tensors["extra.weight"] = try Tensor(shape: [2], data: [1, 2])
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("gill.safetensors"))
        let loaded = try GILLModel.load(from: dir)
        #expect(loaded.unusedTensors == ["extra.weight"])
        tensors["visual_fc.bias"] = nil
        tensors["logit_scale"] = nil
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("gill.safetensors"))
        #expect { try GILLModel.load(from: dir) } throws: {
            let m = "\($0)"
            return m.contains("gill.safetensors") && m.contains("2 tensor(s) GILL needs are missing") && m.contains("visual_fc.bias") && m.contains("logit_scale")
        }
    }
}
