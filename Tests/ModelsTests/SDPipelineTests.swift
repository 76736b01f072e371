import Foundation
import Testing
@testable import Models
import Tensor

/// Whole-pipeline parity with diffusers' `StableDiffusionPipeline` on the tiny fp16 folder
/// `Examples/models/tiny-sd` (64×64 images, 4 steps, guidance 7.5, seed 3; and the
/// prompt_embeds entry point with 2 images). Tolerance: 1e-3 absolute on the [0, 1] float
/// images (`output_type="np"`), i.e. a quarter of one 8-bit level.
@Suite("Stable Diffusion pipeline parity with diffusers")
struct SDPipelineTests {
    static let tolerance: Float = 1e-3

    static func runs() throws -> [[String: Any]] { try #require(SDFixtures.json("pipeline.json")["runs"] as? [[String: Any]]) }

    @Test("text prompt with a negative prompt, every scheduler")
    func textPrompt() throws {
        let pipe = try StableDiffusionPipeline(folder: SDFixtures.tinySD)
        let e = try SDFixtures.tensors("pipeline.safetensors")
        let runs = try Self.runs().filter { $0["prompt"] != nil }
        #expect(runs.count == SchedulerKind.allCases.count)
        for run in runs {
            let name = try #require(run["name"] as? String)
            let kindName = try #require(run["scheduler"] as? String)
            let kind = try #require(SchedulerKind(rawValue: kindName))
            let options = GenerationOptions(steps: try #require(run["steps"] as? Int), guidance: 7.5, scheduler: kind, seed: 3,
                                            width: 64, height: 64)
            var reported: [Int] = []
            let image = try pipe.generate(prompt: try #require(run["prompt"] as? String),
                                          negativePrompt: try #require(run["negative_prompt"] as? String),
                                          options: options, progress: { done, _ in reported.append(done) })
            let ref = try e.tensor(named: name)
            #expect(image.shape == ref.shape)
            let d = SDFixtures.maxAbsDifference(image, ref)
            #expect(d <= Self.tolerance, "\(name): max |Δ| = \(d)")
            #expect(reported == Array(1...pipe.unetCalls(kind, steps: 4)), "\(name): progress \(reported)")
        }
    }

    @Test("prompt_embeds entry point, empty-prompt guidance, two images from one draw")
    func promptEmbeds() throws {
        let pipe = try StableDiffusionPipeline(folder: SDFixtures.tinySD)
        let e = try SDFixtures.tensors("pipeline.safetensors")
        let embeds = try e.tensor(named: "prompt_embeds")
        let options = GenerationOptions(steps: 3, guidance: 4, scheduler: .pndm, seed: 17, imagesPerPrompt: 2)
        let image = try pipe.generate(promptEmbeddings: embeds, options: options)
        let ref = try e.tensor(named: "image_embeds")
        #expect(image.shape == [2, 64, 64, 3])
        let d = SDFixtures.maxAbsDifference(image, ref)
        #expect(d <= Self.tolerance, "max |Δ| = \(d)")
        let pngs = try StableDiffusionPipeline.images(image)
        #expect(pngs.count == 2 && pngs[0].width == 64 && pngs[0] != pngs[1])
    }

    @Test("a batch of 4 denoised together equals 4 single calls within the parity tolerance, every scheduler")
    func batchEqualsSingles() throws {
        let pipe = try StableDiffusionPipeline(folder: SDFixtures.tinySD)
        let prompts = ["a red ball", "a blue box on a table", "two green trees", "a cat"]
        let seeds: [UInt64] = [3, 11, 3, 40]
        for kind in SchedulerKind.allCases {
            let options = GenerationOptions(steps: 3, guidance: 7.5, scheduler: kind)
            var calls: [Int] = []
            // One thread: one batch (with more, a model this small is split into groups: the next test).
            let batch = try Threads.withLocalCount(1) {
                try pipe.generate(prompts: prompts, negativePrompt: "dark", seeds: seeds, options: options,
                                  progress: { done, _ in calls.append(done) })
            }
            #expect(batch.count == 4)
            #expect(calls == Array(1...pipe.unetCalls(kind, steps: 3)), "\(kind): one UNet call per step for the batch")
            for i in 0..<4 {
                var single = options
                single.seed = seeds[i]
                let alone = try pipe.generate(prompt: prompts[i], negativePrompt: "dark", options: single)
                #expect(batch[i].shape == alone.shape)
                let d = SDFixtures.maxAbsDifference(batch[i], alone)
                #expect(d <= Self.tolerance, "\(kind) item \(i): max |Δ| = \(d)")
            }
        }
        // The embeddings form, two images per item: each item's pair equals its single call.
        let e = try SDFixtures.tensors("pipeline.safetensors")
        let embeds = try e.tensor(named: "prompt_embeds")
        let options = GenerationOptions(steps: 2, guidance: 4, scheduler: .pndm, imagesPerPrompt: 2)
        let pair = try pipe.generate(promptEmbeddings: [embeds, embeds], seeds: [17, 5], options: options)
        var single = options
        single.seed = 5
        let alone = try pipe.generate(promptEmbeddings: embeds, options: single)
        #expect(pair[1].shape == [2, 64, 64, 3])
        #expect(SDFixtures.maxAbsDifference(pair[1], alone) <= Self.tolerance)
        #expect(throws: ModelError.self) { _ = try pipe.generate(promptEmbeddings: [embeds], seeds: [1, 2], options: options) }
    }

    @Test("a small model's batch split over two threads equals it denoised as one batch, items in order")
    func groupsEqualOneBatch() throws {
        let pipe = try StableDiffusionPipeline(folder: SDFixtures.tinySD)
        let prompts = ["a red ball", "a blue box on a table", "two green trees", "a cat", "a dog"]
        let seeds: [UInt64] = [3, 11, 3, 40, 7]
        let options = GenerationOptions(steps: 3, guidance: 7.5, scheduler: .ddim)
        #expect(Threads.withLocalCount(2) { pipe.itemGroups(items: 5, height: 8, width: 8, promptLength: 77) } == 2)
        #expect(Threads.withLocalCount(1) { pipe.itemGroups(items: 5, height: 8, width: 8, promptLength: 77) } == 1)
        let whole = try Threads.withLocalCount(1) {
            try pipe.generate(prompts: prompts, negativePrompt: "dark", seeds: seeds, options: options)
        }
        var calls: [Int] = []
        let grouped = try Threads.withLocalCount(2) {
            try pipe.generate(prompts: prompts, negativePrompt: "dark", seeds: seeds, options: options,
                              progress: { done, _ in calls.append(done) })
        }
        #expect(calls == [1, 2, 3], "the first group reports each step once")
        #expect(grouped.count == 5)
        for i in 0..<5 {
            let d = SDFixtures.maxAbsDifference(grouped[i], whole[i])
            #expect(d <= Self.tolerance, "item \(i): max |Δ| = \(d)")
        }
        // Items 0 and 2 share a seed and differ in prompt: a swapped order would show here.
        #expect(SDFixtures.maxAbsDifference(grouped[2], whole[0]) > Self.tolerance)
    }

    @Test("cancellation stops between denoising steps")
    func cancellation() throws {
        let pipe = try StableDiffusionPipeline(folder: SDFixtures.tinySD)
        var steps = 0
        #expect(throws: CancellationError.self) {
            _ = try pipe.generate(prompt: "a ball", options: GenerationOptions(steps: 5, scheduler: .ddim),
                                  progress: { done, _ in steps = done }, isCancelled: { steps >= 2 })
        }
        #expect(steps == 2)
    }

