import Foundation
import Imaging
import Models
import Store
import Tensor
import Workflow

extension SchedulerKind: ParamChoice {}

/// `generate`: baseline Stable Diffusion text-to-image, one image (or `images_per_item`) per item.
///
/// The prompt is the `text` input (a list — e.g. `texts` or `context_texts` of an entry — is joined
/// with spaces; use `template` upstream for anything fancier). The per-item seed drives the
/// torch-compatible noise, so an item's image equals diffusers' `StableDiffusionPipeline` with
/// `generator=torch.Generator("cpu").manual_seed(seed)` and the same settings. With `batch_size` above 1
/// the batch's items are denoised together (one UNet call per step), each from its own seed's noise, and
/// still cached per item. Images go to the media store as PNG; latents are not kept. Denoising progress is
/// reported per UNet call and cancellation is checked between calls.
public enum GenerateStep {
    public static let kind = StepKind(
        name: "generate", version: 1,
        summary: "Stable Diffusion text-to-image (native UNet + VAE + CLIP text encoder), seeded like diffusers.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("text", doc: "the prompt (a text, or a list of texts joined with spaces)")],
        outputs: ["image", "images"],
        stochastic: true, modelKinds: ["stable-diffusion"], defaultBatchSize: 1, scopeSelectable: true,
        makeRunner: { params, config in try Runner(params: params, model: config.model) })

    public struct Params: StepParams {
        @Param(help: "denoising steps", min: 1, max: 1000) public var steps = 50
        @Param(help: "classifier-free guidance scale (≤ 1 disables it)", min: 0, max: 50) public var guidance = 7.5
        @Param(help: "ddim, pndm (PLMS, SD v1.5's default), euler or dpm++2m, configured from the model's scheduler_config.json")
        public var scheduler = SchedulerKind.pndm
        @Param(help: "base seed; each item's seed derives from it and the item id", min: 0) public var seed = 0
        @Param(help: "image width in pixels (0: the model's default)", min: 0, max: 4096) public var width = 0
        @Param(help: "image height in pixels (0: the model's default)", min: 0, max: 4096) public var height = 0
        @Param(help: "what to steer away from (\"\" is plain unconditional guidance)") public var negativePrompt = ""
        @Param(help: "images per item; outputs `images` when above 1", min: 1, max: 16) public var imagesPerItem = 1
        @Param(help: "cut prompts longer than the text encoder's 77 tokens instead of failing the item")
        public var truncatePrompt = false
        public init() {}
    }

    struct Runner: StepRunner {
        let pipeline: StableDiffusionPipeline
        let options: GenerationOptions
        let negativePrompt: String

        init(params: Params, model: ResolvedModel?) throws {
            pipeline = try SharedModels.stableDiffusion.get(model)
            options = GenerationOptions(steps: params.steps, guidance: Float(params.guidance), scheduler: params.scheduler,
                                        seed: 0, width: params.width > 0 ? params.width : nil,
                                        height: params.height > 0 ? params.height : nil, imagesPerPrompt: params.imagesPerItem,
                                        truncatePrompt: params.truncatePrompt)
            negativePrompt = params.negativePrompt
        }

        /// UNet calls per item: PNDM's PLMS repeats one timestep.
        var callsPerItem: Int { options.scheduler == .pndm ? options.steps + 1 : options.steps }

        /// The items of one executor batch (`batch_size`) are denoised together, one UNet call per step for
        /// all of them; each keeps its own seed's noise, so its image matches a batch of one to float rounding.
        /// A missing or too-long prompt fails only its item. Progress counts item-UNet calls.
        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            var conds: [Tensor] = [], seeds: [UInt64] = [], slots: [Int] = []
            for (i, item) in items.enumerated() {
                if services.isCancelled() { throw CancellationError() }
                do {
                    guard let prompt = item.inputs["text"].flatMap(CLIPText.flatten) else {
                        throw StepError("input text is missing or not text (\(item.inputs["text"]?.summary ?? "none"))")
                    }
                    conds.append(try pipeline.encodePrompt(prompt, truncate: options.truncatePrompt))
                    seeds.append(item.seed)
                    slots.append(i)
                } catch {
                    outcomes[i] = .failure("\(error)")
                }
            }
            if !conds.isEmpty {
                let total = items.count * callsPerItem, together = conds.count
                do {
                    let negative = options.guidance > 1 ? try pipeline.encodePrompt(negativePrompt, truncate: options.truncatePrompt) : nil
                    let images = try pipeline.generate(promptEmbeddings: conds,
                                                       negativePromptEmbeddings: negative.map { Array(repeating: $0, count: together) },
                                                       seeds: seeds, options: options,
                                                       progress: { step, _ in services.progress(step * together, total) },
                                                       isCancelled: services.isCancelled)
                    for (k, slot) in slots.enumerated() {
                        do { outcomes[slot] = .success(try store(images[k], media: services.media)) }
                        catch { outcomes[slot] = .failure("\(error)") }
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    for slot in slots { outcomes[slot] = .failure("\(error)") }
                }
            }
            return outcomes.map { $0 ?? .failure("no result") }
        }

        /// One item's images into the media store as PNG: `image`, and `images` when there are several.
        func store(_ images: Tensor, media: MediaStore) throws -> Outputs {
            var refs: [Value] = []
            for image in try StableDiffusionPipeline.images(images) {
                let hash = try media.put(try PNGCodec.encode(image), ext: "png")
                refs.append(.image(ImageRef(hash: hash, ext: "png")))
            }
            var out: Outputs = ["image": refs[0]]
            if refs.count > 1 { out["images"] = .list(refs) }
            return out
        }
    }
}
