import Foundation
import Store
import Tensor

/// One OPT decoder layer: self-attention and a ReLU FFN, each with a residual and a LayerNorm
/// before (pre-LN) or after (post-LN, opt-350m) it. Q, K, V are fused into one `[3D, D]`
/// projection with OPT's `head_dim^-0.5` query scaling folded into the Q rows.
struct OPTDecoderLayer: Sendable {
    var qkvWeight: Tensor, qkvBias: Tensor
    var outWeight: Tensor, outBias: Tensor
    var attnNormWeight: Tensor, attnNormBias: Tensor
    var fc1Weight: Tensor, fc1Bias: Tensor
    var fc2Weight: Tensor, fc2Bias: Tensor
    var ffnNormWeight: Tensor, ffnNormBias: Tensor

    static func load(_ reader: CheckpointReader, prefix p: String, config c: OPTConfig) throws -> OPTDecoderLayer {
        let d = c.hiddenSize, f = c.ffnDim
        let scale = 1 / Float(d / c.numAttentionHeads).squareRoot()
        func bias(_ name: String, _ n: Int) throws -> Tensor {
            c.enableBias ? try reader.take(name, shape: [n]) : Tensor(zeros: [n])
        }
        var q = try reader.take(p + "self_attn.q_proj.weight", shape: [d, d])
        var qb = try bias(p + "self_attn.q_proj.bias", d)
        for i in q.data.indices { q.data[i] *= scale }
        for i in qb.data.indices { qb.data[i] *= scale }
        let k = try reader.take(p + "self_attn.k_proj.weight", shape: [d, d])
        let v = try reader.take(p + "self_attn.v_proj.weight", shape: [d, d])
        let kb = try bias(p + "self_attn.k_proj.bias", d), vb = try bias(p + "self_attn.v_proj.bias", d)
        return OPTDecoderLayer(
            qkvWeight: try Tensor(shape: [3 * d, d], data: q.data + k.data + v.data),
            qkvBias: try Tensor(shape: [3 * d], data: qb.data + kb.data + vb.data),
            outWeight: try reader.take(p + "self_attn.out_proj.weight", shape: [d, d]),
            outBias: try bias(p + "self_attn.out_proj.bias", d),
            attnNormWeight: try reader.take(p + "self_attn_layer_norm.weight", shape: [d]),
            attnNormBias: try reader.take(p + "self_attn_layer_norm.bias", shape: [d]),
            fc1Weight: try reader.take(p + "fc1.weight", shape: [f, d]), fc1Bias: try bias(p + "fc1.bias", f),
            fc2Weight: try reader.take(p + "fc2.weight", shape: [d, f]), fc2Bias: try bias(p + "fc2.bias", d),
            ffnNormWeight: try reader.take(p + "final_layer_norm.weight", shape: [d]),
            ffnNormBias: try reader.take(p + "final_layer_norm.bias", shape: [d]))
    }

    /// `x` is `[T, D]` for the T newest positions; their keys/values are appended to `cache`.
    func forward(_ x: Tensor, cache: inout KVCache, mask: [Bool]?, config c: OPTConfig) throws -> Tensor {
        let d = c.hiddenSize, t = x.rowCount
        let preLN = c.doLayerNormBefore
        var h = preLN ? try layerNorm(x, weight: attnNormWeight, bias: attnNormBias, eps: 1e-5) : x
        let qkv = try linear(h, weight: qkvWeight, bias: qkvBias)
        qkv.data.withUnsafeBufferPointer { p in
            cache.append(rows: t, from: p.baseAddress!, rowStride: 3 * d, keyOffset: d, valueOffset: 2 * d, mask: mask)
        }
        var attn = [Float](repeating: 0, count: t * d)
        qkv.data.withUnsafeBufferPointer { p in
            attn.withUnsafeMutableBufferPointer { o in
                cachedAttention(query: p.baseAddress!, rowStride: 3 * d, newRows: t, cache: cache,
                                heads: c.numAttentionHeads, scale: 1, out: o.baseAddress!)
            }
        }
        var y = try linear(try Tensor(shape: [t, d], data: attn), weight: outWeight, bias: outBias)
        try addInPlace(&y, x)
        if !preLN { y = try layerNorm(y, weight: attnNormWeight, bias: attnNormBias, eps: 1e-5) }
        h = preLN ? try layerNorm(y, weight: ffnNormWeight, bias: ffnNormBias, eps: 1e-5) : y
        var f = try linear(h, weight: fc1Weight, bias: fc1Bias)
        applyActivation(c.activationFunction, to: &f)
        var out = try linear(f, weight: fc2Weight, bias: fc2Bias)
        try addInPlace(&out, y)
        if !preLN { out = try layerNorm(out, weight: ffnNormWeight, bias: ffnNormBias, eps: 1e-5) }
        return out
    }
}

