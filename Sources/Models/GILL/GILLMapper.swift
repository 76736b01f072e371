import Tensor

/// A LayerNorm's parameters (eps 1e-5, PyTorch's default).
struct Norm: Sendable {
    var weight: Tensor, bias: Tensor
    static func load(_ w: GILLWeights, _ name: String, _ d: Int) throws -> Norm {
        Norm(weight: try w.take(name + ".weight", shape: [d]), bias: try w.take(name + ".bias", shape: [d]))
    }
    func callAsFunction(_ x: Tensor) throws -> Tensor { try layerNorm(x, weight: weight, bias: bias, eps: 1e-5) }
}

/// `nn.MultiheadAttention` (packed `in_proj_weight`, `out_proj`).
struct MultiheadAttention: Sendable {
    /// The packed `in_proj_weight` split at load time into Q and the stacked K, V rows.
    var qWeight: Weight, kvWeight: Weight, inBias: Tensor, outWeight: Weight, outBias: Tensor
    let heads: Int

    static func load(_ w: GILLWeights, _ p: String, d: Int, heads: Int) throws -> MultiheadAttention {
        let packed = try w.takeWeight(p + ".in_proj_weight", shape: [3 * d, d])
        return MultiheadAttention(qWeight: try packed.rowSlice(0..<d), kvWeight: try packed.rowSlice(d..<(3 * d)),
                           inBias: try w.take(p + ".in_proj_bias", shape: [3 * d]),
                           outWeight: try w.takeWeight(p + ".out_proj.weight", shape: [d, d]),
                           outBias: try w.take(p + ".out_proj.bias", shape: [d]), heads: heads)
    }

    func callAsFunction(_ x: Tensor, memory: Tensor) throws -> Tensor {
        let d = outWeight.shape[0]
        let q = try linear(x, weight: qWeight, bias: try Tensor(shape: [d], data: Array(inBias.data[0..<d])))
        let kv = try linear(memory, weight: kvWeight, bias: try Tensor(shape: [2 * d], data: Array(inBias.data[d...])))
        let a = try unmaskedAttention(query: q, key: try columns(kv, 0..<d), value: try columns(kv, d..<(2 * d)), heads: heads)
        return try linear(a, weight: outWeight, bias: outBias)
    }
}

/// A ReLU feed-forward block (`linear1`, `linear2`).
struct FeedForward: Sendable {
    var w1: Weight, b1: Tensor, w2: Weight, b2: Tensor
    static func load(_ w: GILLWeights, _ p: String, d: Int, ffn: Int) throws -> FeedForward {
        FeedForward(w1: try w.takeWeight(p + "linear1.weight", shape: [ffn, d]), b1: try w.take(p + "linear1.bias", shape: [ffn]),
                    w2: try w.takeWeight(p + "linear2.weight", shape: [d, ffn]), b2: try w.take(p + "linear2.bias", shape: [d]))
    }
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try linear(x, weight: w1, bias: b1)
        applyActivation(.relu, to: &h)
        return try linear(h, weight: w2, bias: b2)
    }
}

/// GILL's mapper from the [IMG] tokens to Stable Diffusion's text-conditioning space: the [IMG]
/// last hidden states plus their input embeddings → `fc` (to the mapper width, 512) →
/// `nn.Transformer(norm_first=True, relu, dropout off)` whose decoder runs `num_clip_tokens` (77)
/// learned queries against the encoded [IMG] tokens → `model` (to 768) = `prompt_embeds`.
public struct GILLMapper: Sendable {
    struct EncoderLayer: Sendable { var norm1: Norm, attn: MultiheadAttention, norm2: Norm, ffn: FeedForward }
    struct DecoderLayer: Sendable {
        var norm1: Norm, selfAttn: MultiheadAttention, norm2: Norm, crossAttn: MultiheadAttention, norm3: Norm, ffn: FeedForward
    }
    var fcWeight: Weight, fcBias: Tensor
    var encoder: [EncoderLayer], encoderNorm: Norm
    var decoder: [DecoderLayer], decoderNorm: Norm
    var queries: Tensor
    var outWeight: Weight, outBias: Tensor

    static func load(_ w: GILLWeights, prefix p: String, config c: GILLConfig, sizes m: GILLConfig.Mapper,
                     inputDim: Int) throws -> GILLMapper {
        let d = m.dim, h = m.heads, f = m.ffn, t = p + "tfm."
        let encoder = try (0..<m.layers).map { i -> EncoderLayer in
            let l = t + "encoder.layers.\(i)."
            return EncoderLayer(norm1: try .load(w, l + "norm1", d), attn: try .load(w, l + "self_attn", d: d, heads: h),
                                norm2: try .load(w, l + "norm2", d), ffn: try .load(w, l, d: d, ffn: f))
        }
        let decoder = try (0..<m.layers).map { i -> DecoderLayer in
            let l = t + "decoder.layers.\(i)."
            return DecoderLayer(norm1: try .load(w, l + "norm1", d), selfAttn: try .load(w, l + "self_attn", d: d, heads: h),
                                norm2: try .load(w, l + "norm2", d), crossAttn: try .load(w, l + "multihead_attn", d: d, heads: h),
                                norm3: try .load(w, l + "norm3", d), ffn: try .load(w, l, d: d, ffn: f))
        }
        return GILLMapper(fcWeight: try w.takeWeight(p + "fc.weight", shape: [d, inputDim]), fcBias: try w.take(p + "fc.bias", shape: [d]),
                          encoder: encoder, encoderNorm: try .load(w, t + "encoder.norm", d),
                          decoder: decoder, decoderNorm: try .load(w, t + "decoder.norm", d),
                          queries: try w.take(p + "query_embs", shape: [1, c.numClipTokens, d]).reshaped([c.numClipTokens, d]),
                          outWeight: try w.takeWeight(p + "model.weight", shape: [c.genEmbDim, d]),
                          outBias: try w.take(p + "model.bias", shape: [c.genEmbDim]))
    }

    /// `hidden` and `inputEmbeddings` are `[num_tokens, llm_dim]`; returns `[num_clip_tokens, gen_emb_dim]`.
    public func callAsFunction(hidden: Tensor, inputEmbeddings: Tensor) throws -> Tensor {
        var memory = try linear(try add(hidden, inputEmbeddings), weight: fcWeight, bias: fcBias)
        for l in encoder {
            let n = try l.norm1(memory)
            try addInPlace(&memory, try l.attn(n, memory: n))
            try addInPlace(&memory, try l.ffn(try l.norm2(memory)))
        }
        memory = try encoderNorm(memory)
        var x = queries
        for l in decoder {
            let n = try l.norm1(x)
            try addInPlace(&x, try l.selfAttn(n, memory: n))
            try addInPlace(&x, try l.crossAttn(try l.norm2(x), memory: memory))
            try addInPlace(&x, try l.ffn(try l.norm3(x)))
        }
        return try linear(try decoderNorm(x), weight: outWeight, bias: outBias)
    }
}
