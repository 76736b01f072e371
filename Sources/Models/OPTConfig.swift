import Foundation
import Tensor

/// An OPT model folder's config could not be read or does not make sense.
public struct OPTConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var message: String
    public init(file: URL, _ message: String) {
        self.file = file.path
        self.message = message
    }
    public var description: String { "\(file): \(message)" }
}

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

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", wordEmbedProjDim = "word_embed_proj_dim"
        case numHiddenLayers = "num_hidden_layers", ffnDim = "ffn_dim", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", doLayerNormBefore = "do_layer_norm_before"
        case removeFinalLayerNorm = "_remove_final_layer_norm", activationFunction = "activation_function"
        case enableBias = "enable_bias", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
        case padTokenID = "pad_token_id", tieWordEmbeddings = "tie_word_embeddings"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OPTConfig()
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        // transformers defaults word_embed_proj_dim to hidden_size when absent.
        wordEmbedProjDim = try c.decodeIfPresent(Int.self, forKey: .wordEmbedProjDim) ?? hiddenSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        ffnDim = try c.decodeIfPresent(Int.self, forKey: .ffnDim) ?? d.ffnDim
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        doLayerNormBefore = try c.decodeIfPresent(Bool.self, forKey: .doLayerNormBefore) ?? d.doLayerNormBefore
        removeFinalLayerNorm = try c.decodeIfPresent(Bool.self, forKey: .removeFinalLayerNorm) ?? d.removeFinalLayerNorm
        activationFunction = try c.decodeIfPresent(Activation.self, forKey: .activationFunction) ?? d.activationFunction
        enableBias = try c.decodeIfPresent(Bool.self, forKey: .enableBias) ?? d.enableBias
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID) ?? d.bosTokenID
        eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID) ?? d.eosTokenID
        padTokenID = c.contains(.padTokenID) ? try c.decodeIfPresent(Int.self, forKey: .padTokenID) : d.padTokenID
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? d.tieWordEmbeddings
    }

    /// Reads and validates `config.json`.
    public static func load(from url: URL) throws -> OPTConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw OPTConfigError(file: url, "cannot read: \(error.localizedDescription)")
        }
        let config: OPTConfig
        do { config = try JSONDecoder().decode(OPTConfig.self, from: data) } catch let DecodingError.typeMismatch(_, ctx) {
            throw OPTConfigError(file: url, "key '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))': \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            let key = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw OPTConfigError(file: url, key.isEmpty ? "not valid JSON: \(ctx.debugDescription)" : "key '\(key)': \(ctx.debugDescription)")
        } catch {
            throw OPTConfigError(file: url, "cannot decode: \(error)")
        }
        if let type = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["model_type"] as? String, type != "opt" {
            throw OPTConfigError(file: url, "model_type is '\(type)', expected 'opt'")
        }
        try config.validate(file: url)
        return config
    }

    func validate(file: URL) throws {
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("word_embed_proj_dim", wordEmbedProjDim),
                             ("num_hidden_layers", numHiddenLayers), ("ffn_dim", ffnDim),
                             ("num_attention_heads", numAttentionHeads), ("max_position_embeddings", maxPositionEmbeddings)]
        where value <= 0 {
            throw OPTConfigError(file: file, "\(key) must be positive, got \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw OPTConfigError(file: file, "hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
    }

    /// Whether the decoder ends in `final_layer_norm` (pre-LN models that keep it).
    public var hasFinalLayerNorm: Bool { doLayerNormBefore && !removeFinalLayerNorm }
    /// Whether token embeddings are projected in and out of the hidden width.
    public var hasProjections: Bool { wordEmbedProjDim != hiddenSize }
}
