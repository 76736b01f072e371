import Foundation
import Store
import Imaging
import Tensor

/// One piece of an interleaved GILL input.
public enum GILLSegment: Sendable {
    /// Text, tokenised on its own with no BOS.
    case text(String)
    /// Token ids as they are.
    case ids([Int])
    /// The tokenizer's BOS, where GILL puts it: before the first text piece (`GILLPrompt`).
    case bos
    /// An image, preprocessed as CLIP does and turned into `n_visual_tokens` visual tokens.
    case image(Image)
    /// Already preprocessed pixels `[1, 3, S, S]`.
    case pixels(Tensor)
}

/// What GILL derives from one [IMG0]…[IMG7] block.
public struct GILLImageOutputs: Sendable {
    /// `[IMG0]` hidden state through `ret_text_hidden_fcs` (`ret_emb_dim`, not normalised).
    public var retrievalEmbedding: [Float]
    /// GILLMapper output `[num_clip_tokens, gen_emb_dim]` (77×768): Stable Diffusion's `prompt_embeds`.
    public var promptEmbeddings: Tensor
    /// Decision head softmax in the head's own class order (`decisionClasses`); empty without a head.
    public var decision: [Float]
    /// What each entry of `decision` means (the config's `decision_classes`; GILL's: gen, ret).
    public var decisionClasses: [GILLDecision] = [.gen, .ret]

    public init(retrievalEmbedding: [Float], promptEmbeddings: Tensor, decision: [Float],
                decisionClasses: [GILLDecision] = [.gen, .ret]) {
        self.retrievalEmbedding = retrievalEmbedding
        self.promptEmbeddings = promptEmbeddings
        self.decision = decision
        self.decisionClasses = decisionClasses
    }

    /// The decision head's probability of `d`; nil without a decision head.
    public func probability(_ d: GILLDecision) -> Float? {
        guard decision.count == decisionClasses.count, let i = decisionClasses.firstIndex(of: d) else { return nil }
        return decision[i]
    }
    /// p(generate) from the decision head; nil without one.
    public var pGenerate: Float? { probability(.gen) }
    /// p(retrieve) from the decision head; nil without one.
    public var pRetrieve: Float? { probability(.ret) }
    /// Whether generating is more probable than retrieving (false without a decision head).
    public var prefersGeneration: Bool {
        guard let g = pGenerate, let r = pRetrieve else { return false }
        return g > r
    }
}

/// Result of `GILLModel.generate`.
public struct GILLGeneration: Sendable {
    /// Every produced token, [IMG] blocks included.
    public var tokens: [Int]
    /// The text of `tokens` with [IMG] tokens and special tokens left out.
    public var text: String
    /// Outputs of the first [IMG] block produced, if any.
    public var image: GILLImageOutputs?
}

/// GILL (Koh et al. 2023) over a native OPT and CLIP, loaded from a GILL folder:
///
///     config.json         GILL's model_args.json fields (+ llm_embed_dim, clip_dim, mapper sizes,
///                         decision_classes) — or GILL's own model_args.json alone (sizes then
///                         come from the weights' shapes)
///     gill.safetensors    visual_embeddings, visual_fc, logit_scale, input_embeddings ([IMG] rows),
///                         ret_text_hidden_fcs.0.model, gen_text_hidden_fcs.0 (mapper), decision.1
///       — or GILL's released pretrained_ckpt.pth.tar (+ decision_model.pth.tar), any `module.`
///         and the leading `model.` dropped, any float dtype (the release is bf16)
///     opt/                a transformers OPT folder with its tokenizer (vocab.json, merges.txt);
///                         safetensors or pytorch_model.bin (single or sharded)
///     clip/               a transformers CLIP (vision) folder with preprocessor_config.json
///     sd/                 optional: the image decoder, a diffusers Stable Diffusion folder (or
///                         `"decoder": "relative/path"` in config.json); see `GILLImageGenerator`
public final class GILLModel: Sendable {
    public let folder: URL
    public let config: GILLConfig
    /// The LLM with GILL's [IMG] rows installed in its (tied) embeddings.
    public let llm: OPTModel
    public let clip: CLIPModel
    /// OPT's tokenizer plus `<|image|>` and `[IMG0]`…`[IMG7]`.
    public let tokenizer: GPT2Tokenizer
    let visualEmbeddings: (weight: Weight, bias: Tensor)
    let visualFC: (weight: Weight, bias: Tensor)
    let retrievalHead: (weight: Weight, bias: Tensor)
    /// The decision head, when the folder has one.
    public let decisionHead: GILLDecisionHead?
    let mapper: GILLMapper
    /// `logit_scale` (log of the similarity temperature).
    public let logitScale: Float
    /// SHA-256 over the GILL config and weights and the OPT and CLIP digests.
    public let digest: String
    /// Tensors in GILL's weights files that GILL does not use (reported at load, not an error).
    public let unusedTensors: [String]

