import Foundation
import Imaging
import Testing
@testable import Models
import Tensor

/// GILL image generation through Stable Diffusion on `Examples/models/tiny-gill` (its `sd/` is the
/// tiny random SD) against `Tools/make_gill_fixtures.py example`: the GILLMapper's prompt
/// embeddings handed to diffusers' `StableDiffusionPipeline(prompt_embeds=…)` with the pipeline's
/// own empty-prompt negative. Tolerances: 1e-3 absolute on the 77×32 prompt embeddings (two
/// transformer stacks), 2e-3 on the [0, 1] image after 2 DDIM steps with guidance 7.5 and the VAE.
@Suite("GILL generation through Stable Diffusion")
struct GILLGenerationTests {
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var tinyGILL: URL { repository.appendingPathComponent("Examples/models/tiny-gill") }
    static var tinySD: URL { repository.appendingPathComponent("Examples/models/tiny-sd") }

    static func fixtures() throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/gill", withExtension: nil), "missing fixture gill/")
    }

    static func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a.data, b.data).map { abs($0 - $1) }.max() ?? 0
    }

    /// A copy of the parity fixture's GILL folder (gen_emb_dim 20) with extra files, in a temp folder.
    static func copyOfParityGILL(config edit: ([String: Any]) -> [String: Any]) throws -> URL {
        let dst = FileManager.default.temporaryDirectory.appendingPathComponent("gill-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: try fixtures().appendingPathComponent("tiny"), to: dst)
        let url = dst.appendingPathComponent("config.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        try JSONSerialization.data(withJSONObject: edit(json)).write(to: url)
        return dst
    }

    @Test("prompt embeddings → SD pipeline equals diffusers with prompt_embeds (2 DDIM steps, guidance 7.5)")
    func parity() throws {
        let root = try Self.fixtures()
        let expected = try SafetensorsFile(url: root.appendingPathComponent("generate.safetensors"))
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("generate.json"))) as? [String: Any])
        let gill = try GILLModel.load(from: Self.tinyGILL)
        let generator = try GILLImageGenerator.load(gill: gill)
        #expect(generator.pipeline.folder.lastPathComponent == "sd")
        let caption = try #require(meta["caption"] as? String)
        // Same ids as the reference: BOS, then the caption.
        #expect([gill.tokenizer.bosTokenID] + gill.tokenizer.encode(caption, addBOS: false) == (try #require(meta["ids"] as? [Int])))
        let context = try gill.embed([.text(caption)])
        let result = try generator.generate(context: context, options: GenerationOptions(steps: 2, guidance: 7.5, scheduler: .ddim, seed: 3))
        let prompt = try expected.tensor(named: "prompt_embeds")
        #expect(Self.maxDifference(result.outputs.promptEmbeddings, prompt) < 1e-3)
        #expect(zip(result.outputs.decision, try expected.tensor(named: "decision").data).allSatisfy { abs($0 - $1) < 1e-4 })
        let image = try expected.tensor(named: "image")
        #expect(result.pixels.shape == image.shape)
        let diff = Self.maxDifference(result.pixels, image)
        #expect(diff < 2e-3, "max |Δ| \(diff)")
        // The image varies (not a constant), so the comparison means something.
        #expect((image.data.max() ?? 0) - (image.data.min() ?? 0) > 0.2)
    }

    @Test("gen_emb_dim that differs from the UNet's cross_attention_dim fails at load, naming both files")
    func mismatchedWidth() throws {
        let folder = try Self.copyOfParityGILL { var j = $0; j["decoder"] = Self.tinySD.path; return j }
        defer { try? FileManager.default.removeItem(at: folder) }
        let gill = try GILLModel.load(from: folder)
        #expect(gill.config.genEmbDim == 20)
        do {
            _ = try GILLImageGenerator.load(gill: gill)
            Issue.record("a 20-wide GILL must not pair with a 32-wide UNet")
        } catch let error as ModelError {
            #expect(error.message.contains("gen_emb_dim 20"))
            #expect(error.message.contains("cross_attention_dim 32"))
            #expect(error.message.contains(folder.appendingPathComponent("config.json").path))
            #expect(error.message.contains("unet/config.json"))
        }
    }

    @Test("decoder lookup: config path relative to the folder, else sd/, else a clear error")
    func decoderLookup() throws {
        let relative = try Self.copyOfParityGILL { var j = $0; j["decoder"] = "../elsewhere/sd"; return j }
        defer { try? FileManager.default.removeItem(at: relative) }
        let config = try GILLConfig.load(from: relative.appendingPathComponent("config.json"))
        #expect(GILLImageGenerator.decoderFolder(of: relative, config: config)?.path
                == relative.deletingLastPathComponent().appendingPathComponent("elsewhere/sd").path)
        // A missing decoder folder is reported with the GILL folder and the path tried.
        let gill = try GILLModel.load(from: relative)
        #expect(throws: ModelError.self) { _ = try GILLImageGenerator.load(gill: gill) }
        do { _ = try GILLImageGenerator.load(gill: gill) } catch { #expect("\(error)".contains("elsewhere/sd")) }

        let bare = try Self.copyOfParityGILL { $0 }
        defer { try? FileManager.default.removeItem(at: bare) }
        let plain = try GILLModel.load(from: bare)
        #expect(GILLImageGenerator.decoderFolder(of: bare, config: plain.config) == nil)
        do {
            _ = try GILLImageGenerator.load(gill: plain)
            Issue.record("a folder without sd/ or decoder has no image decoder")
        } catch { #expect("\(error)".contains("no image decoder") && "\(error)".contains("sd/")) }

        let empty = try Self.copyOfParityGILL { var j = $0; j["decoder"] = ""; return j }
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: ModelError.self) { _ = try GILLConfig.load(from: empty.appendingPathComponent("config.json")) }
    }

    @Test("legacy story contexts: last caption, all captions, captions with the earlier images before them")
    func storyContexts() throws {
        let gill = try GILLModel.load(from: Self.tinyGILL)
        let captions = ["A red ball is on a beach.", "It rolls.", "Now it is night."]
        let images = (0..<3).map { i in Image(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: UInt8(40 * i), count: 192)) }
        func describe(_ s: [GILLSegment]) -> [String] {
            s.map { if case .text(let t) = $0 { return t }; if case .image = $0 { return "<image>" }; return "?" }
        }
        #expect(describe(GILLContext.story(captions: captions, images: images, mode: .lastCaption, layout: .legacy)) == ["Now it is night."])
        #expect(describe(GILLContext.story(captions: captions, images: images, mode: .captions, layout: .legacy))
                == ["A red ball is on a beach. It rolls. Now it is night."])
        // The last caption describes the image to produce: it never gets an image, even if one is bound.
        #expect(describe(GILLContext.story(captions: captions, images: images, mode: .captionsAndImages, layout: .legacy))
                == ["<image>", "A red ball is on a beach.", "<image>", "It rolls.", " Now it is night."])
        let k = gill.config.nVisualTokens
        let last = try gill.embed(GILLContext.story(captions: captions, mode: .lastCaption, layout: .legacy))
        let all = try gill.embed(GILLContext.story(captions: captions, mode: .captions, layout: .legacy))
        let withImages = try gill.embed(GILLContext.story(captions: captions, images: images, mode: .captionsAndImages, layout: .legacy))
        let tokens = { (s: String) in gill.tokenizer.encode(s, addBOS: false).count }
        #expect(last.rowCount == 1 + tokens("Now it is night."))
        #expect(all.rowCount == 1 + tokens(captions.joined(separator: " ")))
        #expect(withImages.rowCount == 1 + 2 * k + tokens(captions[0]) + tokens(captions[1]) + tokens(" " + captions[2]))
        // The images enter as their visual tokens: the embeddings right after BOS are image 0's prefix.
        let prefix = try gill.visualPrefix(pixelValues: gill.clip.pixelValues([images[0]]))[0]
        #expect(Array(withImages.data[gill.llm.embeddingDimension..<(gill.llm.embeddingDimension * (1 + k))]) == prefix.data)
    }

    @Test("legacy dialogue contexts: caption and the first N rounds")
    func dialogueContexts() {
        let rounds = [("Is it big?", "No."), ("Where is it?", "On the left.")].map { (question: $0.0, answer: $0.1) }
        func text(_ s: [GILLSegment]) -> String? { if s.count == 1, case .text(let t) = s[0] { return t }; return nil }
        #expect(text(GILLContext.dialogue(caption: "A ball.", rounds: rounds, maxRounds: 1, mode: .captions, layout: .legacy)) == "A ball. Q: Is it big? A: No.")
        #expect(text(GILLContext.dialogue(caption: "A ball.", rounds: rounds, maxRounds: 10, mode: .captionsAndImages, layout: .legacy))
                == "A ball. Q: Is it big? A: No. Q: Where is it? A: On the left.")
        #expect(text(GILLContext.dialogue(caption: "A ball.", rounds: rounds, maxRounds: 0, mode: .captions, layout: .legacy)) == "A ball.")
        #expect(text(GILLContext.dialogue(caption: "A ball.", rounds: rounds, maxRounds: 5, mode: .lastCaption, layout: .legacy)) == "A ball.")
    }
}
