import Foundation
import Imaging
import Models
import Stories
import Store
import Testing
@testable import Steps
@testable import Workflow

/// The `generate` step on the committed tiny diffusers folder (`Examples/models/tiny-sd`).
@Suite("generate step")
struct GenerateStepTests {
    static var tinySD: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Examples/models/tiny-sd")
    }

    final class Counter: @unchecked Sendable {
        let lock = NSLock()
        var ticks: [(Int, Int)] = []
        var cancelAfter: Int?
        func tick(_ d: Int, _ t: Int) { lock.withLock { ticks.append((d, t)) } }
        var cancelled: Bool { lock.withLock { cancelAfter.map { ticks.count >= $0 } ?? false } }
    }

    func run(params: [String: JSONValue], texts: [Value], seeds: [UInt64], counter: Counter = Counter()) async throws -> (MediaStore, [ItemOutcome]) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let media = try MediaStore(root: root.appendingPathComponent("media"))
        var full: [String: JSONValue] = [:]
        for p in GenerateStep.kind.params { if let d = p.defaultValue { full[p.name] = d } }
        for (k, v) in params { full[k] = v }
        let model = ResolvedModel(name: "sd", kind: "stable-diffusion", folder: Self.tinySD, digest: "tiny")
        let config = StepConfiguration(stepID: "gen", kind: "generate", params: full, model: model,
                                       collection: StoryCollection(name: "c", root: root, entries: []),
                                       workflowFolder: root, media: media, allowOutsideRoot: false)
        let runner = try GenerateStep.kind.makeRunner(config)
        let entry = Entry(id: "e1", kind: .story, panels: [Panel(image: nil, text: "x")])
        let items = zip(texts, seeds).enumerated().map { i, pair in
            StepItem(id: "e\(i + 1)", entry: entry, panelIndex: 0, inputs: ["text": pair.0], pools: [:], seed: pair.1)
        }
        let services = StepServices(media: media, isCancelled: { counter.cancelled }, progress: { counter.tick($0, $1) })
        return (media, try await runner.run(items, services: services))
    }

    func image(_ media: MediaStore, _ v: Value?) throws -> Image {
        let ref = try #require(v?.image)
        #expect(ref.ext == "png")
        return try Image.load(contentsOf: media.url(hash: ref.hash, ext: ref.ext))
    }

    func levels(_ a: Image, _ b: Image) -> Int { StepHarness.levels(a, b) }

    @Test("stores the pipeline's image for the item seed; lists are joined; progress per UNet call")
    func generatesSeededImages() async throws {
        let counter = Counter()
        let params: [String: JSONValue] = ["steps": .number(2), "scheduler": .string("ddim"), "negative_prompt": .string("dark")]
        let (media, out) = try await run(params: params,
                                         texts: [.text("a red ball"), .list([.text("a red"), .text("ball")]), .number(3)],
                                         seeds: [5, 5, 9], counter: counter)
        guard case .success(let a) = out[0], case .success(let b) = out[1] else { Issue.record("items failed: \(out)"); return }
        let first = try image(media, a["image"])
        #expect(first.width == 64 && first.height == 64 && first.channels == 3)
        // The list input joins to the same prompt, and the same seed gives the same image (to rounding:
        // the two items were denoised together).
        #expect(try levels(image(media, b["image"]), first) <= 1)
        #expect(a["images"] == nil)
        // Equal to the pipeline called directly with the item's seed.
        let pipe = try StableDiffusionPipeline(folder: Self.tinySD)
        let direct = try StableDiffusionPipeline.images(pipe.generate(
            prompt: "a red ball", negativePrompt: "dark", options: GenerationOptions(steps: 2, scheduler: .ddim, seed: 5)))
        #expect(levels(direct[0], first) <= 1)
        if case .failure(let message) = out[2] { #expect(message.contains("not text")) } else { Issue.record("a number prompt should fail") }
        // The two good items share each UNet call: 2 calls, each advancing both items.
        #expect(counter.ticks.map(\.0) == [2, 4] && counter.ticks.last!.1 == 6)
    }

    @Test("a batch of 4 items equals each item run alone, to one 8-bit level")
    func batchOfFour() async throws {
        let params: [String: JSONValue] = ["steps": .number(2), "scheduler": .string("pndm")]
        let texts: [Value] = [.text("a red ball"), .text("a blue box"), .text("a tree"), .text("a red ball")]
        let seeds: [UInt64] = [1, 2, 3, 4]
        let (media, together) = try await run(params: params, texts: texts, seeds: seeds)
        for i in 0..<4 {
            let (aloneMedia, alone) = try await run(params: params, texts: [texts[i]], seeds: [seeds[i]])
            guard case .success(let a) = together[i], case .success(let b) = alone[0] else { Issue.record("item \(i) failed"); continue }
            #expect(try levels(image(media, a["image"]), image(aloneMedia, b["image"])) <= 1, "item \(i)")
        }
        // The same item alone again: exact, whatever runs beside it in this process.
        let (m1, once) = try await run(params: params, texts: [texts[0]], seeds: [seeds[0]])
        let (m2, twice) = try await run(params: params, texts: [texts[0]], seeds: [seeds[0]])
        guard case .success(let x) = once[0], case .success(let y) = twice[0] else { Issue.record("repeat failed"); return }
        #expect(try image(m1, x["image"]) == image(m2, y["image"]))
    }

    @Test("images_per_item outputs the images list; different seeds differ")
    func severalImages() async throws {
        let (media, out) = try await run(params: ["steps": .number(1), "images_per_item": .number(2), "guidance": .number(1)],
                                         texts: [.text("a box"), .text("a box")], seeds: [1, 2])
        guard case .success(let a) = out[0], case .success(let b) = out[1] else { Issue.record("items failed: \(out)"); return }
        let list = try #require(a["images"]?.list)
        #expect(list.count == 2 && list[0] == a["image"])
        #expect(try image(media, list[0]) != image(media, list[1]))
        #expect(try image(media, a["image"]) != image(media, b["image"]))
    }

    @Test("cancellation between denoising steps throws; a too-long prompt fails only its item")
    func cancellationAndErrors() async throws {
        let counter = Counter()
        counter.cancelAfter = 1
        await #expect(throws: CancellationError.self) {
            _ = try await run(params: ["steps": .number(3), "scheduler": .string("euler")], texts: [.text("a")], seeds: [1], counter: counter)
        }
        #expect(counter.ticks.count == 1)
        let long = String(repeating: "the ball rolls right ", count: 40)
        let (_, out) = try await run(params: ["steps": .number(1)], texts: [.text(long), .text("ok")], seeds: [1, 2])
        if case .failure(let m) = out[0] { #expect(m.contains("tokens")) } else { Issue.record("long prompt should fail") }
        if case .success = out[1] {} else { Issue.record("second item should succeed: \(out[1])") }
    }
}
