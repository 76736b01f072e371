import Tensor

/// diffusers' `Attention` as the UNet's transformer blocks use it: bias-free Q/K/V, an output
/// projection with bias, `heads` heads of `dim/heads`, computed blockwise (`blockedAttention`).
struct CrossAttention: Sendable {
    /// Self-attention: Q, K, V weights stacked into one `[3·inner, dim]` matrix (one sgemm).
    let qkv: Weight?
    let q: LinearLayer?
    let kv: Weight?
    let out: LinearLayer
    let heads: Int
    let inner: Int

    static func load(_ r: WeightSource, _ p: String, dim: Int, crossAttentionDim: Int?, heads: Int, headDim: Int,
                     bias: Bool = false) throws -> CrossAttention {
        let inner = heads * headDim
        let kvDim = crossAttentionDim ?? dim
        var wq = try r.matrix(p + "to_q.weight", [inner, dim])
        var wk = try r.matrix(p + "to_k.weight", [inner, kvDim])
        var wv = try r.matrix(p + "to_v.weight", [inner, kvDim])
        // One storage per fused product: mixed dtypes (not seen in published files) widen.
        if wq.dtype != wk.dtype || wq.dtype != wv.dtype {
            (wq, wk, wv) = (wq.converted(to: .f32), wk.converted(to: .f32), wv.converted(to: .f32))
        }
        let out = try LinearLayer.load(r, p + "to_out.0", in: inner, out: dim)
        if crossAttentionDim == nil {
            return CrossAttention(qkv: try Weight.concatenatingRows([wq, wk, wv]),
                                  q: nil, kv: nil, out: out, heads: heads, inner: inner)
        }
        return CrossAttention(qkv: nil, q: LinearLayer(weight: wq, bias: nil),
                              kv: try Weight.concatenatingRows([wk, wv]),
                              out: out, heads: heads, inner: inner)
    }

    /// The attention's `[B·T, inner]` result before the output projection `out`, which the block adds
    /// straight into its residual stream (`LinearLayer.add`).
    /// - Parameters:
    ///   - x: `[B·T, dim]` tokens of `batch` sequences.
    ///   - promptEmbeddings: `[B·Tc, crossAttentionDim]` for cross-attention (nil for self-attention).
    func attend(_ x: Tensor, batch: Int, promptEmbeddings: Tensor?, promptLength: Int) throws -> Tensor {
        let t = x.rowCount / batch
        let hd = inner / heads
        var result = uninitializedFloats(x.rowCount * inner)   // every (sequence, head, query) block is written
        if let qkv {
            let proj = try linear(x, weight: qkv)   // [B·T, 3·inner]
            proj.data.withUnsafeBufferPointer { pp in
                result.withUnsafeMutableBufferPointer { op in
                    let base = pp.baseAddress!, s = 3 * inner
                    blockedAttention(query: AttentionOperand(base: base, rowStride: s, offset: 0),
                                     key: AttentionOperand(base: base, rowStride: s, offset: inner),
                                     value: AttentionOperand(base: base, rowStride: s, offset: 2 * inner),
                                     batch: batch, queryLength: t, keyLength: t, heads: heads, headDim: hd,
                                     out: op.baseAddress!, outStride: inner)
                }
            }
        } else if let q, let kv, let promptEmbeddings {
            let query = try q(x)                                   // [B·T, inner]
            let keyValue = try linear(promptEmbeddings, weight: kv)         // [B·Tc, 2·inner]
            query.data.withUnsafeBufferPointer { qp in
                keyValue.data.withUnsafeBufferPointer { kp in
                    result.withUnsafeMutableBufferPointer { op in
                        blockedAttention(query: AttentionOperand(base: qp.baseAddress!, rowStride: inner),
                                         key: AttentionOperand(base: kp.baseAddress!, rowStride: 2 * inner, offset: 0),
                                         value: AttentionOperand(base: kp.baseAddress!, rowStride: 2 * inner, offset: inner),
                                         batch: batch, queryLength: t, keyLength: promptLength, heads: heads, headDim: hd,
                                         out: op.baseAddress!, outStride: inner)
                    }
                }
            }
        } else {
            throw TensorError("cross-attention needs encoder hidden states")
        }
        return try Tensor(shape: [x.rowCount, inner], data: result)
    }
}

