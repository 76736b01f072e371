import Foundation
import Store
import Tensor

/// One OPT decoder layer: self-attention and a ReLU FFN, each with a residual and a LayerNorm
/// before (pre-LN) or after (post-LN, opt-350m) it. Q, K, V are fused into one `[3D, D]`
/// projection. OPT's `head_dim^-0.5` query scaling is folded into the Q rows of float32 weights;
/// half-precision weights stay as stored (the scale is not a power of two for every head size, so
/// folding would round them) and the Q outputs are scaled instead, as transformers does.
struct OPTDecoderLayer: Sendable {
    var qkvWeight: Weight, qkvBias: Tensor
    /// Multiplies the Q third of the fused projection's output (1 when folded into the weights).
    var queryScale: Float
    var outWeight: Weight, outBias: Tensor
    var attnNormWeight: Tensor, attnNormBias: Tensor
    var fc1Weight: Weight, fc1Bias: Tensor
    var fc2Weight: Weight, fc2Bias: Tensor
    var ffnNormWeight: Tensor, ffnNormBias: Tensor

    static func load(_ reader: CheckpointReader, prefix p: String, config c: OPTConfig) throws -> OPTDecoderLayer {
        let d = c.hiddenSize, f = c.ffnDim
        let scale = 1 / Float(d / c.numAttentionHeads).squareRoot()
        func bias(_ name: String, _ n: Int) throws -> Tensor {
            c.enableBias ? try reader.take(name, shape: [n]) : Tensor(zeros: [n])
        }
        var q = try reader.takeWeight(p + "self_attn.q_proj.weight", shape: [d, d])
        var k = try reader.takeWeight(p + "self_attn.k_proj.weight", shape: [d, d])
        var v = try reader.takeWeight(p + "self_attn.v_proj.weight", shape: [d, d])
        var qb = try bias(p + "self_attn.q_proj.bias", d)
        // One storage for the fused projection: mixed dtypes (not seen in published files) widen.
        if q.dtype != k.dtype || q.dtype != v.dtype {
            (q, k, v) = (q.converted(to: .f32), k.converted(to: .f32), v.converted(to: .f32))
        }
        var queryScale = scale
        if q.dtype == .f32 {
            var folded = q.float32()
            for i in folded.data.indices { folded.data[i] *= scale }
            for i in qb.data.indices { qb.data[i] *= scale }
            q = Weight(folded)
            queryScale = 1
        }
        let kb = try bias(p + "self_attn.k_proj.bias", d), vb = try bias(p + "self_attn.v_proj.bias", d)
        return OPTDecoderLayer(
            qkvWeight: try Weight.concatenatingRows([q, k, v]),
            qkvBias: try Tensor(shape: [3 * d], data: qb.data + kb.data + vb.data),
            queryScale: queryScale,
            outWeight: try reader.takeWeight(p + "self_attn.out_proj.weight", shape: [d, d]),
            outBias: try bias(p + "self_attn.out_proj.bias", d),
            attnNormWeight: try reader.take(p + "self_attn_layer_norm.weight", shape: [d]),
            attnNormBias: try reader.take(p + "self_attn_layer_norm.bias", shape: [d]),
            fc1Weight: try reader.takeWeight(p + "fc1.weight", shape: [f, d]), fc1Bias: try bias(p + "fc1.bias", f),
            fc2Weight: try reader.takeWeight(p + "fc2.weight", shape: [d, f]), fc2Bias: try bias(p + "fc2.bias", d),
            ffnNormWeight: try reader.take(p + "final_layer_norm.weight", shape: [d]),
            ffnNormBias: try reader.take(p + "final_layer_norm.bias", shape: [d]))
    }

