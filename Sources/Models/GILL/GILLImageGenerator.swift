import Foundation
import Tensor

/// GILL's image generation: the GILLMapper's `[num_clip_tokens, gen_emb_dim]` prompt embeddings
/// condition a Stable Diffusion pipeline in place of its text encoder's output.
///
/// The decoder is the GILL folder's `"decoder"` (config.json, a path relative to the folder) or
/// its `sd/` subfolder. As in GILL (diffusers' pipeline called with `prompt_embeds` only), the
/// unconditional half of classifier-free guidance is the SD text encoder's embeddings of "".
public final class GILLImageGenerator: Sendable {
    public let gill: GILLModel
    public let pipeline: StableDiffusionPipeline
    /// The SD text encoder's embeddings of the empty prompt `[T, D]`; nil without a text encoder
    /// (then only guidance ≤ 1 works).
    public let negativeEmbeddings: Tensor?

    /// Pairs a loaded GILL model with a loaded SD pipeline, checking that the mapper's output fits
    /// the UNet (`gen_emb_dim` = `cross_attention_dim`) and the negative embeddings
    /// (`num_clip_tokens` = the text encoder's context length).
    public init(gill: GILLModel, pipeline: StableDiffusionPipeline) throws {
        let d = pipeline.unet.config.crossAttentionDim
        let gillConfig = ((try? GILLConfig.file(in: gill.folder)) ?? gill.folder.appendingPathComponent("config.json")).path
        let unetConfig = pipeline.folder.appendingPathComponent("unet/config.json").path
        guard gill.config.genEmbDim == d else {
            throw ModelError("\(gillConfig): gen_emb_dim \(gill.config.genEmbDim) (the width of GILL's prompt embeddings) does not match the image decoder's cross_attention_dim \(d) (\(unetConfig)): the GILLMapper must be trained for this Stable Diffusion")
        }
        self.gill = gill
        self.pipeline = pipeline
        if pipeline.textEncoder != nil {
            let empty = try pipeline.encodePrompt("")
            let t = empty.count / d
            guard t == gill.config.numClipTokens else {
                throw ModelError("\(gillConfig): num_clip_tokens \(gill.config.numClipTokens) does not match the image decoder's text encoder context of \(t) tokens (\(pipeline.folder.path)/text_encoder), which gives the unconditional embeddings")
            }
            negativeEmbeddings = try empty.reshaped([t, d])
        } else {
            negativeEmbeddings = nil
        }
    }

    /// Where a GILL folder's image decoder lives: config `decoder` (relative to `folder` unless
    /// absolute), else `sd/`; nil when neither is configured or present.
    public static func decoderFolder(of folder: URL, config: GILLConfig) -> URL? {
        if let path = config.decoder {
            return path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path).standardizedFileURL
        }
        let sd = folder.appendingPathComponent("sd")
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: sd.path, isDirectory: &isDirectory) && isDirectory.boolValue ? sd : nil
    }

    /// Loads the image decoder of `gill`'s folder (see `decoderFolder(of:config:)`).
    public static func load(gill: GILLModel) throws -> GILLImageGenerator {
        guard let folder = decoderFolder(of: gill.folder, config: gill.config) else {
            throw ModelError("\(gill.folder.path): no image decoder: add an sd/ subfolder (a diffusers Stable Diffusion folder) or \"decoder\": \"relative/path\" to config.json")
        }
        let pipeline: StableDiffusionPipeline
        do { pipeline = try StableDiffusionPipeline(folder: folder) } catch {
            throw ModelError("\(gill.folder.path): image decoder \(folder.path): \(error)")
        }
        return try GILLImageGenerator(gill: gill, pipeline: pipeline)
    }

    /// One generated image and what GILL derived on the way.
    public struct Result: Sendable {
        /// `[1, H, W, 3]` floats in [0, 1] (see `StableDiffusionPipeline.images(_:)`).
        public var pixels: Tensor
        public var outputs: GILLImageOutputs
    }

    /// Generates the image GILL produces after `context` (input embeddings, e.g. from
    /// `GILLModel.embed`): the [IMG] tokens are forced after the context (GILL's rule for
    /// generation requests), their mapper output conditions SD. `progress` is called after each
    /// denoising step; `isCancelled` is polled between them.
    public func generate(context: Tensor, options: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> Result {
        let outputs = try gill.imageOutputs(context: context)
        return Result(pixels: try generate(promptEmbeddings: outputs.promptEmbeddings, options: options,
                                           progress: progress, isCancelled: isCancelled),
                      outputs: outputs)
    }

    /// SD from several items' GILL prompt embeddings, denoised together (one UNet call per step for all);
    /// item `i`'s image equals `generate(promptEmbeddings: promptEmbeddings[i], …)` with seed `seeds[i]`
    /// to float rounding (exactly, for one item). Returns one `[1, H, W, 3]` tensor per item.
    public func generate(promptEmbeddings: [Tensor], seeds: [UInt64], options: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> [Tensor] {
        guard options.guidance <= 1 || negativeEmbeddings != nil else {
            throw ModelError("\(pipeline.folder.path) has no text_encoder/: guidance \(options.guidance) needs the empty prompt's embeddings (set guidance to 1 or add the text encoder)")
        }
        let negatives = options.guidance > 1 ? negativeEmbeddings.map { Array(repeating: $0, count: promptEmbeddings.count) } : nil
        return try pipeline.generate(promptEmbeddings: promptEmbeddings, negativePromptEmbeddings: negatives, seeds: seeds,
                                     options: options, progress: progress, isCancelled: isCancelled)
    }

    /// SD from GILL prompt embeddings `[num_clip_tokens, gen_emb_dim]`.
    public func generate(promptEmbeddings: Tensor, options: GenerationOptions,
                         progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> Tensor {
        guard options.guidance <= 1 || negativeEmbeddings != nil else {
            throw ModelError("\(pipeline.folder.path) has no text_encoder/: guidance \(options.guidance) needs the empty prompt's embeddings (set guidance to 1 or add the text encoder)")
        }
        return try pipeline.generate(promptEmbeddings: promptEmbeddings, negativePromptEmbeddings: options.guidance > 1 ? negativeEmbeddings : nil,
                                     options: options, progress: progress, isCancelled: isCancelled)
    }
}