/// `BasicTransformerBlock`: self-attention, cross-attention, GEGLU feed-forward, each pre-norm
/// (LayerNorm) with a residual.
struct BasicTransformerBlock: Sendable {
    let norm1: LayerNormLayer, attn1: CrossAttention
    let norm2: LayerNormLayer, attn2: CrossAttention
    let norm3: LayerNormLayer
    let ffIn: LinearLayer, ffOut: LinearLayer

    static func load(_ r: WeightSource, _ p: String, dim: Int, crossAttentionDim: Int, heads: Int, headDim: Int) throws -> BasicTransformerBlock {
        let ff = dim * 4
        return BasicTransformerBlock(
            norm1: try .load(r, p + "norm1", dim: dim),
            attn1: try .load(r, p + "attn1.", dim: dim, crossAttentionDim: nil, heads: heads, headDim: headDim),
            norm2: try .load(r, p + "norm2", dim: dim),
            attn2: try .load(r, p + "attn2.", dim: dim, crossAttentionDim: crossAttentionDim, heads: heads, headDim: headDim),
            norm3: try .load(r, p + "norm3", dim: dim),
            ffIn: try .load(r, p + "ff.net.0.proj", in: dim, out: 2 * ff),
            ffOut: try .load(r, p + "ff.net.2", in: ff, out: dim))
    }

    func callAsFunction(_ x: Tensor, batch: Int, promptEmbeddings: Tensor, promptLength: Int) throws -> Tensor {
        var h = x
        try attn1.out.add(attn1.attend(norm1(h), batch: batch, promptEmbeddings: nil, promptLength: 0), to: &h)
        try attn2.out.add(attn2.attend(norm2(h), batch: batch, promptEmbeddings: promptEmbeddings, promptLength: promptLength),
                          to: &h)
        try ffOut.add(geglu(ffIn(norm3(h))), to: &h)
        return h
    }
}

/// `Transformer2DModel` (continuous input): GroupNorm (eps 1e-6), `proj_in` (1×1 conv or
/// linear — the same map per pixel), transformer blocks on the `H·W` tokens, `proj_out`, and
/// the input added back.
struct Transformer2D: Sendable {
    let norm: GroupNormLayer
    let projIn: LinearLayer
    let blocks: [BasicTransformerBlock]
    let projOut: LinearLayer

    static func load(_ r: WeightSource, _ p: String, channels c: Int, heads: Int, layers: Int, crossAttentionDim: Int,
                     groups: Int, linearProjection: Bool) throws -> Transformer2D {
        let headDim = c / heads
        return Transformer2D(
            norm: try .load(r, p + "norm", channels: c, groups: groups, eps: 1e-6),
            projIn: try .load(r, p + "proj_in", in: c, out: c, fromConv: !linearProjection),
            blocks: try (0..<layers).map {
                try BasicTransformerBlock.load(r, p + "transformer_blocks.\($0).", dim: c, crossAttentionDim: crossAttentionDim,
                                               heads: heads, headDim: headDim)
            },
            projOut: try .load(r, p + "proj_out", in: c, out: c, fromConv: !linearProjection))
    }

    /// - Parameter promptEmbeddings: `[B·Tc, crossAttentionDim]`.
    func callAsFunction(_ x: Tensor, promptEmbeddings: Tensor, promptLength: Int) throws -> Tensor {
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        var tokens = try linearFromChannels(norm(x), weight: projIn.weight, bias: projIn.bias)
        for block in blocks { tokens = try block(tokens, batch: b, promptEmbeddings: promptEmbeddings, promptLength: promptLength) }
        return try linearToChannels(tokens, weight: projOut.weight, bias: projOut.bias, batch: b, height: h, width: w, adding: x)
    }
}
