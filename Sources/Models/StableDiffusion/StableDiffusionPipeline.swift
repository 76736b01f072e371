import Foundation
import Imaging
import Tensor

/// How to run one text-to-image generation.
public struct GenerationOptions: Sendable, Equatable {
    /// Denoising steps (`num_inference_steps`).
    public var steps: Int = 50
    /// Classifier-free guidance scale; at most 1 disables guidance (one UNet pass per step).
    public var guidance: Float = 7.5
    public var scheduler: SchedulerKind = .pndm
    /// Seed of the torch-compatible generator the initial latents are drawn from.
    public var seed: UInt64 = 0
    /// Image size in pixels; nil means the UNet's `sample_size` × the VAE's scale factor.
    public var width: Int?
    public var height: Int?
    /// Images per prompt (`num_images_per_prompt`); their latents come from one draw, as in diffusers.
    public var imagesPerPrompt: Int = 1
    /// Cut prompts longer than the text encoder's context (diffusers truncates with a warning);
    /// when false such a prompt is an error.
    public var truncatePrompt: Bool = false

    public init(steps: Int = 50, guidance: Float = 7.5, scheduler: SchedulerKind = .pndm, seed: UInt64 = 0,
                width: Int? = nil, height: Int? = nil, imagesPerPrompt: Int = 1, truncatePrompt: Bool = false) {
        self.steps = steps
        self.guidance = guidance
        self.scheduler = scheduler
        self.seed = seed
        self.width = width
        self.height = height
        self.imagesPerPrompt = imagesPerPrompt
        self.truncatePrompt = truncatePrompt
    }
}

/// Stable Diffusion v1.x text-to-image, as diffusers' `StableDiffusionPipeline` (no safety
/// checker), loaded from a diffusers folder: `model_index.json`, `unet/`, `vae/`,
/// `scheduler/`, and — for text prompts — `text_encoder/` (a transformers `CLIPTextModel`)
/// and `tokenizer/` (`vocab.json`, `merges.txt`).
///
/// Two entry points: `generate(prompt:negativePrompt:options:)` encodes text with CLIP;
/// `generate(promptEmbeddings:negativePromptEmbeddings:options:)` takes `[77, 768]`-shaped conditioning
/// directly (GILL's mapper output). Each has a batched form (`prompts:seeds:`, `promptEmbeddings: [Tensor]`
/// with `seeds:`) that denoises several items in one UNet call per step. Same seed, steps, scheduler and
/// guidance give the same image as diffusers on CPU in float32, to float rounding.
public final class StableDiffusionPipeline: Sendable {
    public let folder: URL
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public let textEncoder: CLIPModel?
    public let tokenizer: CLIPTokenizer?
    public let schedulerConfig: SchedulerConfig

