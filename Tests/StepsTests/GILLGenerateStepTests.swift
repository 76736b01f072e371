import Foundation
import Imaging
import Models
import Stories
import Store
import Testing
@testable import Steps
@testable import Workflow

/// `gill-generate` (and the context handling it shares with `gill-embed` and `decide`) on the
/// committed tiny GILL folder (`Examples/models/tiny-gill`, image decoder in its `sd/`).
@Suite("gill-generate step")
struct GILLGenerateStepTests {
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var tinyGILL: URL { repository.appendingPathComponent("Examples/models/tiny-gill") }

    final class Counter: @unchecked Sendable {
        let lock = NSLock()
        var ticks: [(Int, Int)] = []
        var cancelAfter: Int?
        func tick(_ d: Int, _ t: Int) { lock.withLock { ticks.append((d, t)) } }
        var cancelled: Bool { lock.withLock { cancelAfter.map { ticks.count >= $0 } ?? false } }
    }

    struct Setup {
        let media: MediaStore
        let root: URL
        let panelImages: [Value]
    }

    /// A media store with three small panel images (distinct colours) to bind as context images.
    static func setup() throws -> Setup {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-gillgen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let media = try MediaStore(root: root.appendingPathComponent("media"))
        var images: [Value] = []
        for i in 0..<3 {
            var pixels = [UInt8](repeating: 0, count: 16 * 16 * 3)
            for p in 0..<(16 * 16) { pixels[3 * p + i] = UInt8((p * 7 + 60 * i) % 256) }
            let hash = try media.put(try PNGCodec.encode(Image(width: 16, height: 16, channels: 3, pixels: pixels)), ext: "png")
            images.append(.image(ImageRef(hash: hash, ext: "png")))
        }
        return Setup(media: media, root: root, panelImages: images)
    }

    static func runner(_ kind: StepKind, params: [String: JSONValue], setup: Setup, folder: URL = tinyGILL) throws -> any StepRunner {
        var full: [String: JSONValue] = [:]
        for p in kind.params { if let d = p.defaultValue { full[p.name] = d } }
        for (k, v) in params { full[k] = v }
        let model = ResolvedModel(name: "gill", kind: "gill", folder: folder, digest: "tiny-\(folder.path)")
        let config = StepConfiguration(stepID: "g", kind: kind.name, params: full, model: model,
                                       collection: StoryCollection(name: "c", root: setup.root, entries: []),
                                       workflowFolder: setup.root, media: setup.media, allowOutsideRoot: false)
        return try kind.makeRunner(config)
    }

    static let captions: [Value] = [.text("A red ball is on a beach."), .text("It rolls to the right."), .text("Now it is night.")]

    static func storyItem(_ id: String, seed: UInt64, images: [Value]) -> StepItem {
        let entry = Entry(id: id, kind: .story, panels: captions.map { Panel(image: nil, text: $0.text ?? "") })
        return StepItem(id: id, entry: entry, panelIndex: nil,
                        inputs: ["context": .list(captions), "images": .list(images)], pools: [:], seed: seed)
    }

    static func outputs(_ o: ItemOutcome) throws -> Outputs {
        switch o {
        case .success(let out): return out
        case .failure(let m): Issue.record("item failed: \(m)"); throw StepError(m)
        }
    }

    static func image(_ media: MediaStore, _ v: Value?) throws -> Image {
        let ref = try #require(v?.image)
        #expect(ref.ext == "png")
        return try Image.load(contentsOf: media.url(hash: ref.hash, ext: ref.ext))
    }

