import Foundation

/// One class of GILL's decision head (`idx2dec` in GILL's `models.py`: 0 = gen, 1 = ret).
public enum GILLDecision: String, Codable, Sendable, CaseIterable {
    case gen, ret
}

/// A GILL folder's `config.json` (or GILL's own `model_args.json`): the fields of GILL's
/// `model_args.json` plus what Storyloom needs for models GILL did not publish (`llm_embed_dim`,
/// `clip_dim`, `mapper`, `decision_classes`). Missing keys take GILL's released values (OPT-6.7B,
/// CLIP ViT-L/14, 4 visual tokens, 8 [IMG] tokens, 77×768 outputs); a missing `mapper` is read
/// from the weights' shapes at load.
public struct GILLConfig: Codable, Sendable, Equatable {
    /// Sizes of the GILLMapper's `nn.Transformer` (GILL: 512 wide, 4 heads, 4+4 layers, FFN 2048).
    public struct Mapper: Codable, Sendable, Equatable {
        public var dim = 512
        public var heads = 4
        public var layers = 4
        public var ffn = 2048

        public init(dim: Int = 512, heads: Int = 4, layers: Int = 4, ffn: Int = 2048) {
            self.dim = dim
            self.heads = heads
            self.layers = layers
            self.ffn = ffn
        }
    }

    public var nVisualTokens = 4
    public var retEmbDim = 256
    public var genEmbDim = 768
    public var numTokens = 8
    public var numClipTokens = 77
    public var textFcMode = "gill_mapper"
    public var retTextFcMode = "linear"
    public var normImageEmbed = "none"
    public var textEmbLayers = [-1]
    public var retrievalTokenIdx: [Int] = Array(50266...50273)
    public var genTokenIdx: [Int] = Array(50266...50273)
    public var imageToken = "<|image|>"
    /// Width of the LLM's input embeddings / last hidden states; defaults to the OPT config's.
    public var llmEmbedDim: Int?
    /// Width of the CLIP vision pooler; defaults to the CLIP config's.
    public var clipDim: Int?
    /// The mapper's sizes; nil: read from the weights (heads: GILL's 4, which shapes cannot tell).
    public var mapper: Mapper?
    /// What each output of the decision head means, in order. GILL's: `[gen, ret]`.
    public var decisionClasses: [GILLDecision] = [.gen, .ret]
    /// The image decoder: a diffusers Stable Diffusion folder, relative to the GILL folder.
    /// Absent: the GILL folder's `sd/` subfolder, when there is one.
    public var decoder: String?

    enum CodingKeys: String, CodingKey {
        case nVisualTokens = "n_visual_tokens", retEmbDim = "ret_emb_dim", genEmbDim = "gen_emb_dim"
        case numTokens = "num_tokens", numClipTokens = "num_clip_tokens", textFcMode = "text_fc_mode"
        case retTextFcMode = "ret_text_fc_mode", normImageEmbed = "norm_image_embed", textEmbLayers = "text_emb_layers"
        case retrievalTokenIdx = "retrieval_token_idx", genTokenIdx = "gen_token_idx", imageToken = "image_token"
        case llmEmbedDim = "llm_embed_dim", clipDim = "clip_dim", mapper, decoder
        case decisionClasses = "decision_classes"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GILLConfig()
        nVisualTokens = try c.decodeIfPresent(Int.self, forKey: .nVisualTokens) ?? d.nVisualTokens
        retEmbDim = try c.decodeIfPresent(Int.self, forKey: .retEmbDim) ?? d.retEmbDim
        genEmbDim = try c.decodeIfPresent(Int.self, forKey: .genEmbDim) ?? d.genEmbDim
        numTokens = try c.decodeIfPresent(Int.self, forKey: .numTokens) ?? d.numTokens
        numClipTokens = try c.decodeIfPresent(Int.self, forKey: .numClipTokens) ?? d.numClipTokens
        textFcMode = try c.decodeIfPresent(String.self, forKey: .textFcMode) ?? d.textFcMode
        retTextFcMode = try c.decodeIfPresent(String.self, forKey: .retTextFcMode) ?? d.retTextFcMode
        normImageEmbed = try c.decodeIfPresent(String.self, forKey: .normImageEmbed) ?? d.normImageEmbed
        textEmbLayers = try c.decodeIfPresent([Int].self, forKey: .textEmbLayers) ?? d.textEmbLayers
        retrievalTokenIdx = try c.decodeIfPresent([Int].self, forKey: .retrievalTokenIdx) ?? d.retrievalTokenIdx
        genTokenIdx = try c.decodeIfPresent([Int].self, forKey: .genTokenIdx) ?? d.genTokenIdx
        imageToken = try c.decodeIfPresent(String.self, forKey: .imageToken) ?? d.imageToken
        llmEmbedDim = try c.decodeIfPresent(Int.self, forKey: .llmEmbedDim)
        clipDim = try c.decodeIfPresent(Int.self, forKey: .clipDim)
        mapper = try c.decodeIfPresent(Mapper.self, forKey: .mapper)
        decisionClasses = try c.decodeIfPresent([GILLDecision].self, forKey: .decisionClasses) ?? d.decisionClasses
        self.decoder = try c.decodeIfPresent(String.self, forKey: .decoder)
    }

