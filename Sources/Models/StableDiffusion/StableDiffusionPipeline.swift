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

/// A generation request the pipeline cannot serve (prompt too long, wrong embedding shape, …).
public struct GenerationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Stable Diffusion v1.x text-to-image, as diffusers' `StableDiffusionPipeline` (no safety
/// checker), loaded from a diffusers folder: `model_index.json`, `unet/`, `vae/`,
/// `scheduler/`, and — for text prompts — `text_encoder/` (a transformers `CLIPTextModel`)
/// and `tokenizer/` (`vocab.json`, `merges.txt`).
///
/// Two entry points: `generate(prompt:negativePrompt:options:)` encodes text with CLIP;
/// `generate(promptEmbeddings:negativePromptEmbeddings:options:)` takes `[77, 768]`-shaped conditioning
/// directly (GILL's mapper output). Same seed, steps, scheduler and guidance give the same
/// image as diffusers on CPU in float32, to float rounding.
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
            throw DiffusersConfigError(file: folder.path, "is not a folder (expected a diffusers Stable Diffusion folder)")
        }
        guard fm.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) else {
            throw DiffusersConfigError(file: folder.path, "no model_index.json: not a diffusers pipeline folder")
        }
        func component(_ name: String) throws -> URL {
            let url = folder.appendingPathComponent(name)
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw DiffusersConfigError(file: folder.path, "missing component folder '\(name)/'")
            }
            return url
        }
        unet = try UNet2DConditionModel.load(from: component("unet"), precision: precision)
        vae = try AutoencoderKL.load(from: component("vae"), decoderOnly: true, precision: precision)
        schedulerConfig = try SchedulerConfig(url: component("scheduler").appendingPathComponent("scheduler_config.json"))
        guard vae.config.latentChannels == unet.config.inChannels, unet.config.outChannels == unet.config.inChannels else {
            throw DiffusersConfigError(file: folder.appendingPathComponent("unet/config.json").path, field: "in_channels",
                                       "UNet in/out channels \(unet.config.inChannels)/\(unet.config.outChannels) do not match the VAE's \(vae.config.latentChannels) latent channels")
        }
        let textURL = folder.appendingPathComponent("text_encoder")
        if fm.fileExists(atPath: textURL.path) {
            let encoder = try CLIPModel.load(from: textURL, precision: precision)
            guard let width = encoder.text?.config.hiddenSize else {
                throw DiffusersConfigError(file: textURL.path, "has no CLIP text tower")
            }
            guard width == unet.config.crossAttentionDim else {
                throw DiffusersConfigError(file: textURL.appendingPathComponent("config.json").path, field: "hidden_size",
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
            throw GenerationError("\(folder.path) has no text_encoder/ and tokenizer/: pass prompt embeddings instead of text")
        }
        let length = tokenizer.encode(text).count
        if length > tokenizer.contextLength - 2 && !truncate {
            throw GenerationError("prompt is \(length) tokens but the text encoder takes at most \(tokenizer.contextLength - 2) (plus start/end): shorten it or allow truncation — \"\(text.prefix(80))\(text.count > 80 ? "…" : "")\"")
        }
        return try textEncoder.textEncoderHiddenStates(tokenIDs: [tokenizer(text)])
    }

    /// Text-to-image from a prompt (and a negative prompt, "" by default, which is what
    /// diffusers uses for unconditional guidance).
    public func generate(prompt: String, negativePrompt: String = "", options: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> Tensor {
        let cond = try encodePrompt(prompt, truncate: options.truncatePrompt)
        let negative = options.guidance > 1 ? try encodePrompt(negativePrompt, truncate: options.truncatePrompt) : nil
        return try generate(promptEmbeddings: cond, negativePromptEmbeddings: negative, options: options, progress: progress, isCancelled: isCancelled)
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
        let d = unet.config.crossAttentionDim
        func flat(_ t: Tensor, _ what: String) throws -> Tensor {
            let ok = (t.rank == 2 && t.shape[1] == d) || (t.rank == 3 && t.shape[0] == 1 && t.shape[2] == d)
            guard ok else { throw GenerationError("\(what) must be [T, \(d)] or [1, T, \(d)], got \(t.shape)") }
            return try t.reshaped([t.count / d, d])
        }
        let cond = try flat(promptEmbeddings, "prompt embeddings")
        let useGuidance = o.guidance > 1
        var negative: Tensor?
        if useGuidance {
            negative = try negativePromptEmbeddings.map { try flat($0, "negative prompt embeddings") } ?? flat(encodePrompt(""), "empty-prompt embeddings")
            guard negative!.shape == cond.shape else {
                throw GenerationError("negative embeddings \(negative!.shape) and prompt embeddings \(cond.shape) differ in shape")
            }
        }
        guard o.steps >= 1, o.steps <= 1000 else { throw GenerationError("steps must be in 1...1000, got \(o.steps)") }
        guard o.imagesPerPrompt >= 1, o.imagesPerPrompt <= 64 else { throw GenerationError("images per prompt must be in 1...64, got \(o.imagesPerPrompt)") }
        let f = vae.config.scaleFactor
        let width = o.width ?? defaultImageSize, height = o.height ?? defaultImageSize
        guard width >= f, height >= f, width % f == 0, height % f == 0, width <= 4096, height <= 4096 else {
            throw GenerationError("image size \(width)×\(height) must be a multiple of \(f) (the VAE scale factor), at most 4096")
        }
        let n = o.imagesPerPrompt, t = cond.rowCount
        let batch = useGuidance ? 2 * n : n
        // The UNet's batch: the unconditional half first (diffusers' order), then the prompt, per image.
        var batchData: [Float] = []
        batchData.reserveCapacity(batch * t * d)
        if let negative { for _ in 0..<n { batchData += negative.data } }
        for _ in 0..<n { batchData += cond.data }
        let batchEmbeddings = try Tensor(shape: [batch, t, d], data: batchData)

        var scheduler = try o.scheduler.make(config: schedulerConfig, steps: o.steps)
        var generator = TorchGenerator(seed: o.seed)
        let c = unet.config.inChannels
        var latents = try generator.randn(shape: [n, c, height / f, width / f])
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
        let decoded = try vae.decode(latents)   // [N, 3, H, W]
        return try Self.postprocess(decoded)
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
        guard x.rank == 4 else { throw GenerationError("expected [N, H, W, C] images, got \(x.shape)") }
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let per = h * w * c
        return (0..<n).map { b in
            let pixels = x.data[(b * per)..<((b + 1) * per)].map { UInt8(min(max(($0 * 255).rounded(.toNearestOrEven), 0), 255)) }
            return Image(width: w, height: h, channels: c, pixels: pixels)
        }
    }
}
