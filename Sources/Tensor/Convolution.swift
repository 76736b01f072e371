/// Convolutions lowered to sgemm.

/// The ViT patch embedding: `Conv2d(C, D, kernel = p, stride = p)` over `[B, C, H, W]` images,
/// returned as `[B, (H/p)·(W/p), D]` tokens in row-major patch order (PyTorch's
/// `conv(x).flatten(2).transpose(1, 2)`).
///
/// Non-overlapping patches make im2col a pure gather: each patch becomes one row of
/// `C·p·p` values in `(c, y, x)` order — exactly the layout of the `[D, C, p, p]` weight —
/// so the whole convolution is a single `[B·N, C·p·p] × [C·p·p, D]` product.
public func patchEmbedding(_ images: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    guard images.rank == 4 else { throw TensorError("patchEmbedding: images must be [B, C, H, W], got \(images.shape)") }
    guard weight.rank == 4 else { throw TensorError("patchEmbedding: weight must be [D, C, p, p], got \(weight.shape)") }
    let (b, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
    let (d, wc, p, p2) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    guard wc == c, p == p2, p > 0 else {
        throw TensorError("patchEmbedding: weight \(weight.shape) does not fit \(c)-channel images with square patches")
    }
    guard h % p == 0, w % p == 0 else {
        throw TensorError("patchEmbedding: image \(h)×\(w) is not a multiple of patch size \(p)")
    }
    let gh = h / p, gw = w / p, n = gh * gw, k = c * p * p
    var cols = [Float](repeating: 0, count: b * n * k)
    images.data.withUnsafeBufferPointer { src in
        cols.withUnsafeMutableBufferPointer { dst in
            guard let s = src.baseAddress, let o = dst.baseAddress else { return }
            for bi in 0..<b {
                for py in 0..<gh {
                    for px in 0..<gw {
                        var row = o + ((bi * n) + py * gw + px) * k
                        for ci in 0..<c {
                            for y in 0..<p {
                                let from = s + ((bi * c + ci) * h + py * p + y) * w + px * p
                                row.update(from: from, count: p)
                                row += p
                            }
                        }
                    }
                }
            }
        }
    }
    let patches = Tensor(uncheckedShape: [b * n, k], data: cols)
    let flatWeight = try weight.reshaped([d, k])
    let out = try linear(patches, weight: flatWeight, bias: bias)
    return Tensor(uncheckedShape: [b, n, d], data: out.data)
}