    @Test("a decodable PNG, the same for a seed, different for another; equal to the generator called directly; progress per UNet call")
    func generatesSeededImages() async throws {
        let setup = try Self.setup()
        let counter = Counter()
        let runner = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(2), "scheduler": .string("ddim")], setup: setup)
        let items = [Self.storyItem("s1", seed: 5, images: setup.panelImages), Self.storyItem("s2", seed: 5, images: setup.panelImages),
                     Self.storyItem("s3", seed: 6, images: setup.panelImages)]
        let services = StepServices(media: setup.media, isCancelled: { counter.cancelled }, progress: { counter.tick($0, $1) })
        // One item per call, as the executor runs it at the default batch_size of 1.
        var out: [Outputs] = []
        for item in items { out += try await runner.run([item], services: services).map(Self.outputs) }
        let first = try Self.image(setup.media, out[0]["image"])
        #expect(first.width == 64 && first.height == 64 && first.channels == 3)
        // Exact: OpenBLAS calls no longer see a thread count toggled by other threads (BLASGate).
        let second = try Self.image(setup.media, out[1]["image"])
        #expect(second == first, "same seed, \(StepHarness.levels(second, first)) levels apart")
        #expect(try Self.image(setup.media, out[2]["image"]) != first)
        #expect(out[0]["p_generate"]?.number.map { $0 > 0 && $0 < 1 } == true)
        #expect(!out[0].values.contains { if case .vector = $0 { return true }; return false })
        // Equal to GILLImageGenerator on the default context (all captions) with the item's seed.
        let generator = try GILLImageGenerator.load(gill: GILLModel.load(from: Self.tinyGILL))
        let embeddings = try generator.gill.embed(GILLContext.story(captions: Self.captions.compactMap(\.text), mode: .captions))
        #expect(out[0]["context_tokens"]?.number == Double(embeddings.rowCount))
        let direct = try generator.generate(context: embeddings, options: GenerationOptions(steps: 2, scheduler: .ddim, seed: 5))
        let directImage = try StableDiffusionPipeline.images(direct.pixels)[0]
        #expect(directImage == first, "direct call \(StepHarness.levels(directImage, first)) levels apart")
        #expect(counter.ticks.count == 6 && counter.ticks.map(\.1).allSatisfy { $0 == 2 })
    }

    @Test("a batch of 3 items is denoised together and equals each item run alone, to one 8-bit level")
    func batchOfThree() async throws {
        let setup = try Self.setup()
        let counter = Counter()
        let runner = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(2), "scheduler": .string("pndm")], setup: setup)
        var items = [Self.storyItem("s1", seed: 5, images: setup.panelImages), Self.storyItem("s2", seed: 5, images: setup.panelImages),
                     Self.storyItem("s3", seed: 6, images: setup.panelImages), Self.storyItem("s4", seed: 7, images: [])]
        items[3].inputs["context"] = .number(3)
        let services = StepServices(media: setup.media, isCancelled: { false }, progress: { counter.tick($0, $1) })
        let together = try await runner.run(items, services: services)
        // PNDM: 3 UNet calls, each advancing the 3 good items at once.
        #expect(counter.ticks.map(\.0) == [3, 6, 9] && counter.ticks.allSatisfy { $0.1 == 12 })
        if case .failure = together[3] {} else { Issue.record("an item whose context is not text should fail alone") }
        for i in 0..<3 {
            let alone = try await runner.run([items[i]], services: StepServices(media: setup.media, isCancelled: { false }))
            let a = try Self.outputs(together[i]), b = try Self.outputs(alone[0])
            let batched = try Self.image(setup.media, a["image"]), single = try Self.image(setup.media, b["image"])
            #expect(StepHarness.levels(batched, single) <= 1, "item \(i): \(StepHarness.levels(batched, single)) levels apart")
            #expect(a["p_generate"] == b["p_generate"] && a["context_tokens"] == b["context_tokens"])
        }
        #expect(try Self.image(setup.media, Self.outputs(together[0])["image"]) != Self.image(setup.media, Self.outputs(together[2])["image"]))
    }

    @Test("the context settings feed different inputs and give different images")
    func contextSettings() async throws {
        let setup = try Self.setup()
        let gill = try GILLModel.load(from: Self.tinyGILL)
        var tokens: [String: Double] = [:], images: [String: Image] = [:]
        for mode in GILLContextMode.allCases {
            let runner = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(1), "scheduler": .string("ddim"),
                                                                         "context": .string(mode.rawValue)], setup: setup)
            let ctx = StepServices(media: setup.media, isCancelled: { false })
            let out = try Self.outputs(try await runner.run([Self.storyItem("s1", seed: 1, images: setup.panelImages)], services: ctx)[0])
            tokens[mode.rawValue] = out["context_tokens"]?.number
            images[mode.rawValue] = try Self.image(setup.media, out["image"])
        }
        let count = { (s: String) in Double(gill.tokenizer.encode(s, addBOS: false).count) }
        let texts = Self.captions.compactMap(\.text)
        #expect(tokens["last-caption"] == 1 + count(texts[2]))
        // GILL's layout: BOS once, each caption tokenised on its own.
        #expect(tokens["captions"] == 1 + count(texts[0]) + count(texts[1]) + count(texts[2]))
        // Two earlier images (the third bound image belongs to the last caption and is not read).
        #expect(tokens["captions+images"] == 1 + Double(2 * gill.config.nVisualTokens) + count(texts[0]) + count(texts[1]) + count(texts[2]))
        #expect(images["last-caption"] != images["captions"] && images["captions"] != images["captions+images"])
        // The earlier layout only when asked for: captions joined by spaces, each image before its caption.
        let legacy = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(1), "scheduler": .string("ddim"),
                                                                     "context": .string("captions+images"), "layout": .string("legacy")], setup: setup)
        let legacyOut = try Self.outputs(try await legacy.run([Self.storyItem("s1", seed: 1, images: setup.panelImages)],
                                                             services: StepServices(media: setup.media, isCancelled: { false }))[0])
        #expect(legacyOut["context_tokens"]?.number == 1 + Double(2 * gill.config.nVisualTokens) + count(texts[0]) + count(texts[1]) + count(" " + texts[2]))
    }

    @Test("dialogues read the caption and the first `rounds` rounds; an unbound rounds input is an error")
    func dialogues() async throws {
        let setup = try Self.setup()
        let rounds: Value = .list([.list([.text("Is it big?"), .text("No.")]), .list([.text("Where is it?"), .text("On the left.")])])
        let entry = Entry(id: "d1", kind: .dialogue, panels: [Panel(image: nil, text: "A photo with a ball.")],
                          rounds: [DialogueRound(question: "Is it big?", answer: "No."), DialogueRound(question: "Where is it?", answer: "On the left.")])
        func item(_ inputs: [String: Value]) -> StepItem { StepItem(id: "d1", entry: entry, panelIndex: nil, inputs: inputs, pools: [:], seed: 2) }
        let gill = try GILLModel.load(from: Self.tinyGILL)
        let ctx = StepServices(media: setup.media, isCancelled: { false })
        for n in [0, 1, 2] {
            let runner = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(1), "rounds": .number(Double(n))], setup: setup)
            let out = try Self.outputs(try await runner.run([item(["context": .list([.text("A photo with a ball.")]), "rounds": rounds])], services: ctx)[0])
            // GILL's VisDial layout: the rounds alone as `Q: …?` / `A: …` lines; the caption only without rounds.
            let text = n == 0 ? "A photo with a ball."
                : [("Is it big?", "No."), ("Where is it?", "On the left.")].prefix(n).flatMap { ["Q: \($0.0)", "A: \($0.1)"] }.joined(separator: "\n")
            #expect(out["context_tokens"]?.number == Double(1 + gill.tokenizer.encode(text, addBOS: false).count))
        }
        let runner = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(1)], setup: setup)
        let missing = try await runner.run([item(["context": .text("A photo with a ball.")])], services: ctx)
        if case .failure(let m) = missing[0] { #expect(m.contains("d1 is a dialogue") && m.contains("rounds")) } else { Issue.record("unbound rounds should fail") }
        let bad = try await runner.run([item(["context": .text("A photo."), "rounds": .list([.list([.text("only a question")])])])], services: ctx)
        if case .failure(let m) = bad[0] { #expect(m.contains("round 1")) } else { Issue.record("a malformed round should fail") }
    }

    @Test("cancellation between denoising steps throws; a model whose mapper does not fit the UNet fails to load with both widths")
    func cancellationAndWidthCheck() async throws {
        let setup = try Self.setup()
        let counter = Counter()
        counter.cancelAfter = 1
        let runner = try Self.runner(GILLGenerateStep.kind, params: ["steps": .number(3), "scheduler": .string("euler")], setup: setup)
        await #expect(throws: CancellationError.self) {
            _ = try await runner.run([Self.storyItem("s1", seed: 1, images: [])],
                                     services: StepServices(media: setup.media, isCancelled: { counter.cancelled }, progress: { counter.tick($0, $1) }))
        }
        #expect(counter.ticks.count == 1)

        // The parity fixture's GILL (mapper output 20 wide) pointed at the tiny SD (UNet 32 wide).
        let folder = setup.root.appendingPathComponent("narrow-gill")
        try FileManager.default.copyItem(at: Self.repository.appendingPathComponent("Tests/ModelsTests/Fixtures/gill/tiny"), to: folder)
        let configURL = folder.appendingPathComponent("config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        json["decoder"] = Self.repository.appendingPathComponent("Examples/models/tiny-sd").path
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
        do {
            _ = try Self.runner(GILLGenerateStep.kind, params: [:], setup: setup, folder: folder)
            Issue.record("a 20-wide GILL must not load with a 32-wide UNet")
        } catch {
            let m = "\(error)"
            #expect(m.contains("gen_emb_dim 20") && m.contains("cross_attention_dim 32") && m.contains(configURL.path), "\(m)")
        }
    }

    @Test("gill-story: GILL's sequence (text, then an image with its decision, retrieved pool ids and generated image) after the first panels; seeded; produce: decided skips SD when retrieving")
    func story() async throws {
        let setup = try Self.setup()
        let gill = try GILLModel.load(from: Self.tinyGILL)
        // The pool: GILL retrieval embeddings of the three panel images, as gill-embed writes them.
        var pool: [(id: String, value: Value)] = []
        for (i, v) in setup.panelImages.enumerated() {
            let image = try Image.load(contentsOf: setup.media.url(hash: v.image!.hash, ext: "png")).converted(toChannels: 3)
            pool.append(("other#\(i)", .vector(try gill.imageRetrievalEmbeddings([image])[0])))
        }
        func item(_ seed: UInt64) -> StepItem {
            var it = Self.storyItem("s1", seed: seed, images: setup.panelImages)
            it.pools = ["pool": pool]
            return it
        }
        let params: [String: JSONValue] = ["panels": .number(2), "num_words": .number(3), "gen_scale_factor": .number(1e5),
                                           "steps": .number(1), "scheduler": .string("ddim")]
        let runner = try Self.runner(GILLStoryStep.kind, params: params, setup: setup)
        let ctx = StepServices(media: setup.media, isCancelled: { false })
        let out = try await runner.run([item(3), item(3)], services: ctx).map(Self.outputs)
        let sequence = try #require(out[0]["sequence"]?.list)
        // [IMG0] forced at the first step: an empty text piece, then the block.
        #expect(sequence.count == 2 && sequence[0] == .text(""))
        let record = try #require(sequence[1].record)
        guard case .ranked(let retrieved)? = record["retrieved"] else { Issue.record("no retrieved candidates: \(record.keys)"); return }
        #expect(retrieved.count == 3 && Set(retrieved.map(\.id)) == Set(pool.map(\.id)))
        guard case .choice(let decision, let p)? = record["decision"] else { Issue.record("no decision"); return }
        #expect(decision == "generate" || decision == "retrieve")
        #expect(p >= 0.5 && p <= 1)
        #expect(record["p_generate"]?.number != nil && record["generated_score"]?.number != nil)
        let generated = try Self.image(setup.media, record["generated"])
        #expect(generated.width == 64)
        #expect(out[0]["image_count"] == .number(1) && out[0] == out[1])
        // The same context embedded directly gives the same story.
        let texts = Self.captions.compactMap(\.text)
        var segments: [GILLSegment] = []
        for i in 0..<2 {
            let image = try Image.load(contentsOf: setup.media.url(hash: setup.panelImages[i].image!.hash, ext: "png")).converted(toChannels: 3)
            segments += [.text(texts[i]), .image(GILLPrompt.squashed(image))]
        }
        var o = GILLStoryOptions()
        o.numWords = 3
        o.genScaleFactor = 1e5
        let direct = try gill.story(prompt: gill.embed(GILLPrompt.segments(segments)), options: o, pool: pool.map { $0.value.vector! })
        #expect(out[0]["text"] == .text(direct.text))
        if case .image(let block)? = direct.pieces.last {
            #expect(block.retrieved.map { pool[$0.index].id } == retrieved.map(\.id))
        } else { Issue.record("direct story has no image") }
        // Without a pool GILL generates; with produce: decided, a retrieval runs no SD.
        var noPool = item(3)
        noPool.pools = [:]
        let gen = try Self.outputs(try await runner.run([noPool], services: ctx)[0])
        let genRecord = try #require(gen["sequence"]?.list?.last?.record)
        #expect(genRecord["decision"] == .choice("generate", probability: 1) && genRecord["retrieved"] == nil)
        #expect(gen["image"] == genRecord["generated"])
        var decided = params
        decided["produce"] = .string("decided")
        let decidedOut = try Self.outputs(try await Self.runner(GILLStoryStep.kind, params: decided, setup: setup).run([item(3)], services: ctx)[0])
        let decidedRecord = try #require(decidedOut["sequence"]?.list?.last?.record)
        #expect((decidedRecord["generated"] != nil) == (decision == "generate"))
        // GILL's VIST evaluation layout: five captions, four images (the last caption has none) — as gill-generate reads it.
        let vist = try #require(try Self.runner(GILLStoryStep.kind, params: ["panels": .number(0)], setup: setup) as? GILLStoryStep.Runner)
        var vistItem = Self.storyItem("s1", seed: 1, images: Array(setup.panelImages.prefix(2)))
        vistItem.inputs["context"] = .list(Self.captions)
        let images = try GILLInputs.images(vistItem.inputs["images"], services: ctx)
        #expect(GILLPrompt.layout(try vist.segments(vistItem, services: ctx), tokenizer: gill.tokenizer, visualTokens: 4)
                == GILLPrompt.layout(GILLContext.story(captions: texts, images: images, mode: .captionsAndImages), tokenizer: gill.tokenizer, visualTokens: 4))
        // Greedy decoding with top_p is refused when the runner is made.
        #expect(throws: (any Error).self) { _ = try Self.runner(GILLStoryStep.kind, params: ["top_p": .number(0.5)], setup: setup) }
    }

    @Test("gill-story: the images of a batch's items are denoised together and equal each item run alone, to one 8-bit level")
    func storyBatch() async throws {
        let setup = try Self.setup()
        let params: [String: JSONValue] = ["panels": .number(2), "num_words": .number(3), "gen_scale_factor": .number(1e5),
                                           "steps": .number(2), "scheduler": .string("euler")]
        let runner = try Self.runner(GILLStoryStep.kind, params: params, setup: setup)
        let items = [Self.storyItem("s1", seed: 3, images: setup.panelImages), Self.storyItem("s2", seed: 4, images: setup.panelImages)]
        let counter = Counter()
        let together = try await runner.run(items, services: StepServices(media: setup.media, isCancelled: { false },
                                                                           progress: { counter.tick($0, $1) })).map(Self.outputs)
        // One generated image per story (no pool: GILL generates): 2 UNet calls, each for both items.
        #expect(counter.ticks.map(\.0) == [2, 4] && counter.ticks.allSatisfy { $0.1 == 4 })
        for i in 0..<2 {
            let alone = try Self.outputs(try await runner.run([items[i]], services: StepServices(media: setup.media, isCancelled: { false }))[0])
            #expect(together[i]["text"] == alone["text"] && together[i]["image_count"] == .number(1))
            let a = try #require(together[i]["sequence"]?.list?.last?.record), b = try #require(alone["sequence"]?.list?.last?.record)
            #expect(a["decision"] == b["decision"] && a["p_generate"] == b["p_generate"])
            let batched = try Self.image(setup.media, a["generated"]), single = try Self.image(setup.media, b["generated"])
            #expect(StepHarness.levels(batched, single) <= 1, "item \(i): \(StepHarness.levels(batched, single)) levels apart")
            #expect(together[i]["image"] == a["generated"])
        }
        #expect(together[0]["image"] != together[1]["image"])
    }
}
