import Foundation
import Imaging
import Models
import Tensor
import Workflow

/// `gill-generate`: GILL's image generation for a story or dialogue context. The [IMG] tokens are
/// forced after the context (GILL's rule for a generation request), the GILLMapper turns their
/// hidden states into `[77, D]` prompt embeddings, and the GILL folder's Stable Diffusion decoder
/// (`sd/` or config `decoder`) denoises from them; the unconditional half of guidance is the SD
/// text encoder's empty prompt, as in GILL. Seeded per item like `generate`; with `batch_size` above 1 the
/// batch's items are denoised together (one UNet call per step), still cached per item.
public enum GILLGenerateStep {
    public static let kind = StepKind(
        name: "gill-generate", version: 3,
        summary: "GILL image generation: [IMG] hidden states → GILLMapper prompt embeddings → Stable Diffusion, seeded like generate.",
        scope: .entry,
        params: Params.self,
        inputs: GILLInputs.contextInputs,
        outputs: ["image", "p_generate", "context_tokens"],
        stochastic: true, modelKinds: ["gill"], defaultBatchSize: 1, scopeSelectable: true,
        makeRunner: { params, config in try Runner(params: params, model: config.model) })

    public struct Params: StepParams {
        @Param(help: GILLInputs.contextHelp) public var context = GILLContextMode.captions
        @Param(help: GILLInputs.roundsHelp, min: 0, max: 100) public var rounds = 10
        @Param(help: GILLInputs.layoutHelp) public var layout = GILLContextLayout.gill
        @Param(help: "denoising steps (GILL: 50)", min: 1, max: 1000) public var steps = 50
        @Param(help: "classifier-free guidance scale (GILL: 7.5; ≤ 1 disables it)", min: 0, max: 50) public var guidance = 7.5
        @Param(help: "ddim, pndm (SD v1.5's default, GILL's), euler or dpm++2m, configured from the decoder's scheduler_config.json")
        public var scheduler = SchedulerKind.pndm
        @Param(help: "base seed; each item's seed derives from it and the item id", min: 0) public var seed = 0
        @Param(help: "image width in pixels (0: the decoder's default)", min: 0, max: 4096) public var width = 0
        @Param(help: "image height in pixels (0: the decoder's default)", min: 0, max: 4096) public var height = 0
        public init() {}
    }

    struct Runner: StepRunner {
        let generator: GILLImageGenerator
        let reading: GILLInputs.Reading
        let options: GenerationOptions

        init(params: Params, model: ResolvedModel?) throws {
            generator = try SharedModels.gillGenerators.get(model)
            reading = GILLInputs.Reading(mode: params.context, maxRounds: params.rounds, layout: params.layout)
            options = GenerationOptions(steps: params.steps, guidance: Float(params.guidance), scheduler: params.scheduler,
                                        seed: 0, width: params.width > 0 ? params.width : nil,
                                        height: params.height > 0 ? params.height : nil)
        }

        /// UNet calls per item: PNDM's PLMS repeats one timestep.
        var callsPerItem: Int { options.scheduler == .pndm ? options.steps + 1 : options.steps }

        /// The items of one executor batch (`batch_size`) are denoised together, one UNet call per step for
        /// all of them, each from its own seed's noise (as `generate` does); a batch of one is exactly the
        /// per-item call. An item whose context fails fails alone. Progress counts item-UNet calls.
        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            var prepared: [(slot: Int, tokens: Int, outputs: GILLImageOutputs)] = []
            for (i, item) in items.enumerated() {
                if services.isCancelled() { throw CancellationError() }
                do {
                    let embeddings = try generator.gill.embed(try GILLInputs.segments(item, reading: reading, services: services))
                    prepared.append((i, embeddings.rowCount, try generator.gill.imageOutputs(context: embeddings)))
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    outcomes[i] = .failure("\(error)")
                }
            }
            if !prepared.isEmpty {
                let total = items.count * callsPerItem, together = prepared.count
                do {
                    let pixels = try generator.generate(promptEmbeddings: prepared.map(\.outputs.promptEmbeddings),
                                                        seeds: prepared.map { items[$0.slot].seed }, options: options,
                                                        progress: { step, _ in services.progress(step * together, total) },
                                                        isCancelled: services.isCancelled)
                    for (k, p) in prepared.enumerated() {
                        do {
                            let image = try StableDiffusionPipeline.images(pixels[k])[0]
                            let hash = try services.media.put(try PNGCodec.encode(image), ext: "png")
                            var out: Outputs = ["image": .image(ImageRef(hash: hash, ext: "png")),
                                                "context_tokens": .number(Double(p.tokens))]
                            if let g = p.outputs.pGenerate { out["p_generate"] = .number(Double(g)) }
                            outcomes[p.slot] = .success(out)
                        } catch {
                            outcomes[p.slot] = .failure("\(error)")
                        }
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    for p in prepared { outcomes[p.slot] = .failure("\(error)") }
                }
            }
            return outcomes.map { $0 ?? .failure("no result") }
        }
    }
}
