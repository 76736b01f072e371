import Foundation
import Testing
@testable import Models
import Tensor

/// GILL modules against `Tools/gill_reference.py` on the tiny model written by
/// `Tools/make_gill_fixtures.py` (tiny OPT hidden 32, tiny CLIP vision hidden 24, mapper 16 wide).
/// Tolerances: 2e-4 absolute on float32 outputs (1e-3 on the mapper's 77×20 output after two
/// transformer stacks); token ids exactly.
@Suite("GILL parity with the PyTorch reference")
struct GILLParityTests {
    static let tolerance: Float = 2e-4

    static func root() throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/gill", withExtension: nil), "missing fixture gill/")
    }

    static func load() throws -> (GILLModel, SafetensorsFile, [String: Any]) {
        let root = try root()
        let model = try GILLModel.load(from: root.appendingPathComponent("tiny"))
        let expected = try SafetensorsFile(url: root.appendingPathComponent("expected.safetensors"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("expected.json"))) as? [String: Any])
        return (model, expected, json)
    }

    static func maxDifference(_ a: [Float], _ b: Tensor) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a, b.data).map { abs($0 - $1) }.max() ?? 0
    }

    static func pixels(_ e: SafetensorsFile, _ i: Int) throws -> Tensor {
        let p = try e.tensor(named: "pixel_values")
        let n = p.count / p.shape[0]
        return try Tensor(shape: [1] + Array(p.shape.dropFirst()), data: Array(p.data[(i * n)..<((i + 1) * n)]))
    }

    @Test("[IMG] ids follow the base vocabulary and the config")
    func tokens() throws {
        let (model, _, json) = try Self.load()
        #expect(model.imageTokenIDs == (try #require(json["img_ids"] as? [Int])))
        #expect(model.tokenizer.id(of: "<|image|>") == model.imageTokenIDs[0] - 1)
        #expect(model.tokenizer.encode("a [IMG0]", addBOS: false).last == model.imageTokenIDs[0])
    }

    @Test("visual prefix and image retrieval embeddings")
    func visual() throws {
        let (model, e, _) = try Self.load()
        let pixels = try e.tensor(named: "pixel_values")
        let pooled = try model.visionPooler(pixelValues: pixels)
        let prefix = try model.visualPrefix(pixelValues: pixels)
        let ret = try model.imageRetrievalEmbeddings(pixelValues: pixels)
        let d1 = Self.maxDifference(pooled.data, try e.tensor(named: "pooler"))
        let d2 = Self.maxDifference(prefix.flatMap(\.data), try e.tensor(named: "visual_prefix"))
        let d3 = Self.maxDifference(ret.flatMap { $0 }, try e.tensor(named: "image_ret"))
        #expect(prefix.count == 2 && prefix[0].shape == [2, 32])
        #expect(d1 <= Self.tolerance, "pooler max |Δ| = \(d1)")
        #expect(d2 <= Self.tolerance, "visual prefix max |Δ| = \(d2)")
        #expect(d3 <= Self.tolerance, "image retrieval max |Δ| = \(d3)")
    }

    @Test("interleaved text-image-text forward")
    func interleaved() throws {
        let (model, e, json) = try Self.load()
        let caption = try #require(json["caption_ids"] as? [Int]), after = try #require(json["after_ids"] as? [Int])
        let embs = try model.embed([.ids(Array(caption.dropFirst())), .pixels(try Self.pixels(e, 0)), .ids(after)])
        #expect(embs.rowCount == caption.count + 2 + after.count)
        var state = model.llm.makeState()
        let out = try model.llm.forward(inputEmbeddings: embs, state: &state)
        let dl = Self.maxDifference(out.logits.data, try e.tensor(named: "interleaved_logits"))
        let dh = Self.maxDifference(out.lastHidden.data, try e.tensor(named: "interleaved_hidden"))
        #expect(dl <= Self.tolerance, "logits max |Δ| = \(dl)")
        #expect(dh <= Self.tolerance, "hidden max |Δ| = \(dh)")
    }

    @Test("forced [IMG] block: retrieval embedding, scores, mapper prompt embeddings, decision")
    func imageHeads() throws {
        let (model, e, json) = try Self.load()
        let caption = try #require(json["caption_ids"] as? [Int])
        let out = try model.imageOutputs(context: model.llm.embed(caption))
        let pixels = try e.tensor(named: "pixel_values")
        let scores = model.retrievalScores(text: out.retrievalEmbedding, images: try model.imageRetrievalEmbeddings(pixelValues: pixels))
        let dr = Self.maxDifference(out.retrievalEmbedding, try e.tensor(named: "ret_embedding"))
        let ds = Self.maxDifference(scores, try e.tensor(named: "scores"))
        let dp = Self.maxDifference(out.promptEmbeddings.data, try e.tensor(named: "prompt_embeds"))
        let dd = Self.maxDifference(out.decision, try e.tensor(named: "decision"))
        #expect(out.promptEmbeddings.shape == [77, 20])
        #expect(dr <= Self.tolerance, "retrieval embedding max |Δ| = \(dr)")
        #expect(ds <= 1e-3, "scores max |Δ| = \(ds)")
        #expect(dp <= 1e-3, "prompt embeddings max |Δ| = \(dp)")
        #expect(dd <= Self.tolerance, "decision max |Δ| = \(dd)")
        #expect(abs(out.decision.reduce(0, +) - 1) < 1e-5)
    }

    @Test("greedy generation with GILL's [IMG] rule from an interleaved prompt")
    func greedy() throws {
        let (model, e, json) = try Self.load()
        let caption = try #require(json["caption_ids"] as? [Int])
        let expected = try #require(json["greedy_ids"] as? [Int])
        let prompt = try model.embed([.pixels(try Self.pixels(e, 1)), .ids(Array(caption.dropFirst()))])
        let gen = try model.generate(prompt: prompt, options: TextGenerationOptions(maxNewTokens: 10))
        #expect(gen.tokens == expected)
        #expect(gen.image != nil)
        // [IMG1..7] never start a block on their own.
        let ids = model.imageTokenIDs
        for (i, t) in gen.tokens.enumerated() where t == ids[1] { #expect(i > 0 && gen.tokens[i - 1] == ids[0]) }
        let stopped = try model.generate(prompt: prompt, options: TextGenerationOptions(maxNewTokens: 10), stopAfterImage: true)
        let first = try #require(expected.firstIndex(of: ids[0]))
        #expect(stopped.tokens == Array(expected.prefix(first + 8)))
    }

    @Test("config errors name the file and key")
    func configErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gill-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try Data("{\"text_fc_mode\": \"linear\"}".utf8).write(to: url)
        #expect { try GILLConfig.load(from: url) } throws: { "\($0)".contains("config.json") && "\($0)".contains("text_fc_mode") }
        try Data("{\"num_tokens\": \"eight\"}".utf8).write(to: url)
        #expect { try GILLConfig.load(from: url) } throws: { "\($0)".contains("num_tokens") }
    }

    @Test("GILL's released model_args.json reads as the published sizes",
          .enabled(if: FileManager.default.fileExists(atPath: GILLCheckpointTests.releaseFolder.appendingPathComponent("model_args.json").path),
                   GILLCheckpointTests.missing("model_args.json")))
    func releasedArgs() throws {
        let c = try GILLConfig.load(from: GILLCheckpointTests.releaseFolder.appendingPathComponent("model_args.json"))
        #expect(c.nVisualTokens == 4 && c.numTokens == 8 && c.numClipTokens == 77 && c.genEmbDim == 768 && c.retEmbDim == 256)
        #expect(c.genTokenIdx == Array(50266...50273))
        #expect(c.mapper == nil, "model_args.json has no mapper sizes: they come from the weights")
        #expect(c.decisionClasses == [.gen, .ret])
    }
}