    /// `[IMG0]`…`[IMG7]` ids.
    public var imageTokenIDs: [Int] { config.genTokenIdx }

    private init(folder: URL, config: GILLConfig, llm: OPTModel, clip: CLIPModel, tokenizer: GPT2Tokenizer,
                 visualEmbeddings: (weight: Weight, bias: Tensor), visualFC: (weight: Weight, bias: Tensor),
                 retrievalHead: (weight: Weight, bias: Tensor), decisionHead: GILLDecisionHead?,
                 mapper: GILLMapper, logitScale: Float, digest: String, unusedTensors: [String]) {
        self.folder = folder
        self.config = config
        self.llm = llm
        self.clip = clip
        self.tokenizer = tokenizer
        self.visualEmbeddings = visualEmbeddings
        self.visualFC = visualFC
        self.retrievalHead = retrievalHead
        self.decisionHead = decisionHead
        self.mapper = mapper
        self.logitScale = logitScale
        self.digest = digest
        self.unusedTensors = unusedTensors
    }

    /// Loads a GILL folder (layout above). Missing or misshapen GILL tensors fail, all named at
    /// once; tensors GILL does not use are written to stderr and kept in `unusedTensors`.
    /// `precision` applies to OPT, CLIP and GILL's own matrices alike: `.stored` keeps f16/bf16 files
    /// at 2 bytes per weight (OPT-6.7B then takes 13.4 GB instead of 27), `.float32` widens.
    public static func load(from folder: URL, precision: WeightPrecision = .stored) throws -> GILLModel {
        let configURL = try GILLConfig.file(in: folder)
        let config = try GILLConfig.load(from: configURL)
        let opt = try OPTModel.load(from: folder.appendingPathComponent("opt"), precision: precision)
        let clip = try CLIPModel.load(from: folder.appendingPathComponent("clip"), precision: precision)
        guard let vision = clip.vision else { throw ModelError("\(folder.path)/clip has no vision tower") }
        var tokenizer = try GPT2Tokenizer(folder: folder.appendingPathComponent("opt"))
        tokenizer.addTokens([config.imageToken], special: true)
        let added = tokenizer.addTokens((0..<config.numTokens).map { "[IMG\($0)]" })
        guard added == config.genTokenIdx else {
            throw ModelError("\(configURL.path): gen_token_idx \(config.genTokenIdx) differs from the tokenizer's [IMG] ids \(added) (opt/ vocabulary + \(config.imageToken) + [IMG0]…)")
        }
        let e = config.llmEmbedDim ?? opt.embeddingDimension
        let c = config.clipDim ?? vision.config.hiddenSize
        guard e == opt.embeddingDimension else {
            throw ModelError("\(configURL.path): llm_embed_dim \(e) but opt/ has word_embed_proj_dim \(opt.embeddingDimension)")
        }
        guard c == vision.config.hiddenSize else {
            throw ModelError("\(configURL.path): clip_dim \(c) but clip/ has hidden_size \(vision.config.hiddenSize)")
        }
        let weights = try GILLWeights(folder: folder, precision: precision)
        let prefix = "gen_text_hidden_fcs.0."
        let sizes = try config.mapper ?? GILLMapper.sizes(from: weights, prefix: prefix)
        let hasDecision = weights.contains("decision.1.weight")
        let unused = try weights.validate(tensorSpec(config: config, mapper: sizes, llmDim: e, clipDim: c, decision: hasDecision))
        if !unused.isEmpty {
            FileHandle.standardError.write(Data("note: \(weights.files[0].path): \(unused.count) tensor(s) not used by GILL: \(unused.joined(separator: ", "))\n".utf8))
        }
        let k = config.nVisualTokens
        func pair(_ name: String, _ out: Int, _ input: Int) throws -> (weight: Weight, bias: Tensor) {
            (try weights.takeWeight(name + ".weight", shape: [out, input]), try weights.take(name + ".bias", shape: [out]))
        }
        let imgRows = try weights.take("input_embeddings.weight", shape: [config.numTokens, e])
        var rows: [Int: [Float]] = [:]
        for (i, id) in config.genTokenIdx.enumerated() { rows[id] = imgRows.row(i) }
        let visualEmbeddings = try pair("visual_embeddings", e * k, c), visualFC = try pair("visual_fc", config.retEmbDim, c)
        let retrievalHead = try pair("ret_text_hidden_fcs.0.model", config.retEmbDim, e)
        let decision = hasDecision ? try pair("decision.1", 2, e) : nil
        let decisionHead = try decision.map { try GILLDecisionHead(weight: $0.weight.float32(), bias: $0.bias, classes: config.decisionClasses) }
        let mapper = try GILLMapper.load(weights, prefix: prefix, config: config, sizes: sizes, inputDim: e)
        let logitScale = try weights.take("logit_scale", shape: []).data[0]

        let digest = Hashing.sha256Hex(files: (weights.files + [configURL]).map { ($0.lastPathComponent, $0) },
                                       extra: opt.digest + clip.digest)
        return GILLModel(folder: folder, config: config, llm: try opt.replacingEmbeddingRows(rows), clip: clip, tokenizer: tokenizer,
                         visualEmbeddings: visualEmbeddings, visualFC: visualFC, retrievalHead: retrievalHead,
                         decisionHead: decisionHead, mapper: mapper, logitScale: logitScale,
                         digest: digest, unusedTensors: unused)
    }

