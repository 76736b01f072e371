import Tensor

/// The small layers the UNet and VAE are assembled from, each loaded by its diffusers name.

/// `nn.Conv2d` over NCHW.
struct Conv2DLayer: Sendable {
    let weight: Weight
    let bias: Tensor?
    let stride: Int
    let padding: Padding2D

    static func load(_ r: WeightSource, _ name: String, in c: Int, out o: Int, kernel k: Int, stride: Int = 1,
                     padding: Padding2D? = nil, bias: Bool = true) throws -> Conv2DLayer {
        Conv2DLayer(weight: try r.matrix(name + ".weight", [o, c, k, k]),
                    bias: bias ? try r.weight(name + ".bias", [o]) : nil,
                    stride: stride, padding: padding ?? .uniform(k / 2))
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// `nn.Linear`; also a 1×1 convolution applied to tokens (`proj_in`/`proj_out` when
/// `use_linear_projection` is false: a `[O, C, 1, 1]` weight used as `[O, C]`).
struct LinearLayer: Sendable {
    let weight: Weight
    let bias: Tensor?

    static func load(_ r: WeightSource, _ name: String, in i: Int, out o: Int, bias: Bool = true,
                     fromConv: Bool = false) throws -> LinearLayer {
        let w = try r.matrix(name + ".weight", fromConv ? [o, i, 1, 1] : [o, i])
        return LinearLayer(weight: try w.reshaped([o, i]), bias: bias ? try r.weight(name + ".bias", [o]) : nil)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try linear(x, weight: weight, bias: bias) }

    /// `h += self(x)`, accumulated in place (the residual branches of the transformer blocks).
    func add(_ x: Tensor, to h: inout Tensor) throws { try addLinear(x, weight: weight, bias: bias, to: &h) }
}

/// `nn.GroupNorm`, optionally fused with the SiLU that follows it.
struct GroupNormLayer: Sendable {
    let weight: Tensor
    let bias: Tensor
    let groups: Int
    let eps: Float

    static func load(_ r: WeightSource, _ name: String, channels c: Int, groups: Int, eps: Float) throws -> GroupNormLayer {
        GroupNormLayer(weight: try r.weight(name + ".weight", [c]), bias: try r.weight(name + ".bias", [c]),
                       groups: groups, eps: eps)
    }

    func callAsFunction(_ x: Tensor, silu: Bool = false) throws -> Tensor {
        try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
    }
}

/// `nn.LayerNorm` over the last dimension.
struct LayerNormLayer: Sendable {
    let weight: Tensor
    let bias: Tensor
    let eps: Float

    static func load(_ r: WeightSource, _ name: String, dim: Int, eps: Float = 1e-5) throws -> LayerNormLayer {
        LayerNormLayer(weight: try r.weight(name + ".weight", [dim]), bias: try r.weight(name + ".bias", [dim]), eps: eps)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try layerNorm(x, weight: weight, bias: bias, eps: eps) }
}
