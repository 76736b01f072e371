import CVectorMath

/// Group normalisation over `[B, C, H, W]` (`torch.nn.GroupNorm`), optionally followed by SiLU,
/// which every ResNet block of a diffusion UNet / VAE applies right after the norm.
///
/// Each (image, group) is a contiguous run of `C/G · H · W` values: statistics are two passes
/// (mean, then centred squares) with double accumulators (`storyloom_mean_and_squares`), the affine +
/// activation one more pass.
/// Groups run in parallel.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, eps: Float, silu: Bool = false) throws -> Tensor {
    guard x.rank >= 2 else { throw TensorError("groupNorm: input must be [B, C, ...], got \(x.shape)") }
    let b = x.shape[0], c = x.shape[1]
    guard groups > 0, c % groups == 0 else { throw TensorError("groupNorm: \(c) channels do not split into \(groups) groups") }
    guard weight.count == c, bias.count == c else {
        throw TensorError("groupNorm: weight \(weight.shape) / bias \(bias.shape) do not match \(c) channels")
    }
    let spatial = x.count / max(b * c, 1)
    let perGroup = c / groups
    let run = perGroup * spatial
    var out = x
    out.data.withUnsafeMutableBufferPointer { op in
        weight.data.withUnsafeBufferPointer { wp in
            bias.data.withUnsafeBufferPointer { bp in
                let p = GroupNormPointers(data: op.baseAddress!, weight: wp.baseAddress!, bias: bp.baseAddress!)
                Threads.parallelFor(b * groups) { item in
                    let g = item % groups
                    let base = p.data + item * run
                    var mean: Float = 0, sq: Double = 0
                    storyloom_mean_and_squares(base, run, &mean, &sq)
                    let rstd = 1 / (Float(sq / Double(run)) + eps).squareRoot()
                    for ch in 0..<perGroup {
                        let channel = g * perGroup + ch
                        let scale = rstd * p.weight[channel]
                        let shift = p.bias[channel] - mean * scale
                        let row = base + ch * spatial
                        if silu {
                            storyloom_affine_silu(row, spatial, scale, shift)
                        } else {
                            for i in 0..<spatial { row[i] = row[i] * scale + shift }
                        }
                    }
                }
            }
        }
    }
    return out
}

private struct GroupNormPointers: @unchecked Sendable {
    let data: UnsafeMutablePointer<Float>
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>
}