/// The per-sequence state of incremental decoding: one `KVCache` per layer plus the attention
/// mask so far (positions come from its running sum, as OPT computes them).
public struct OPTState: Sendable {
    public internal(set) var layers: [KVCache]
    /// Attention mask of every position fed so far.
    public internal(set) var mask: [Bool] = []
    /// Number of positions fed so far.
    public var count: Int { mask.count }
}

/// What one `OPTModel.forward` call computes for the positions it was given.
public struct OPTOutput: Sendable {
    /// `[T, word_embed_proj_dim]`: the last hidden states after `final_layer_norm` and
    /// `project_out` (transformers' `hidden_states[-1]`, what GILL reads for [IMG] tokens).
    public var lastHidden: Tensor
    /// `[T, vocab]` logits, or only the last row's `[1, vocab]` when asked for `lastLogitsOnly`.
    public var logits: Tensor
}

/// An OPT decoder LLM (`OPTForCausalLM`) loaded from a transformers folder as published.
///
/// Learned positional embeddings with OPT's offset of 2, pre- or post-LN decoder layers,
/// ReLU FFN, optional `project_in`/`project_out`, final LayerNorm, lm_head tied to the
/// token embeddings (or a separate `lm_head.weight` when `tie_word_embeddings` is false).
public final class OPTModel: Sendable {
    public let folder: URL
    public let config: OPTConfig
    /// `[vocab, word_embed_proj_dim]` token embeddings (also the tied lm_head).
    public let embedTokens: Tensor
    let embedPositions: Tensor
    let projectIn: Tensor?, projectOut: Tensor?
    let layers: [OPTDecoderLayer]
    let finalNorm: (weight: Tensor, bias: Tensor)?
    let lmHead: Tensor
    /// SHA-256 of config.json and the weight files.
    public let digest: String
    /// OPT's position ids start at 2 (`OPTLearnedPositionalEmbedding.offset`).
    public static let positionOffset = 2

    init(folder: URL, config: OPTConfig, embedTokens: Tensor, embedPositions: Tensor, projectIn: Tensor?,
         projectOut: Tensor?, layers: [OPTDecoderLayer], finalNorm: (weight: Tensor, bias: Tensor)?, lmHead: Tensor?, digest: String) {
        self.folder = folder
        self.config = config
        self.embedTokens = embedTokens
        self.embedPositions = embedPositions
        self.projectIn = projectIn
        self.projectOut = projectOut
        self.layers = layers
        self.finalNorm = finalNorm
        self.lmHead = lmHead ?? embedTokens
        self.digest = digest
    }

    /// Loads `config.json` and `model.safetensors` (or shards, or `pytorch_model.bin` and its
    /// shards; f32/f16/bf16). Tensor names may
    /// start with `model.decoder.` (OPTForCausalLM) or `decoder.` (OPTModel exports).
    public static func load(from folder: URL) throws -> OPTModel {
        let configURL = folder.appendingPathComponent("config.json")
        let c = try OPTConfig.load(from: configURL)
        let checkpoint = try Checkpoint(url: folder)
        let prefix = checkpoint.contains("decoder.embed_tokens.weight") ? "decoder." : "model.decoder."
        let reader = CheckpointReader(checkpoint, prefix: prefix, configName: configURL.path)
        let e = c.wordEmbedProjDim, d = c.hiddenSize
        let embed = try reader.take("embed_tokens.weight", shape: [c.vocabSize, e])
        let positions = try reader.take("embed_positions.weight", shape: [c.maxPositionEmbeddings + positionOffset, d])
        let projectIn = c.hasProjections ? try reader.take("project_in.weight", shape: [d, e]) : nil
        let projectOut = c.hasProjections ? try reader.take("project_out.weight", shape: [e, d]) : nil
        let layers = try (0..<c.numHiddenLayers).map {
            try OPTDecoderLayer.load(reader, prefix: "layers.\($0).", config: c)
        }
        let finalNorm = c.hasFinalLayerNorm
            ? (try reader.take("final_layer_norm.weight", shape: [d]), try reader.take("final_layer_norm.bias", shape: [d])) : nil
        reader.prefix = ""
        var lmHead: Tensor?
        if c.tieWordEmbeddings {
            reader.ignore("lm_head.weight")
        } else {
            lmHead = try reader.take("lm_head.weight", shape: [c.vocabSize, e])
        }
        try reader.requireAllUsed()
        let digest = Hashing.sha256Hex(files: [("config.json", folder.appendingPathComponent("config.json"))]
                                            + checkpoint.urls.map { ($0.lastPathComponent, $0) })
        return OPTModel(folder: folder, config: c, embedTokens: embed, embedPositions: positions, projectIn: projectIn,
                        projectOut: projectOut, layers: layers, finalNorm: finalNorm, lmHead: lmHead, digest: digest)
    }