    @Test("bad requests and folders give clear errors")
    func errors() throws {
        let pipe = try StableDiffusionPipeline(folder: SDFixtures.tinySD)
        let long = Array(repeating: "the red ball rolls to the right", count: 20).joined(separator: " ")
        let tooLong = #expect(throws: ModelError.self) { _ = try pipe.encodePrompt(long) }
        #expect(tooLong?.message.contains("at most 75") == true)
        #expect(try pipe.encodePrompt(long, truncate: true).shape == [1, 77, 32])
        #expect(throws: ModelError.self) {
            _ = try pipe.generate(promptEmbeddings: Tensor(zeros: [77, 16]), options: GenerationOptions(steps: 1))
        }
        #expect(throws: ModelError.self) {
            _ = try pipe.generate(prompt: "x", options: GenerationOptions(steps: 1, width: 30, height: 64))
        }

        // A copy of the folder with vae/ removed, then with NaN weights in the UNet.
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sd-errors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try FileManager.default.copyItem(at: SDFixtures.tinySD, to: tmp)
        try FileManager.default.removeItem(at: tmp.appendingPathComponent("vae"))
        let missing = #expect(throws: ModelError.self) { _ = try StableDiffusionPipeline(folder: tmp) }
        #expect(missing?.description.contains("missing component folder 'vae/'") == true)

        let unetWeights = tmp.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let file = try SafetensorsFile(url: unetWeights)
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(named: name) }
        tensors["conv_in.bias"]!.data[0] = .nan
        try SafetensorsWriter.write(tensors, to: unetWeights, as: .f16)
        let nan = #expect(throws: TensorError.self) { _ = try UNet2DConditionModel.load(from: tmp.appendingPathComponent("unet")) }
        #expect(nan?.description.contains("conv_in.bias") == true && nan?.description.contains("NaN") == true)

        // An unsupported architecture switch is named.
        let configURL = tmp.appendingPathComponent("unet/config.json")
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config["class_embed_type"] = "timestep"
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let unsupported = #expect(throws: ModelError.self) { _ = try UNet2DConditionModel.load(from: tmp.appendingPathComponent("unet")) }
        #expect(unsupported?.field == "class_embed_type")
    }
}

extension StableDiffusionPipeline {
    /// How many UNet calls (progress ticks) a run makes: PNDM's PLMS repeats one timestep.
    func unetCalls(_ kind: SchedulerKind, steps: Int) -> Int { kind == .pndm ? steps + 1 : steps }
}
