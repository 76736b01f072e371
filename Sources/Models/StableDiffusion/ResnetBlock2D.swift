import Tensor

/// diffusers' `ResnetBlock2D` (time_embedding_norm "default"): GroupNorm → SiLU → 3×3 conv,
/// plus the projected time embedding per channel, GroupNorm → SiLU → 3×3 conv, and the
/// (1×1-projected when the width changes) input added back, divided by `output_scale_factor`.
struct ResnetBlock2D: Sendable {
    let norm1: GroupNormLayer
    let conv1: Conv2DLayer
    let timeEmbProj: LinearLayer?
    let norm2: GroupNormLayer
    let conv2: Conv2DLayer
    let shortcut: Conv2DLayer?
    let outputScale: Float

    static func load(_ r: WeightSource, _ p: String, in c: Int, out o: Int, temb: Int?, groups: Int, eps: Float,
                     outputScale: Float = 1) throws -> ResnetBlock2D {
        ResnetBlock2D(
            norm1: try .load(r, p + "norm1", channels: c, groups: groups, eps: eps),
            conv1: try .load(r, p + "conv1", in: c, out: o, kernel: 3),
            timeEmbProj: try temb.map { try LinearLayer.load(r, p + "time_emb_proj", in: $0, out: o) },
            norm2: try .load(r, p + "norm2", channels: o, groups: groups, eps: eps),
            conv2: try .load(r, p + "conv2", in: o, out: o, kernel: 3),
            shortcut: c != o ? try .load(r, p + "conv_shortcut", in: c, out: o, kernel: 1, padding: .uniform(0)) : nil,
            outputScale: outputScale)
    }

    /// - Parameter activatedTemb: `silu(emb)` `[B, temb]`, shared by every block of a forward pass.
    func callAsFunction(_ x: Tensor, activatedTemb: Tensor?) throws -> Tensor {
        var h = try conv1(norm1(x, silu: true))
        if let proj = timeEmbProj, let temb = activatedTemb {
            let t = try proj(temb)   // [B, O]
            let (b, o) = (h.shape[0], h.shape[1]), n = h.shape[2] * h.shape[3]
            guard t.count == b * o else { throw TensorError("ResnetBlock2D: time embedding \(t.shape) does not fit \(h.shape)") }
            h.data.withUnsafeMutableBufferPointer { hp in
                for plane in 0..<(b * o) {
                    let v = t.data[plane]
                    let row = hp.baseAddress! + plane * n
                    for i in 0..<n { row[i] += v }
                }
            }
        }
        h = try conv2(norm2(h, silu: true))
        let skip = try shortcut?(x) ?? x
        let scale = 1 / outputScale
        h.data.withUnsafeMutableBufferPointer { hp in
            skip.data.withUnsafeBufferPointer { sp in
                if scale == 1 { for i in 0..<hp.count { hp[i] += sp[i] } }
                else { for i in 0..<hp.count { hp[i] = (hp[i] + sp[i]) * scale } }
            }
        }
        return h
    }
}
