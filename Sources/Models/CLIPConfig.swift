import Foundation
import Tensor

/// `text_config` of a transformers CLIP `config.json` (or the whole file for `clip_text_model`).
/// Missing keys take transformers' `CLIPTextConfig` defaults.
public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var projectionDim: Int? = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct: Activation = .quickGELU
    public var layerNormEps: Float = 1e-5
    public var bosTokenID = 49406
    /// 2 in configs exported before transformers PR #24773: selects the legacy argmax pooling.
    public var eosTokenID = 49407
    public var padTokenID: Int? = 1

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", bosTokenID = "bos_token_id"
        case eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPTextConfig()
        vocabSize = try c.value(.vocabSize, default: d.vocabSize)
        hiddenSize = try c.value(.hiddenSize, default: d.hiddenSize)
        intermediateSize = try c.value(.intermediateSize, default: d.intermediateSize)
        projectionDim = try c.nullable(.projectionDim, default: d.projectionDim)
        numHiddenLayers = try c.value(.numHiddenLayers, default: d.numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, default: d.numAttentionHeads)
        maxPositionEmbeddings = try c.value(.maxPositionEmbeddings, default: d.maxPositionEmbeddings)
        hiddenAct = try c.value(.hiddenAct, default: d.hiddenAct)
        layerNormEps = try c.value(.layerNormEps, default: d.layerNormEps)
        bosTokenID = try c.value(.bosTokenID, default: d.bosTokenID)
        eosTokenID = try c.value(.eosTokenID, default: d.eosTokenID)
        padTokenID = try c.nullable(.padTokenID, default: d.padTokenID)
    }

    func validate(file: URL) throws {
        try checkPositive(file, "text_config", [("vocab_size", vocabSize), ("hidden_size", hiddenSize),
            ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("max_position_embeddings", maxPositionEmbeddings)])
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError(file: file, "text_config: hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
    }
}

/// `vision_config` of a transformers CLIP `config.json` (or the whole file for `clip_vision_model`).
public struct CLIPVisionConfig: Codable, Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var projectionDim: Int? = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct: Activation = .quickGELU
    public var layerNormEps: Float = 1e-5

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numChannels = "num_channels", imageSize = "image_size", patchSize = "patch_size"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPVisionConfig()
        hiddenSize = try c.value(.hiddenSize, default: d.hiddenSize)
        intermediateSize = try c.value(.intermediateSize, default: d.intermediateSize)
        projectionDim = try c.nullable(.projectionDim, default: d.projectionDim)
        numHiddenLayers = try c.value(.numHiddenLayers, default: d.numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, default: d.numAttentionHeads)
        numChannels = try c.value(.numChannels, default: d.numChannels)
        imageSize = try c.value(.imageSize, default: d.imageSize)
        patchSize = try c.value(.patchSize, default: d.patchSize)
        hiddenAct = try c.value(.hiddenAct, default: d.hiddenAct)
        layerNormEps = try c.value(.layerNormEps, default: d.layerNormEps)
    }

    /// Patches per image side.
    public var gridSize: Int { imageSize / patchSize }
    /// Tokens per image: one class token plus the patches.
    public var sequenceLength: Int { gridSize * gridSize + 1 }

    func validate(file: URL) throws {
        try checkPositive(file, "vision_config", [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("num_channels", numChannels), ("image_size", imageSize), ("patch_size", patchSize)])
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError(file: file, "vision_config: hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard imageSize % patchSize == 0 else {
            throw ModelError(file: file, "vision_config: image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
    }
}

/// The top level of a CLIP `config.json`: which towers the folder holds and their configs.
public struct CLIPConfig: Sendable, Equatable {
    /// transformers' `model_type`: `clip`, `clip_text_model` or `clip_vision_model`.
    public var modelType: String
    public var text: CLIPTextConfig?
    public var vision: CLIPVisionConfig?
    /// The shared embedding width of a two-tower model (`projection_dim`).
    public var projectionDim: Int?

    private struct TopLevel: Decodable {
        var modelType: String?
        var projectionDim: Int?
        var textConfig: CLIPTextConfig?
        var visionConfig: CLIPVisionConfig?
        enum CodingKeys: String, CodingKey {
            case modelType = "model_type", projectionDim = "projection_dim"
            case textConfig = "text_config", visionConfig = "vision_config"
        }
    }

    /// Reads and validates `config.json`.
    public static func load(from file: URL) throws -> CLIPConfig {
        let top = try ConfigFile.read(TopLevel.self, from: file)
        var config: CLIPConfig
        switch top.modelType ?? "clip" {
        case "clip":
            config = CLIPConfig(modelType: "clip", text: top.textConfig ?? CLIPTextConfig(),
                                vision: top.visionConfig ?? CLIPVisionConfig(), projectionDim: top.projectionDim ?? 512)
        case "clip_text_model":
            let text = try ConfigFile.read(CLIPTextConfig.self, from: file)
            config = CLIPConfig(modelType: "clip_text_model", text: text, vision: nil, projectionDim: text.projectionDim)
        case "clip_vision_model":
            let vision = try ConfigFile.read(CLIPVisionConfig.self, from: file)
            config = CLIPConfig(modelType: "clip_vision_model", text: nil, vision: vision, projectionDim: vision.projectionDim)
        case let other:
            throw ModelError(file: file, "model_type '\(other)' is not a CLIP model (expected clip, clip_text_model or clip_vision_model)")
        }
        try config.text?.validate(file: file)
        try config.vision?.validate(file: file)
        if let p = config.projectionDim, p <= 0 {
            throw ModelError(file: file, "projection_dim must be positive, got \(p)")
        }
        return config
    }
}

private func checkPositive(_ file: URL, _ section: String, _ values: [(String, Int)]) throws {
    for (key, value) in values where value <= 0 {
        throw ModelError(file: file, "\(section).\(key) must be positive, got \(value)")
    }
}
