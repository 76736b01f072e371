import Foundation
import Store
import Imaging
import Tensor

/// A CLIP model loaded from a transformers folder: `CLIPModel` (both towers, projections,
/// `logit_scale`), `CLIPVisionModel[WithProjection]` or `CLIPTextModel[WithProjection]`.
///
/// Loading maps every transformers tensor name to a Swift parameter through the towers'
/// weight tables, checks each shape against `config.json`, and fails when a required tensor
/// is missing or when any tensor in the checkpoint is left unused (listing them).
public final class CLIPModel: Sendable {
    public let folder: URL
    public let config: CLIPConfig
    public let vision: CLIPVisionTower?
    public let text: CLIPTextTower?
    /// From `vocab.json` + `merges.txt`, when the folder has them.
    public let tokenizer: CLIPTokenizer?
    /// From `preprocessor_config.json`, when the folder has one (else CLIP's defaults at the config's image size).
    public let imageProcessor: CLIPImageProcessor?
    /// `logit_scale` of a two-tower model (the log of the similarity temperature).
    public let logitScale: Float?
    /// SHA-256 (hex) of config.json, the tokenizer and preprocessor files, and every weight file.
    public let digest: String

    private init(folder: URL, config: CLIPConfig, vision: CLIPVisionTower?, text: CLIPTextTower?,
                 tokenizer: CLIPTokenizer?, imageProcessor: CLIPImageProcessor?, logitScale: Float?, digest: String) {
        self.folder = folder
        self.config = config
        self.vision = vision
        self.text = text
        self.tokenizer = tokenizer
        self.imageProcessor = imageProcessor
        self.logitScale = logitScale
        self.digest = digest
    }

    /// Loads a transformers CLIP folder (config.json + model.safetensors or shards, or
    /// pytorch_model.bin or its shards). `precision` `.stored` keeps F16/BF16 weight matrices as
    /// stored; `.float32` widens them.
    public static func load(from folder: URL, precision: WeightPrecision = .stored) throws -> CLIPModel {
        let configURL = folder.appendingPathComponent("config.json")
        let config = try CLIPConfig.load(from: configURL)
        let checkpoint = try Checkpoint(url: folder)
        let reader = CheckpointReader(checkpoint, configName: configURL.path, precision: precision)
        var vision: CLIPVisionTower?
        var text: CLIPTextTower?
        var logitScale: Float?
        switch config.modelType {
        case "clip":
            vision = try CLIPVisionTower.load(reader, config: config.vision!, prefix: "vision_model.",
                                              projectionName: "visual_projection.weight", projectionDim: config.projectionDim)
            text = try CLIPTextTower.load(reader, config: config.text!, prefix: "text_model.",
                                          projectionName: "text_projection.weight", projectionDim: config.projectionDim)
            logitScale = try reader.take("logit_scale", shape: []).data.first
        case "clip_vision_model":
            // With a projection it is CLIPVisionModelWithProjection; the checkpoint says which.
            let projected = checkpoint.contains("visual_projection.weight")
            // transformers 5 saves a bare CLIPVisionModel without the "vision_model." prefix.
            let bare = !checkpoint.contains("vision_model.embeddings.class_embedding") && checkpoint.contains("embeddings.class_embedding")
            vision = try CLIPVisionTower.load(reader, config: config.vision!, prefix: bare ? "" : "vision_model.",
                                              projectionName: projected ? "visual_projection.weight" : nil,
                                              projectionDim: config.vision!.projectionDim)
        default:
            let projected = checkpoint.contains("text_projection.weight")
            // transformers 5 saves a bare CLIPTextModel without the "text_model." prefix.
            let bare = !checkpoint.contains("text_model.embeddings.token_embedding.weight")
                && checkpoint.contains("embeddings.token_embedding.weight")
            text = try CLIPTextTower.load(reader, config: config.text!, prefix: bare ? "" : "text_model.",
                                          projectionName: projected ? "text_projection.weight" : nil,
                                          projectionDim: config.text!.projectionDim)
        }
        try reader.requireAllUsed()

        var tokenizer: CLIPTokenizer?
        if text != nil, FileManager.default.fileExists(atPath: folder.appendingPathComponent("vocab.json").path) {
            tokenizer = try CLIPTokenizer(folder: folder, contextLength: config.text!.maxPositionEmbeddings)
        }
        var processor: CLIPImageProcessor?
        if let v = config.vision {
            let url = folder.appendingPathComponent("preprocessor_config.json")
            processor = FileManager.default.fileExists(atPath: url.path)
                ? try CLIPImageProcessor(configURL: url) : CLIPImageProcessor(imageSize: v.imageSize)
            if let p = processor, p.outputHeight != v.imageSize || p.outputWidth != v.imageSize {
                throw ModelError(file: url, "crops to \(p.outputWidth)×\(p.outputHeight) but vision_config.image_size is \(v.imageSize)")
            }
        }
        let digest = try Self.digest(folder: folder, checkpoint: checkpoint)
        return CLIPModel(folder: folder, config: config, vision: vision, text: text, tokenizer: tokenizer,
                         imageProcessor: processor, logitScale: logitScale, digest: digest)
    }