    /// Width of input embeddings and of `OPTOutput.lastHidden` (`word_embed_proj_dim`).
    public var embeddingDimension: Int { config.wordEmbedProjDim }

    /// A fresh decoding state (empty caches).
    public func makeState() -> OPTState {
        OPTState(layers: layers.map { _ in KVCache(width: config.hiddenSize) })
    }

    /// Input embeddings `[T, word_embed_proj_dim]` of token ids (`get_input_embeddings()(ids)`).
    public func embed(_ ids: [Int]) throws -> Tensor {
        do { return try embedTokens.gatherRows(ids) } catch {
            throw TensorError("OPT token id out of range 0..<\(config.vocabSize) in \(ids.prefix(16))…")
        }
    }

    /// Runs the decoder on new positions given as input embeddings `[T, word_embed_proj_dim]`
    /// (`inputs_embeds`), appending to `state`. `mask` (default all true) is the attention mask of
    /// the new positions. Prefill then one position at a time gives the same result as one call.
    public func forward(inputEmbeddings: Tensor, state: inout OPTState, mask: [Bool]? = nil,
                        lastLogitsOnly: Bool = false) throws -> OPTOutput {
        let t = inputEmbeddings.rowCount
        guard inputEmbeddings.lastDimension == config.wordEmbedProjDim, t > 0 else {
            throw TensorError("OPT input embeddings \(inputEmbeddings.shape) must be [T>0, \(config.wordEmbedProjDim)]")
        }
        let newMask = mask ?? [Bool](repeating: true, count: t)
        guard newMask.count == t else { throw TensorError("OPT attention mask has \(newMask.count) entries for \(t) positions") }
        // Position of each new token = (number of unmasked positions up to it) - 1 + offset; padding gets 1.
        var seen = state.mask.filter { $0 }.count
        var positionIDs: [Int] = []
        for m in newMask {
            if m { seen += 1 }
            positionIDs.append(m ? seen - 1 + Self.positionOffset : Self.positionOffset - 1)
        }
        guard (positionIDs.max() ?? 0) < embedPositions.rowCount else {
            throw TensorError("OPT sequence of \(state.count + t) positions exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        var x = inputEmbeddings
        if let projectIn { x = try linear(x, weight: projectIn) }
        try addInPlace(&x, try embedPositions.gatherRows(positionIDs))
        for (i, layer) in layers.enumerated() {
            x = try layer.forward(x, cache: &state.layers[i], mask: newMask, config: config)
        }
        state.mask += newMask
        if let finalNorm { x = try layerNorm(x, weight: finalNorm.weight, bias: finalNorm.bias, eps: 1e-5) }
        if let projectOut { x = try linear(x, weight: projectOut) }
        let logitsInput = lastLogitsOnly ? try Tensor(shape: [1, x.lastDimension], data: x.row(t - 1)) : x
        return OPTOutput(lastHidden: x, logits: try linear(logitsInput, weight: lmHead))
    }

    /// One full forward of token ids from an empty state (logits for every position).
    public func forward(ids: [Int]) throws -> OPTOutput {
        var state = makeState()
        return try forward(inputEmbeddings: embed(ids), state: &state)
    }
}

extension OPTModel {
    /// A copy whose token-embedding rows `rows` (id → values) are replaced — and, with tied
    /// embeddings, the lm_head rows with them — growing the vocabulary with zero rows when an id
    /// lies past it (GILL's `resize_token_embeddings` for its added tokens).
    public func replacingEmbeddingRows(_ rows: [Int: [Float]]) throws -> OPTModel {
        let e = config.wordEmbedProjDim
        let vocab = max(config.vocabSize, (rows.keys.max() ?? -1) + 1)
        var data = embedTokens.data + [Float](repeating: 0, count: (vocab - config.vocabSize) * e)
        for (id, row) in rows {
            guard id >= 0, row.count == e else { throw TensorError("embedding row \(id) has \(row.count) values, expected \(e)") }
            data.replaceSubrange((id * e)..<((id + 1) * e), with: row)
        }
        var c = config
        c.vocabSize = vocab
        let embed = try Tensor(shape: [vocab, e], data: data)
        var head: Tensor? = nil
        if !config.tieWordEmbeddings {
            head = try Tensor(shape: [vocab, e], data: lmHead.data + [Float](repeating: 0, count: (vocab - config.vocabSize) * e))
        }
        return OPTModel(folder: folder, config: c, embedTokens: embed, embedPositions: embedPositions, projectIn: projectIn,
                        projectOut: projectOut, layers: layers, finalNorm: finalNorm, lmHead: head, digest: digest)
    }
}