    /// `x` is `[T, D]` for the T newest positions; their keys/values are appended to `cache`.
    func forward(_ x: Tensor, cache: inout KVCache, mask: [Bool]?, config c: OPTConfig) throws -> Tensor {
        let d = c.hiddenSize, t = x.rowCount
        let preLN = c.doLayerNormBefore
        var h = preLN ? try layerNorm(x, weight: attnNormWeight, bias: attnNormBias, eps: 1e-5) : x
        var qkv = try linear(h, weight: qkvWeight, bias: qkvBias)
        if queryScale != 1 {
            qkv.data.withUnsafeMutableBufferPointer { p in
                for r in 0..<t { for j in 0..<d { p[r * 3 * d + j] *= queryScale } }
            }
        }
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
    /// `[vocab, word_embed_proj_dim]` token embeddings as loaded (also the tied lm_head), in the
    /// checkpoint's precision; rows replaced later live in `replacedRows`.
    public let embedTokens: Weight
    /// Embedding rows replaced or added after loading (GILL's [IMG] tokens), id → values. Kept
    /// apart in float32 so a half-precision table is neither copied nor rounded; with tied
    /// embeddings they replace the lm_head rows too.
    let replacedRows: [Int: [Float]]
    let embedPositions: Tensor
    let projectIn: Weight?, projectOut: Weight?
    let layers: [OPTDecoderLayer]
    let finalNorm: (weight: Tensor, bias: Tensor)?
    /// `[rows ≤ vocab, word_embed_proj_dim]`; logits past its rows are 0 (zero rows) unless replaced.
    let lmHead: Weight
    /// SHA-256 of config.json and the weight files.
    public let digest: String
    /// OPT's position ids start at 2 (`OPTLearnedPositionalEmbedding.offset`).
    public static let positionOffset = 2

    init(folder: URL, config: OPTConfig, embedTokens: Weight, replacedRows: [Int: [Float]] = [:], embedPositions: Tensor,
         projectIn: Weight?, projectOut: Weight?, layers: [OPTDecoderLayer], finalNorm: (weight: Tensor, bias: Tensor)?,
         lmHead: Weight?, digest: String) {
        self.folder = folder
        self.config = config
        self.embedTokens = embedTokens
        self.replacedRows = replacedRows
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
    /// `precision` `.stored` keeps F16/BF16 matrices (projections, token embeddings, lm_head) as
    /// stored, 2 bytes per weight; `.float32` widens them.
    public static func load(from folder: URL, precision: WeightPrecision = .stored) throws -> OPTModel {
        let configURL = folder.appendingPathComponent("config.json")
        let c = try OPTConfig.load(from: configURL)
        let checkpoint = try Checkpoint(url: folder)
        let prefix = checkpoint.contains("decoder.embed_tokens.weight") ? "decoder." : "model.decoder."
        let reader = CheckpointReader(checkpoint, prefix: prefix, configName: configURL.path, precision: precision)
        let e = c.wordEmbedProjDim, d = c.hiddenSize
        let embed = try reader.takeWeight("embed_tokens.weight", shape: [c.vocabSize, e])
        let positions = try reader.take("embed_positions.weight", shape: [c.maxPositionEmbeddings + positionOffset, d])
        let projectIn = c.hasProjections ? try reader.takeWeight("project_in.weight", shape: [d, e]) : nil
        let projectOut = c.hasProjections ? try reader.takeWeight("project_out.weight", shape: [e, d]) : nil
        let layers = try (0..<c.numHiddenLayers).map {
            try OPTDecoderLayer.load(reader, prefix: "layers.\($0).", config: c)
        }
        let finalNorm = c.hasFinalLayerNorm
            ? (try reader.take("final_layer_norm.weight", shape: [d]), try reader.take("final_layer_norm.bias", shape: [d])) : nil
        reader.prefix = ""
        var lmHead: Weight?
        if c.tieWordEmbeddings {
            reader.ignore("lm_head.weight")
        } else {
            lmHead = try reader.takeWeight("lm_head.weight", shape: [c.vocabSize, e])
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
        guard ids.allSatisfy({ $0 >= 0 && $0 < config.vocabSize }) else {
            throw TensorError("OPT token id out of range 0..<\(config.vocabSize) in \(ids.prefix(16))…")
        }
        let e = config.wordEmbedProjDim
        // Rows past the loaded table that were never replaced are zero (resize_token_embeddings' new rows here).
        var out = try embedTokens.gatherRows(ids.map { $0 < embedTokens.rows ? $0 : 0 })
        for (k, id) in ids.enumerated() {
            if let row = replacedRows[id] {
                out.data.replaceSubrange((k * e)..<((k + 1) * e), with: row)
            } else if id >= embedTokens.rows {
                out.data.replaceSubrange((k * e)..<((k + 1) * e), with: repeatElement(0, count: e))
            }
        }
        return out
    }

    /// Logits `[rows, vocab]` of final hidden states: the lm_head product, zero logits for rows past
    /// the stored head, and the replaced rows' own products when the head is tied.
    func logits(_ x: Tensor) throws -> Tensor {
        var head = try linear(x, weight: lmHead)
        let vocab = config.vocabSize, stored = lmHead.rows, rows = x.rowCount, e = x.lastDimension
        if vocab > stored {
            var padded = [Float](repeating: 0, count: rows * vocab)
            for r in 0..<rows { padded.replaceSubrange((r * vocab)..<(r * vocab + stored), with: head.data[(r * stored)..<((r + 1) * stored)]) }
            head = try Tensor(shape: Array(x.shape.dropLast()) + [vocab], data: padded)
        }
        if config.tieWordEmbeddings {
            for (id, row) in replacedRows {
                for r in 0..<rows {
                    var dot: Float = 0
                    for j in 0..<e { dot += x.data[r * e + j] * row[j] }
                    head.data[r * vocab + id] = dot
                }
            }
        }
        return head
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
        return OPTOutput(lastHidden: x, logits: try logits(logitsInput))
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
        var replaced = replacedRows
        for (id, row) in rows {
            guard id >= 0, row.count == e else { throw TensorError("embedding row \(id) has \(row.count) values, expected \(e)") }
            replaced[id] = row
        }
        var c = config
        c.vocabSize = max(config.vocabSize, (rows.keys.max() ?? -1) + 1)
        return OPTModel(folder: folder, config: c, embedTokens: embedTokens, replacedRows: replaced, embedPositions: embedPositions,
                        projectIn: projectIn, projectOut: projectOut, layers: layers, finalNorm: finalNorm,
                        lmHead: config.tieWordEmbeddings ? nil : lmHead, digest: digest)
    }
}
