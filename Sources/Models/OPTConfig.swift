import Foundation
import Tensor

/// A transformers OPT `config.json` (`model_type: "opt"`). Missing keys take `OPTConfig`'s defaults
/// (those of facebook/opt-125m).
public struct OPTConfig: Codable, Sendable, Equatable {
    public var vocabSize = 50272
    public var hiddenSize = 768
    /// Width of the token embeddings; differs from `hiddenSize` in opt-350m (project_in/out).
    public var wordEmbedProjDim = 768
    public var numHiddenLayers = 12
    public var ffnDim = 3072
    public var numAttentionHeads = 12
    public var maxPositionEmbeddings = 2048
    /// Pre-LayerNorm layers (all OPT sizes but 350m).
    public var doLayerNormBefore = true
    /// Some converted checkpoints drop the final layer norm.
    public var removeFinalLayerNorm = false
    public var activationFunction: Activation = .relu
    public var enableBias = true
    public var bosTokenID = 2
    public var eosTokenID = 2
    public var padTokenID: Int? = 1
    public var tieWordEmbeddings = true
    /// transformers' `model_type` (`opt`), checked on load.
    public var modelType: String?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", wordEmbedProjDim = "word_embed_proj_dim"
        case numHiddenLayers = "num_hidden_layers", ffnDim = "ffn_dim", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", doLayerNormBefore = "do_layer_norm_before"
        case removeFinalLayerNorm = "_remove_final_layer_norm", activationFunction = "activation_function"
        case enableBias = "enable_bias", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
        case padTokenID = "pad_token_id", tieWordEmbeddings = "tie_word_embeddings", modelType = "model_type"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OPTConfig()
        vocabSize = try c.value(.vocabSize, default: d.vocabSize)
        hiddenSize = try c.value(.hiddenSize, default: d.hiddenSize)
        // transformers defaults word_embed_proj_dim to hidden_size when absent.
        wordEmbedProjDim = try c.value(.wordEmbedProjDim, default: hiddenSize)
        numHiddenLayers = try c.value(.numHiddenLayers, default: d.numHiddenLayers)
        ffnDim = try c.value(.ffnDim, default: d.ffnDim)
        numAttentionHeads = try c.value(.numAttentionHeads, default: d.numAttentionHeads)
        maxPositionEmbeddings = try c.value(.maxPositionEmbeddings, default: d.maxPositionEmbeddings)
        doLayerNormBefore = try c.value(.doLayerNormBefore, default: d.doLayerNormBefore)
        removeFinalLayerNorm = try c.value(.removeFinalLayerNorm, default: d.removeFinalLayerNorm)
        activationFunction = try c.value(.activationFunction, default: d.activationFunction)
        enableBias = try c.value(.enableBias, default: d.enableBias)
        bosTokenID = try c.value(.bosTokenID, default: d.bosTokenID)
        eosTokenID = try c.value(.eosTokenID, default: d.eosTokenID)
        padTokenID = try c.nullable(.padTokenID, default: d.padTokenID)
        tieWordEmbeddings = try c.value(.tieWordEmbeddings, default: d.tieWordEmbeddings)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
    }

    /// Reads and validates `config.json`.
    public static func load(from url: URL) throws -> OPTConfig {
        let config = try ConfigFile.read(OPTConfig.self, from: url)
        if let type = config.modelType, type != "opt" {
            throw ModelError(file: url, "model_type is '\(type)', expected 'opt'")
        }
        try config.validate(file: url)
        return config
    }

    func validate(file: URL) throws {
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("word_embed_proj_dim", wordEmbedProjDim),
                             ("num_hidden_layers", numHiddenLayers), ("ffn_dim", ffnDim),
                             ("num_attention_heads", numAttentionHeads), ("max_position_embeddings", maxPositionEmbeddings)]
        where value <= 0 {
            throw ModelError(file: file, "\(key) must be positive, got \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError(file: file, "hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
    }

    /// Whether the decoder ends in `final_layer_norm` (pre-LN models that keep it).
    public var hasFinalLayerNorm: Bool { doLayerNormBefore && !removeFinalLayerNorm }
    /// Whether token embeddings are projected in and out of the hidden width.
    public var hasProjections: Bool { wordEmbedProjDim != hiddenSize }
}