    /// The config file of a GILL folder: `config.json` if present, else GILL's `model_args.json`.
    public static func file(in folder: URL) throws -> URL {
        for name in ["config.json", "model_args.json"] {
            let url = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw ModelError("\(folder.path): no config.json or model_args.json (a GILL folder needs one of them)")
    }

    /// Reads and validates a GILL `config.json` (or GILL's `model_args.json`).
    public static func load(from url: URL) throws -> GILLConfig {
        let config = try ConfigFile.read(GILLConfig.self, from: url)
        func fail(_ m: String) -> ModelError { ModelError(file: url, m) }
        guard config.textFcMode == "gill_mapper" else { throw fail("text_fc_mode '\(config.textFcMode)' is not supported (expected 'gill_mapper')") }
        guard config.retTextFcMode == "linear" else { throw fail("ret_text_fc_mode '\(config.retTextFcMode)' is not supported (expected 'linear')") }
        guard config.normImageEmbed == "none" else { throw fail("norm_image_embed '\(config.normImageEmbed)' is not supported (expected 'none')") }
        guard config.textEmbLayers == [-1] else { throw fail("text_emb_layers \(config.textEmbLayers) is not supported (expected [-1])") }
        guard config.genTokenIdx.count == config.numTokens, !config.genTokenIdx.isEmpty else {
            throw fail("gen_token_idx has \(config.genTokenIdx.count) ids, num_tokens is \(config.numTokens)")
        }
        guard config.retrievalTokenIdx.first == config.genTokenIdx.first else {
            throw fail("retrieval_token_idx and gen_token_idx must start with the same [IMG0] id")
        }
        guard Set(config.decisionClasses) == Set(GILLDecision.allCases), config.decisionClasses.count == 2 else {
            throw fail("decision_classes \(config.decisionClasses.map(\.rawValue)) must name gen and ret once each (GILL's order: [\"gen\", \"ret\"])")
        }
        var sizes = [("n_visual_tokens", config.nVisualTokens), ("ret_emb_dim", config.retEmbDim), ("gen_emb_dim", config.genEmbDim),
                     ("num_clip_tokens", config.numClipTokens)]
        if let m = config.mapper {
            sizes += [("mapper.dim", m.dim), ("mapper.heads", m.heads), ("mapper.layers", m.layers), ("mapper.ffn", m.ffn)]
        }
        for (key, v) in sizes where v <= 0 { throw fail("\(key) must be positive, got \(v)") }
        if let decoder = config.decoder, decoder.isEmpty { throw fail("decoder is empty (expected a path to a diffusers folder, relative to the GILL folder)") }
        if let m = config.mapper, m.dim % m.heads != 0 {
            throw fail("mapper.dim \(m.dim) is not divisible by mapper.heads \(m.heads)")
        }
        return config
    }
}