    private static func digest(folder: URL, checkpoint: Checkpoint) throws -> String {
        let configs = ["config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "preprocessor_config.json"]
        return Hashing.sha256Hex(files: configs.map { ($0, folder.appendingPathComponent($0)) }
                                      + checkpoint.urls.map { ($0.lastPathComponent, $0) })
    }

    /// Width of the vectors `imageEmbeddings`/`textEmbeddings` return with `projected: true`
    /// (`projection_dim`), or the tower width when the model has no projection.
    public var embeddingDimension: Int {
        if let p = vision?.projection?.shape[0] ?? text?.projection?.shape[0] { return p }
        return vision?.config.hiddenSize ?? text?.config.hiddenSize ?? 0
    }

    // MARK: images

    /// Preprocesses images as `CLIPImageProcessor` does into `[B, 3, S, S]` pixel values.
    public func pixelValues(_ images: [Image]) throws -> Tensor {
        guard let processor = imageProcessor, vision != nil else { throw ModelError("\(folder.path) has no vision tower") }
        return try processor.pixelValues(images)
    }

    /// Image embeddings, one per image: the projected embedding (`image_embeds`,
    /// `get_image_features`) or, with `projected: false`, the vision `pooler_output`.
    public func imageEmbeddings(_ images: [Image], projected: Bool = true) throws -> [[Float]] {
        guard !images.isEmpty else { return [] }
        return try imageEmbeddings(pixelValues: pixelValues(images), projected: projected)
    }

    /// As `imageEmbeddings(_:projected:)` from already preprocessed `[B, 3, S, S]` pixels.
    public func imageEmbeddings(pixelValues: Tensor, projected: Bool = true) throws -> [[Float]] {
        guard let vision else { throw ModelError("\(folder.path) has no vision tower") }
        let out = try vision.forward(pixelValues: pixelValues)
        let result: Tensor
        if projected {
            guard let p = out.projected else { throw ModelError("\(folder.path) has no visual_projection; ask for projected: false") }
            result = p
        } else {
            result = out.pooled
        }
        return (0..<result.rowCount).map(result.row)
    }

    /// The vision `pooler_output` (1024-d for ViT-L/14), what GILL feeds its visual prefix.
    public func visionPoolerOutput(_ images: [Image]) throws -> [[Float]] {
        try imageEmbeddings(images, projected: false)
    }

    // MARK: text

    /// Token ids of each text: `bos`, BPE ids, `eos`, padded to the context length (77).
    public func tokenIDs(_ texts: [String]) throws -> [[Int]] {
        guard let tokenizer else { throw ModelError("\(folder.path) has no text tokenizer (vocab.json, merges.txt)") }
        return texts.map { tokenizer($0) }
    }

    /// Text embeddings, one per text: projected (`text_embeds`, `get_text_features`) or, with
    /// `projected: false`, the pooled end-of-text state.
    public func textEmbeddings(_ texts: [String], projected: Bool = true) throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        return try textEmbeddings(tokenIDs: tokenIDs(texts), projected: projected)
    }

    /// As `textEmbeddings(_:projected:)` from token ids (equal-length sequences).
    public func textEmbeddings(tokenIDs: [[Int]], projected: Bool = true) throws -> [[Float]] {
        guard let text else { throw ModelError("\(folder.path) has no text tower") }
        // Only pooled outputs are needed, so positions after the last end-of-text are skipped.
        let out = try text.forward(tokenIDs: tokenIDs, fullSequence: false)
        let result: Tensor
        if projected {
            guard let p = out.projected else { throw ModelError("\(folder.path) has no text_projection; ask for projected: false") }
            result = p
        } else {
            result = out.pooled
        }
        return (0..<result.rowCount).map(result.row)
    }

    /// The text encoder's `last_hidden_state` `[B, T, D]` (after `final_layer_norm`) for token
    /// ids — Stable Diffusion's `prompt_embeds` (77×768 for SD 1.5).
    public func textEncoderHiddenStates(tokenIDs: [[Int]]) throws -> Tensor {
        guard let text else { throw ModelError("\(folder.path) has no text tower") }
        return try text.forward(tokenIDs: tokenIDs, fullSequence: true).lastHiddenState
    }

    /// As `textEncoderHiddenStates(tokenIDs:)`, tokenising `texts` to 77 ids each first.
    public func textEncoderHiddenStates(_ texts: [String]) throws -> Tensor {
        try textEncoderHiddenStates(tokenIDs: tokenIDs(texts))
    }
}

