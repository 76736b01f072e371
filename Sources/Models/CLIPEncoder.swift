import Tensor

/// One pre-norm transformer layer of a CLIP tower (`CLIPEncoderLayer` in transformers).
///
/// Q, K and V are fused into one `[3D, D]` product at load time, so each layer costs four
/// sgemm calls over the whole `[B·T, D]` batch plus the per-head attention products. Matrices
/// keep the checkpoint's f16/bf16 storage unless loaded with `.float32`.
public struct CLIPEncoderLayer: Sendable {
    var layerNorm1Weight: Tensor, layerNorm1Bias: Tensor
    /// `[q; k; v]` stacked at load time, in the checkpoint's storage (`Weight`).
    var qkvWeight: Weight, qkvBias: Tensor
    var outWeight: Weight, outBias: Tensor
    var layerNorm2Weight: Tensor, layerNorm2Bias: Tensor
    var fc1Weight: Weight, fc1Bias: Tensor
    var fc2Weight: Weight, fc2Bias: Tensor

    /// The weight map: transformers names (relative to `encoder.layers.N.`) with the shape each
    /// must have for width `d` and MLP width `ff`.
    static func parameterTable(d: Int, ff: Int) -> [(name: String, shape: [Int])] {
        [
            ("layer_norm1.weight", [d]), ("layer_norm1.bias", [d]),
            ("self_attn.q_proj.weight", [d, d]), ("self_attn.q_proj.bias", [d]),
            ("self_attn.k_proj.weight", [d, d]), ("self_attn.k_proj.bias", [d]),
            ("self_attn.v_proj.weight", [d, d]), ("self_attn.v_proj.bias", [d]),
            ("self_attn.out_proj.weight", [d, d]), ("self_attn.out_proj.bias", [d]),
            ("layer_norm2.weight", [d]), ("layer_norm2.bias", [d]),
            ("mlp.fc1.weight", [ff, d]), ("mlp.fc1.bias", [ff]),
            ("mlp.fc2.weight", [d, ff]), ("mlp.fc2.bias", [d]),
        ]
    }

    /// Reads one layer's tensors under `prefix` (e.g. `vision_model.encoder.layers.3.`): matrices
    /// in the reader's precision, biases and norms as float32.
    static func load(_ reader: CheckpointReader, prefix: String, d: Int, ff: Int) throws -> CLIPEncoderLayer {
        func vector(_ name: String, _ n: Int) throws -> Tensor { try reader.take(prefix + name, shape: [n]) }
        func matrix(_ name: String, _ shape: [Int]) throws -> Weight { try reader.takeWeight(prefix + name, shape: shape) }
        var q = try matrix("self_attn.q_proj.weight", [d, d]), k = try matrix("self_attn.k_proj.weight", [d, d])
        var v = try matrix("self_attn.v_proj.weight", [d, d])
        // One storage for the fused projection: mixed dtypes (not seen in published files) widen.
        if q.dtype != k.dtype || q.dtype != v.dtype {
            (q, k, v) = (q.converted(to: .f32), k.converted(to: .f32), v.converted(to: .f32))
        }
        let qb = try vector("self_attn.q_proj.bias", d), kb = try vector("self_attn.k_proj.bias", d)
        let vb = try vector("self_attn.v_proj.bias", d)
        return CLIPEncoderLayer(
            layerNorm1Weight: try vector("layer_norm1.weight", d), layerNorm1Bias: try vector("layer_norm1.bias", d),
            qkvWeight: try Weight.concatenatingRows([q, k, v]),
            qkvBias: try Tensor(shape: [3 * d], data: qb.data + kb.data + vb.data),
            outWeight: try matrix("self_attn.out_proj.weight", [d, d]), outBias: try vector("self_attn.out_proj.bias", d),
            layerNorm2Weight: try vector("layer_norm2.weight", d), layerNorm2Bias: try vector("layer_norm2.bias", d),
            fc1Weight: try matrix("mlp.fc1.weight", [ff, d]), fc1Bias: try vector("mlp.fc1.bias", ff),
            fc2Weight: try matrix("mlp.fc2.weight", [d, ff]), fc2Bias: try vector("mlp.fc2.bias", d))
    }

    /// `x` is `[batch·seq, D]`; returns the layer output of the same shape.
    func forward(_ x: Tensor, batch: Int, sequenceLength t: Int, heads: Int, activation: Activation,
                 eps: Float, causal: Bool) throws -> Tensor {
        let d = x.lastDimension
        var h = try layerNorm(x, weight: layerNorm1Weight, bias: layerNorm1Bias, eps: eps)
        let qkv = try linear(h, weight: qkvWeight, bias: qkvBias)
        var attended = [Float](repeating: 0, count: x.count)
        qkv.data.withUnsafeBufferPointer { p in
            let base = p.baseAddress!
            attended.withUnsafeMutableBufferPointer { o in
                multiHeadAttention(query: AttentionOperand(base: base, rowStride: 3 * d, offset: 0),
                                   key: AttentionOperand(base: base, rowStride: 3 * d, offset: d),
                                   value: AttentionOperand(base: base, rowStride: 3 * d, offset: 2 * d),
                                   batch: batch, sequenceLength: t, heads: heads, width: d, causal: causal,
                                   out: o.baseAddress!)
            }
        }
        var residual = try linear(Tensor(shape: x.shape, data: attended), weight: outWeight, bias: outBias)
        try addInPlace(&residual, x)
        h = try layerNorm(residual, weight: layerNorm2Weight, bias: layerNorm2Bias, eps: eps)
        var mlp = try linear(h, weight: fc1Weight, bias: fc1Bias)
        applyActivation(activation, to: &mlp)
        var out = try linear(mlp, weight: fc2Weight, bias: fc2Bias)
        try addInPlace(&out, residual)
        return out
    }
}

/// A LayerNorm's parameters.
public struct CLIPLayerNorm: Sendable {
    public var weight: Tensor
    public var bias: Tensor
    public var eps: Float

    static func load(_ reader: CheckpointReader, _ name: String, d: Int, eps: Float) throws -> CLIPLayerNorm {
        CLIPLayerNorm(weight: try reader.take(name + ".weight", shape: [d]),
                      bias: try reader.take(name + ".bias", shape: [d]), eps: eps)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}