    // MARK: images

    /// CLIP vision `pooler_output` `[B, clip_dim]` of preprocessed pixels `[B, 3, S, S]`.
    public func visionPooler(pixelValues: Tensor) throws -> Tensor {
        let rows = try clip.imageEmbeddings(pixelValues: pixelValues, projected: false)
        return try Tensor(shape: [rows.count, rows.first?.count ?? 0], data: rows.flatMap { $0 })
    }

    /// Visual tokens `[n_visual_tokens, llm_embed_dim]` for each image of `[B, 3, S, S]` pixels.
    public func visualPrefix(pixelValues: Tensor) throws -> [Tensor] {
        let v = try linear(visionPooler(pixelValues: pixelValues), weight: visualEmbeddings.weight, bias: visualEmbeddings.bias)
        let k = config.nVisualTokens, e = llm.embeddingDimension
        return try (0..<v.rowCount).map { try Tensor(shape: [k, e], data: v.row($0)) }
    }

    /// Image retrieval embeddings (`visual_fc` of the pooler), one `ret_emb_dim` vector per image.
    public func imageRetrievalEmbeddings(pixelValues: Tensor) throws -> [[Float]] {
        let v = try linear(visionPooler(pixelValues: pixelValues), weight: visualFC.weight, bias: visualFC.bias)
        return (0..<v.rowCount).map(v.row)
    }

    /// As `imageRetrievalEmbeddings(pixelValues:)` from images (CLIP preprocessing first).
    public func imageRetrievalEmbeddings(_ images: [Image]) throws -> [[Float]] {
        guard !images.isEmpty else { return [] }
        return try imageRetrievalEmbeddings(pixelValues: clip.pixelValues(images))
    }

    // MARK: text and interleaved input

    /// Input embeddings `[T, llm_embed_dim]` of an interleaved sequence: each segment — text as
    /// token embeddings, images as their visual tokens — after a BOS when `addBOS` and the
    /// segments place none themselves (`.bos`, as GILL's layout from `GILLPrompt` does).
    public func embed(_ segments: [GILLSegment], addBOS: Bool = true) throws -> Tensor {
        var data: [Float] = []
        for part in GILLPrompt.parts(segments, tokenizer: tokenizer, addBOS: addBOS) {
            switch part {
            case let .ids(ids):
                if !ids.isEmpty { data += try llm.embed(ids).data }
            case let .image(image):
                data += try visualPrefix(pixelValues: clip.pixelValues([image]))[0].data
            case let .pixels(p):
                data += try visualPrefix(pixelValues: p).flatMap(\.data)
            }
        }
        let e = llm.embeddingDimension
        return try Tensor(shape: [data.count / e, e], data: data)
    }