    /// Loads every component; a missing `unet/`, `vae/` or `scheduler/` folder is an error
    /// naming it. The text encoder and tokenizer are optional (embeddings-only use). `precision`
    /// `.stored` keeps fp16 exports' weight matrices in f16 (half the memory); `.float32` widens.
    public init(folder: URL, precision: WeightPrecision = .stored) throws {
        self.folder = folder
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelError(file: folder.path, "is not a folder (expected a diffusers Stable Diffusion folder)")
        }
        guard fm.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) else {
            throw ModelError(file: folder.path, "no model_index.json: not a diffusers pipeline folder")
        }
        func component(_ name: String) throws -> URL {
            let url = folder.appendingPathComponent(name)
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ModelError(file: folder.path, "missing component folder '\(name)/'")
            }
            return url
        }
        unet = try UNet2DConditionModel.load(from: component("unet"), precision: precision)
        vae = try AutoencoderKL.load(from: component("vae"), decoderOnly: true, precision: precision)
        schedulerConfig = try SchedulerConfig(url: component("scheduler").appendingPathComponent("scheduler_config.json"))
        guard vae.config.latentChannels == unet.config.inChannels, unet.config.outChannels == unet.config.inChannels else {
            throw ModelError(file: folder.appendingPathComponent("unet/config.json").path, field: "in_channels",
                                       "UNet in/out channels \(unet.config.inChannels)/\(unet.config.outChannels) do not match the VAE's \(vae.config.latentChannels) latent channels")
        }
        let textURL = folder.appendingPathComponent("text_encoder")
        if fm.fileExists(atPath: textURL.path) {
            let encoder = try CLIPModel.load(from: textURL, precision: precision)
            guard let width = encoder.text?.config.hiddenSize else {
                throw ModelError(file: textURL.path, "has no CLIP text tower")
            }
            guard width == unet.config.crossAttentionDim else {
                throw ModelError(file: textURL.appendingPathComponent("config.json").path, field: "hidden_size",
                                           "\(width) does not match the UNet's cross_attention_dim \(unet.config.crossAttentionDim)")
            }
            textEncoder = encoder
            tokenizer = try CLIPTokenizer(folder: try component("tokenizer"),
                                          contextLength: encoder.text?.config.maxPositionEmbeddings ?? 77)
        } else {
            textEncoder = nil
            tokenizer = nil
        }
    }

    /// The default image size: UNet `sample_size` × VAE scale factor (512 for SD v1.5).
    public var defaultImageSize: Int { unet.config.sampleSize * vae.config.scaleFactor }

    /// `prompt_embeds` of one text: the CLIP text encoder's last hidden state, `[1, 77, D]`.
    public func encodePrompt(_ text: String, truncate: Bool = false) throws -> Tensor {
        guard let textEncoder, let tokenizer else {
            throw ModelError("\(folder.path) has no text_encoder/ and tokenizer/: pass prompt embeddings instead of text")
        }
        let length = tokenizer.encode(text).count
        if length > tokenizer.contextLength - 2 && !truncate {
            throw ModelError("prompt is \(length) tokens but the text encoder takes at most \(tokenizer.contextLength - 2) (plus start/end): shorten it or allow truncation — \"\(text.prefix(80))\(text.count > 80 ? "…" : "")\"")
        }
        return try textEncoder.textEncoderHiddenStates(tokenIDs: [tokenizer(text)])
    }

    /// Text-to-image from a prompt (and a negative prompt, "" by default, which is what
    /// diffusers uses for unconditional guidance).
    public func generate(prompt: String, negativePrompt: String = "", options: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> Tensor {
        try generate(prompts: [prompt], negativePrompt: negativePrompt, seeds: [options.seed], options: options,
                     progress: progress, isCancelled: isCancelled)[0]
    }

    /// Text-to-image for several prompts denoised together (one UNet call per step for the whole batch);
    /// each prompt's image equals a separate `generate(prompt:)` with its seed, to float rounding.
    public func generate(prompts: [String], negativePrompt: String = "", seeds: [UInt64], options: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> [Tensor] {
        let conds = try prompts.map { try encodePrompt($0, truncate: options.truncatePrompt) }
        let negative = options.guidance > 1 ? try encodePrompt(negativePrompt, truncate: options.truncatePrompt) : nil
        return try generate(promptEmbeddings: conds, negativePromptEmbeddings: negative.map { Array(repeating: $0, count: conds.count) },
                            seeds: seeds, options: options, progress: progress, isCancelled: isCancelled)
    }

    /// Text-to-image from conditioning embeddings — GILL's entry point.
    ///
    /// - Parameters:
    ///   - promptEmbeddings: `[T, D]` or `[1, T, D]` (D = the UNet's `cross_attention_dim`).
    ///   - negativePromptEmbeddings: the unconditional embeddings, same shape; nil encodes "" with the
    ///     text encoder (as diffusers does), which must then be present.
    /// - Returns: `[N, H, W, 3]` float images in [0, 1] (diffusers' `output_type="np"`).
    public func generate(promptEmbeddings: Tensor, negativePromptEmbeddings: Tensor? = nil, options o: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> Tensor {
        try generate(promptEmbeddings: [promptEmbeddings], negativePromptEmbeddings: negativePromptEmbeddings.map { [$0] },
                     seeds: [o.seed], options: o, progress: progress, isCancelled: isCancelled)[0]
    }

    /// Text-to-image for a batch of items from their conditioning embeddings, denoised together: one UNet
    /// call per step for every item (and image, and guidance half) at once.
    ///
    /// Each item's initial latents are drawn from its own seed exactly as a single call draws them, the
    /// schedulers act elementwise, and each item's latents are decoded alone, so item `i`'s images equal
    /// `generate(promptEmbeddings: promptEmbeddings[i], …, seed: seeds[i])` to float rounding (the batched
    /// matrix products round differently). `options.seed` is ignored: `seeds` gives one per item.
    ///
    /// - Parameters:
    ///   - promptEmbeddings: one `[T, D]` or `[1, T, D]` tensor per item, all the same shape.
    ///   - negativePromptEmbeddings: one per item (same shape), or nil to encode "" once for all.
    /// - Returns: per item, `[N, H, W, 3]` float images in [0, 1] (N = `imagesPerPrompt`).
    public func generate(promptEmbeddings: [Tensor], negativePromptEmbeddings: [Tensor]? = nil, seeds: [UInt64],
                         options o: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> [Tensor] {
        let items = promptEmbeddings.count
        guard items > 0 else { return [] }
        guard seeds.count == items else { throw ModelError("\(seeds.count) seeds for \(items) prompt embeddings: give one seed per item") }
        if let negativePromptEmbeddings, negativePromptEmbeddings.count != items {
            throw ModelError("\(negativePromptEmbeddings.count) negative prompt embeddings for \(items) prompt embeddings: give one per item")
        }
        let d = unet.config.crossAttentionDim
        func flat(_ t: Tensor, _ what: String, _ i: Int) throws -> Tensor {
            let ok = (t.rank == 2 && t.shape[1] == d) || (t.rank == 3 && t.shape[0] == 1 && t.shape[2] == d)
            let name = items > 1 ? "\(what) of item \(i)" : what
            guard ok else { throw ModelError("\(name) must be [T, \(d)] or [1, T, \(d)], got \(t.shape)") }
            return try t.reshaped([t.count / d, d])
        }
        let conds = try promptEmbeddings.enumerated().map { try flat($1, "prompt embeddings", $0) }
        for (i, cond) in conds.enumerated() where cond.shape != conds[0].shape {
            throw ModelError("prompt embeddings of item \(i) are \(cond.shape) but item 0's are \(conds[0].shape): items denoised together must share a shape")
        }
        let useGuidance = o.guidance > 1
        var negatives: [Tensor] = []
        if useGuidance {
            if let negativePromptEmbeddings {
                negatives = try negativePromptEmbeddings.enumerated().map { try flat($1, "negative prompt embeddings", $0) }
            } else {
                negatives = Array(repeating: try flat(encodePrompt(""), "empty-prompt embeddings", 0), count: items)
            }
            for (i, negative) in negatives.enumerated() where negative.shape != conds[i].shape {
                throw ModelError("negative embeddings \(negative.shape) and prompt embeddings \(conds[i].shape) differ in shape\(items > 1 ? " (item \(i))" : "")")
            }
        }
        guard o.steps >= 1, o.steps <= 1000 else { throw ModelError("steps must be in 1...1000, got \(o.steps)") }
        guard o.imagesPerPrompt >= 1, o.imagesPerPrompt <= 64 else { throw ModelError("images per prompt must be in 1...64, got \(o.imagesPerPrompt)") }
        let f = vae.config.scaleFactor
        let width = o.width ?? defaultImageSize, height = o.height ?? defaultImageSize
        guard width >= f, height >= f, width % f == 0, height % f == 0, width <= 4096, height <= 4096 else {
            throw ModelError("image size \(width)×\(height) must be a multiple of \(f) (the VAE scale factor), at most 4096")
        }
        let n = o.imagesPerPrompt, t = conds[0].rowCount
        let groups = itemGroups(items: items, height: height / f, width: width / f, promptLength: t)
        if groups > 1 {
            return try generateInGroups(groups, promptEmbeddings: promptEmbeddings,
                                        negativePromptEmbeddings: negativePromptEmbeddings, seeds: seeds, options: o,
                                        progress: progress, isCancelled: isCancelled)
        }
        let images = items * n
        let batch = useGuidance ? 2 * images : images
        // The UNet's batch: every unconditional row first, then every prompt row (diffusers' order for one
        // item, kept for several), each repeated per image of its item.
        var batchData: [Float] = []
        batchData.reserveCapacity(batch * t * d)
        for negative in negatives { for _ in 0..<n { batchData += negative.data } }
        for cond in conds { for _ in 0..<n { batchData += cond.data } }
        let batchEmbeddings = try Tensor(shape: [batch, t, d], data: batchData)

        var scheduler = try o.scheduler.make(config: schedulerConfig, steps: o.steps)
        let c = unet.config.inChannels
        let itemShape = [n, c, height / f, width / f]
        var latentData: [Float] = []
        latentData.reserveCapacity(images * c * (height / f) * (width / f))
        for seed in seeds {
            // One generator per item, as a single call would draw its latents.
            var generator = TorchGenerator(seed: seed)
            latentData += try generator.randn(shape: itemShape).data
        }
        var latents = try Tensor(shape: [images] + itemShape.dropFirst(), data: latentData)
        let sigma = scheduler.initNoiseSigma
        if sigma != 1 { latents.data.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= sigma } } }

        let total = scheduler.timesteps.count
        for (i, timestep) in scheduler.timesteps.enumerated() {
            if isCancelled() { throw CancellationError() }
            var input = latents
            if useGuidance { input = try Tensor(shape: [batch] + latents.shape.dropFirst(), data: latents.data + latents.data) }
            input = scheduler.scaleModelInput(input, step: i)
            var noise = try unet.forward(input, timesteps: [timestep], promptEmbeddings: batchEmbeddings)
            if useGuidance {
                let half = noise.count / 2, g = o.guidance
                var guided = [Float](repeating: 0, count: half)
                noise.data.withUnsafeBufferPointer { p in
                    for k in 0..<half { guided[k] = p[k] + g * (p[half + k] - p[k]) }
                }
                noise = try Tensor(shape: latents.shape, data: guided)
            }
            latents = try scheduler.step(modelOutput: noise, step: i, sample: latents)
            progress(i + 1, total)
        }
        if isCancelled() { throw CancellationError() }
        let inv = 1 / vae.config.scalingFactor
        latents.data.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= inv } }
        // Decoded per item: the VAE at full resolution is the memory peak, and a single call decodes this way.
        let per = latents.count / items
        return try (0..<items).map { item in
            let slice = try Tensor(shape: itemShape, data: Array(latents.data[(item * per)..<((item + 1) * per)]))
            return try Self.postprocess(vae.decode(slice))   // [N, 3, H, W] → [N, H, W, 3]
        }
    }

    /// UNet work per batch row below which a batch is split over the threads instead of threading each
    /// product: the StoryWorld UNet's 0.85 GFLOP per row at 16×16 latents gains 1.14× from a second
    /// thread inside its products (`bench sd`: 31.6 → 27.7 ms) but 2× from two single-threaded groups (the
    /// quickstart's `--jobs 2 --threads 1`); SD v1.5 at 32×32 latents (180 GFLOP per row) shares out well.
    static let smallRowFlops = 5e9

    /// How many groups of items to denoise side by side, one single-threaded group per thread: 1 (one batch,
    /// threaded products) unless the UNet's rows at these latents (`height` × `width`) are small and there
    /// are threads and items to spare.
    func itemGroups(items: Int, height: Int, width: Int, promptLength: Int) -> Int {
        let threads = Threads.count
        guard threads > 1, items > 1 else { return 1 }
        let rowFlops = unet.flops(batch: 1, height: height, width: width, promptLength: promptLength)
        return rowFlops < Self.smallRowFlops ? min(threads, items) : 1
    }

    /// `generate` over `groups` contiguous groups of items at once, each denoised by one worker on one thread
    /// (OpenBLAS single-threaded meanwhile). Each group is an ordinary batch: its items equal their
    /// single-item results to float rounding as any batch does; which groups form depends only on the item
    /// count and the thread count. Progress is reported by the first group (all groups step together).
    private func generateInGroups(_ groups: Int, promptEmbeddings: [Tensor], negativePromptEmbeddings: [Tensor]?,
                                  seeds: [UInt64], options o: GenerationOptions, progress: (Int, Int) -> Void,
                                  isCancelled: () -> Bool) throws -> [Tensor] {
        let items = promptEmbeddings.count
        return try Threads.singleThreadedGroups(groups) { g in
            let range = (items * g / groups)..<(items * (g + 1) / groups)
            return try generate(promptEmbeddings: Array(promptEmbeddings[range]),
                                negativePromptEmbeddings: negativePromptEmbeddings.map { Array($0[range]) },
                                seeds: Array(seeds[range]), options: o,
                                progress: g == 0 ? progress : { _, _ in }, isCancelled: isCancelled)
        }.flatMap { $0 }
    }

    /// `(x / 2 + 0.5).clamp(0, 1)` and NCHW → NHWC, as diffusers' image processor.
    static func postprocess(_ x: Tensor) throws -> Tensor {
        let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<n {
            for c in 0..<ch {
                for i in 0..<(h * w) {
                    let v = x.data[(b * ch + c) * h * w + i] / 2 + 0.5
                    out[(b * h * w + i) * ch + c] = min(max(v, 0), 1)
                }
            }
        }
        return try Tensor(shape: [n, h, w, ch], data: out)
    }

    /// `[N, H, W, C]` floats in [0, 1] → 8-bit images, `(x · 255).round()` as `numpy_to_pil`.
    public static func images(_ x: Tensor) throws -> [Image] {
        guard x.rank == 4 else { throw ModelError("expected [N, H, W, C] images, got \(x.shape)") }
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let per = h * w * c
        return (0..<n).map { b in
            let pixels = x.data[(b * per)..<((b + 1) * per)].map { UInt8(min(max(($0 * 255).rounded(.toNearestOrEven), 0), 255)) }
            return Image(width: w, height: h, channels: c, pixels: pixels)
        }
    }
}
