import Tensor

/// One pre-norm transformer layer of a CLIP tower (`CLIPEncoderLayer` in transformers).
///
/// Q, K and V are fused into one `[3D, D]` product at load time, so each layer costs four
/// sgemm calls over the whole `[B·T, D]` batch plus the per-head attention products.
public struct CLIPEncoderLayer: Sendable {
    public var layerNorm1Weight = Tensor(zeros: [0]), layerNorm1Bias = Tensor(zeros: [0])
    public var qWeight = Tensor(zeros: [0]), qBias = Tensor(zeros: [0])
    public var kWeight = Tensor(zeros: [0]), kBias = Tensor(zeros: [0])
    public var vWeight = Tensor(zeros: [0]), vBias = Tensor(zeros: [0])
    public var outWeight = Tensor(zeros: [0]), outBias = Tensor(zeros: [0])
    public var layerNorm2Weight = Tensor(zeros: [0]), layerNorm2Bias = Tensor(zeros: [0])
    public var fc1Weight = Tensor(zeros: [0]), fc1Bias = Tensor(zeros: [0])
    public var fc2Weight = Tensor(zeros: [0]), fc2Bias = Tensor(zeros: [0])
    /// `[q; k; v]` stacked, built by `fuse()`.
    var qkvWeight = Tensor(zeros: [0]), qkvBias = Tensor(zeros: [0])

    /// The weight map: transformers names (relative to `encoder.layers.N.`) → fields, with the
    /// shape each must have for width `d` and MLP width `ff`.
    static func parameterTable(d: Int, ff: Int) -> [(name: String, field: WritableKeyPath<CLIPEncoderLayer, Tensor>, shape: [Int])] {
        [
            ("layer_norm1.weight", \.layerNorm1Weight, [d]), ("layer_norm1.bias", \.layerNorm1Bias, [d]),
            ("self_attn.q_proj.weight", \.qWeight, [d, d]), ("self_attn.q_proj.bias", \.qBias, [d]),
            ("self_attn.k_proj.weight", \.kWeight, [d, d]), ("self_attn.k_proj.bias", \.kBias, [d]),
            ("self_attn.v_proj.weight", \.vWeight, [d, d]), ("self_attn.v_proj.bias", \.vBias, [d]),
            ("self_attn.out_proj.weight", \.outWeight, [d, d]), ("self_attn.out_proj.bias", \.outBias, [d]),
            ("layer_norm2.weight", \.layerNorm2Weight, [d]), ("layer_norm2.bias", \.layerNorm2Bias, [d]),
            ("mlp.fc1.weight", \.fc1Weight, [ff, d]), ("mlp.fc1.bias", \.fc1Bias, [ff]),
            ("mlp.fc2.weight", \.fc2Weight, [d, ff]), ("mlp.fc2.bias", \.fc2Bias, [d]),
        ]
    }

    /// Reads one layer's tensors under `prefix` (e.g. `vision_model.encoder.layers.3.`).
    static func load(_ reader: CheckpointReader, prefix: String, d: Int, ff: Int) throws -> CLIPEncoderLayer {
        var layer = CLIPEncoderLayer()
        for entry in parameterTable(d: d, ff: ff) {
            layer[keyPath: entry.field] = try reader.take(prefix + entry.name, shape: entry.shape)
        }
        try layer.fuse()
        return layer
    }

    mutating func fuse() throws {
        let d = qWeight.shape[0]
        qkvWeight = try Tensor(shape: [3 * d, qWeight.shape[1]], data: qWeight.data + kWeight.data + vWeight.data)
        qkvBias = try Tensor(shape: [3 * d], data: qBias.data + kBias.data + vBias.data)
        // The separate copies are only needed to build the fused ones.
        qWeight = Tensor(zeros: [d, 0]); kWeight = qWeight; vWeight = qWeight
        qBias = Tensor(zeros: [d]); kBias = qBias; vBias = qBias
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