    /// The id GILL stops generated text at ("\n" as the tokenizer encodes it); nil if it has none.
    public var newlineTokenID: Int? { GILLPrompt.newlineTokenID(tokenizer) }

    /// Runs the LLM over `context` followed by `[IMG0]`…`[IMG7]` (generation forced to produce the
    /// image tokens) and returns what GILL derives from them.
    public func imageOutputs(context: Tensor) throws -> GILLImageOutputs {
        var state = llm.makeState()
        _ = try llm.forward(inputEmbeddings: context, state: &state, lastLogitsOnly: true)
        return try imageBlockWithLogits(state: &state).outputs
    }

    /// GILL's heads on the [IMG] block's last hidden states and input embeddings `[num_tokens, D]`.
    public func imageOutputs(hidden: Tensor, inputEmbeddings: Tensor) throws -> GILLImageOutputs {
        let img0 = try Tensor(shape: [1, hidden.lastDimension], data: hidden.row(0))
        let ret = try linear(img0, weight: retrievalHead.weight, bias: retrievalHead.bias).data
        let prompt = try mapper(hidden: hidden, inputEmbeddings: inputEmbeddings)
        let decision = try decisionHead?.probabilities(img0.data) ?? []
        return GILLImageOutputs(retrievalEmbedding: ret, promptEmbeddings: prompt, decision: decision,
                                decisionClasses: config.decisionClasses)
    }

    /// Retrieval scores of one text retrieval embedding against image retrieval embeddings:
    /// cosine similarity times `exp(logit_scale)`.
    public func retrievalScores(text: [Float], images: [[Float]]) -> [Float] {
        let scale = Float(Foundation.exp(Double(logitScale)))
        let tn = text.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return images.map { img in
            let inorm = img.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let dot = zip(text, img).reduce(0) { $0 + $1.0 * $1.1 }
            return tn > 0 && inorm > 0 ? dot / (tn * inorm) * scale : 0
        }
    }

    // MARK: generation

    /// Decodes after `prompt` with GILL's rule: `[IMG1..]` are banned; when `[IMG0]` is produced
    /// the rest of the block is appended (and its outputs computed). `maxNewTokens` counts decode
    /// steps, as GILL's loop does (an [IMG] block is one step). With `stopAfterImage`, decoding
    /// ends after the first block.
    public func generate(prompt: Tensor, options: TextGenerationOptions, stopAfterImage: Bool = false) throws -> GILLGeneration {
        var state = llm.makeState()
        var sampler = TokenSampler(options.sampling, seed: options.seed)
        var out = try llm.forward(inputEmbeddings: prompt, state: &state, lastLogitsOnly: true)
        let ids = imageTokenIDs
        let banned = options.bannedTokens.union(ids.dropFirst())
        var tokens: [Int] = []
        var image: GILLImageOutputs?
        for step in 0..<options.maxNewTokens {
            let token = sampler.next(out.logits.row(out.logits.rowCount - 1), banned: banned)
            if token == ids[0] {
                tokens += ids
                let block = try imageBlockWithLogits(state: &state)
                if image == nil { image = block.outputs }
                out = block.output
                if stopAfterImage { break }
            } else {
                tokens.append(token)
                if options.stopTokens.contains(token) || step + 1 == options.maxNewTokens { break }
                out = try llm.forward(inputEmbeddings: llm.embed([token]), state: &state, lastLogitsOnly: true)
            }
        }
        let textIDs = tokens.filter { !ids.contains($0) }
        return GILLGeneration(tokens: tokens, text: tokenizer.decode(textIDs), image: image)
    }

    private func imageBlockWithLogits(state: inout OPTState) throws -> (outputs: GILLImageOutputs, output: OPTOutput) {
        let inputs = try llm.embed(imageTokenIDs)
        let out = try llm.forward(inputEmbeddings: inputs, state: &state, lastLogitsOnly: true)
        return (try imageOutputs(hidden: out.lastHidden, inputEmbeddings: inputs), out)
    }
}
