import Foundation
import Imaging
import Models
import Tensor
import Workflow

/// `gill-generate`: GILL's image generation for a story or dialogue context. The [IMG] tokens are
/// forced after the context (GILL's rule for a generation request), the GILLMapper turns their
/// hidden states into `[77, D]` prompt embeddings, and the GILL folder's Stable Diffusion decoder
/// (`sd/` or config `decoder`) denoises from them; the unconditional half of guidance is the SD
/// text encoder's empty prompt, as in GILL. Seeded per item like `generate`.
public enum GILLGenerateStep {
    public static let kind = StepKind(
        name: "gill-generate", version: 2,
        summary: "GILL image generation: [IMG] hidden states → GILLMapper prompt embeddings → Stable Diffusion, seeded like generate.",
        scope: .entry,
        params: GILLInputs.contextParams + [
            ParamSpec("steps", .int(min: 1, max: 1000), default: .number(50), doc: "denoising steps (GILL: 50)"),
            ParamSpec("guidance", .double(min: 0, max: 50), default: .number(7.5), doc: "classifier-free guidance scale (GILL: 7.5; ≤ 1 disables it)"),
            ParamSpec("scheduler", .choice(SchedulerKind.allCases.map(\.rawValue)), default: .string("pndm"),
                      doc: "ddim, pndm (SD v1.5's default, GILL's), euler or dpm++2m, configured from the decoder's scheduler_config.json"),
            ParamSpec("seed", .int(min: 0, max: nil), default: .number(0), doc: "base seed; each item's seed derives from it and the item id"),
            ParamSpec("width", .int(min: 0, max: 4096), default: .number(0), doc: "image width in pixels (0: the decoder's default)"),
            ParamSpec("height", .int(min: 0, max: 4096), default: .number(0), doc: "image height in pixels (0: the decoder's default)"),
        ],
        inputs: GILLInputs.contextInputs,
        outputs: ["image", "p_generate", "context_tokens"],
        stochastic: true, modelKinds: ["gill"], defaultBatchSize: 1, scopeSelectable: true,
        makeRunner: { config in try Runner(config: config) })

    struct Runner: StepRunner {
        let generator: GILLImageGenerator
        let reading: GILLInputs.Reading
        let options: GenerationOptions

        init(config: StepConfiguration) throws {
            generator = try SharedModels.gillGenerators.get(config.model)
            reading = try GILLInputs.Reading(config)
            guard let scheduler = SchedulerKind(rawValue: config.string("scheduler") ?? "pndm") else {
                throw StepError("unknown scheduler \(config.string("scheduler") ?? "")")
            }
            let width = config.int("width") ?? 0, height = config.int("height") ?? 0
            options = GenerationOptions(steps: config.int("steps") ?? 50, guidance: Float(config.double("guidance") ?? 7.5),
                                        scheduler: scheduler, seed: 0, width: width > 0 ? width : nil, height: height > 0 ? height : nil)
        }

        /// UNet calls per item: PNDM's PLMS repeats one timestep.
        var callsPerItem: Int { options.scheduler == .pndm ? options.steps + 1 : options.steps }

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            var outcomes: [ItemOutcome] = []
            let total = items.count * callsPerItem
            for (index, item) in items.enumerated() {
                if context.isCancelled() { throw CancellationError() }
                var o = options
                o.seed = item.seed
                let done = index * callsPerItem
                do {
                    let embeddings = try generator.gill.embed(try GILLInputs.segments(item, reading: reading, context: context))
                    let result = try generator.generate(context: embeddings, options: o,
                                                        progress: { step, _ in context.progress(done + step, total) },
                                                        isCancelled: context.isCancelled)
                    let image = try StableDiffusionPipeline.images(result.pixels)[0]
                    let hash = try context.media.put(try PNGCodec.encode(image), ext: "png")
                    var out: Outputs = ["image": .image(ImageRef(hash: hash, ext: "png")),
                                        "context_tokens": .number(Double(embeddings.rowCount))]
                    if let g = result.outputs.pGenerate { out["p_generate"] = .number(Double(g)) }
                    outcomes.append(.success(out))
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    outcomes.append(.failure("\(error)"))
                }
            }
            return outcomes
        }
    }
}
