import COpenBLAS

/// 2-D convolution over `[B, C, H, W]` float32 tensors, lowered to sgemm.
///
/// Wide 3×3 stride-1 layers go through Winograd instead (`Winograd.swift`, chosen by `winogradTile`):
/// F(2×2, 3×3) makes 2.25× fewer multiplies for the same sum, F(4×4, 3×3) 4× fewer where there are
/// tiles enough.
///
/// A 1×1, stride-1 convolution is a plain `[O, C] × [C, H·W]` product per image. Any other
/// kernel goes through im2col: each image's patches are unfolded into one reusable
/// `[C·kh·kw, Ho·Wo]` buffer (rows filled in parallel), then one `[O, C·kh·kw] × [C·kh·kw, Ho·Wo]`
/// sgemm on OpenBLAS's threads writes the output channels directly in NCHW order. Small images
/// (under 4096 outputs) are instead unfolded several side by side into one product (`convolveGroups`).

/// Zero padding on each side of the spatial dimensions.
public struct Padding2D: Sendable, Equatable {
    public var top: Int, left: Int, bottom: Int, right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    /// The same padding on every side (PyTorch's `padding=p`).
    public static func uniform(_ p: Int) -> Padding2D { Padding2D(top: p, left: p, bottom: p, right: p) }
}

/// How `conv2d` computes a convolution.
public enum Conv2DAlgorithm: Sendable, CaseIterable {
    /// Winograd for 3×3 stride-1 kernels where it was measured to pay off (`winogradTile`), else im2col.
    case automatic
    /// im2col (or the plain product of a 1×1 kernel) and sgemm, always.
    case im2col
    /// Winograd F(2×2, 3×3) for every 3×3 stride-1 kernel; other kernels and strides fall back to im2col.
    case winograd
    /// Winograd F(4×4, 3×3) for every 3×3 stride-1 kernel; other kernels and strides fall back to im2col.
    case winograd4x4
}

/// `torch.nn.functional.conv2d(x, weight, bias, stride, padding)` for `[B, C, H, W]` input and
/// `[O, C, kh, kw]` weight (groups = 1, dilation = 1).
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1,
                   padding: Padding2D = .uniform(0), algorithm: Conv2DAlgorithm = .automatic) throws -> Tensor {
    try conv2d(x, weight: Weight(weight), bias: bias, stride: stride, padding: padding, algorithm: algorithm)
}

/// `conv2d` with a kernel in any storage: an f16/bf16 kernel is widened a band of output channels
/// at a time (`weightTimesMatrix`), never whole.
public func conv2d(_ x: Tensor, weight: Weight, bias: Tensor? = nil, stride: Int = 1,
                   padding: Padding2D = .uniform(0), algorithm: Conv2DAlgorithm = .automatic) throws -> Tensor {
    guard x.rank == 4 else { throw TensorError("conv2d: input must be [B, C, H, W], got \(x.shape)") }
    guard weight.rank == 4 else { throw TensorError("conv2d: weight must be [O, C, kh, kw], got \(weight.dtype.rawValue) \(weight.shape)") }
    let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, wc, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    guard wc == c else { throw TensorError("conv2d: weight \(weight.shape) expects \(wc) input channels, input has \(c)") }
    guard stride >= 1, padding.top >= 0, padding.left >= 0, padding.bottom >= 0, padding.right >= 0 else {
        throw TensorError("conv2d: stride must be ≥ 1 and padding ≥ 0")
    }
    if let bias, bias.count != o { throw TensorError("conv2d: bias \(bias.shape) does not match \(o) output channels") }
    let hp = h + padding.top + padding.bottom, wp = w + padding.left + padding.right
    guard hp >= kh, wp >= kw else { throw TensorError("conv2d: kernel \(kh)×\(kw) larger than padded input \(hp)×\(wp)") }
    let ho = (hp - kh) / stride + 1, wo = (wp - kw) / stride + 1
    let n = ho * wo, k = c * kh * kw
    // Every element is written: by Winograd's output transform, or bias then beta 1, or beta 0.
    var out = uninitializedFloats(b * o * n)
    if kh == 3 && kw == 3 && stride == 1 && n > 0 && o > 0 {
        let tiles = b * ((ho + 1) / 2) * ((wo + 1) / 2)
        let tile: WinogradTile? = switch algorithm {
        case .winograd: .f2x2
        case .winograd4x4: .f4x4
        case .im2col: nil
        case .automatic: winogradTile(channels: c, outputs: o, tiles: tiles)
        }
        if let tile {
            let biasValues = bias?.data ?? []
            x.data.withUnsafeBufferPointer { xp in
                biasValues.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        winogradConvolve(xp.baseAddress!, batch: b, channels: c, height: h, width: w, weight: weight,
                                         bias: bias == nil ? nil : bp.baseAddress, padding: padding,
                                         outHeight: ho, outWidth: wo, out: op.baseAddress!, tile: tile)
                    }
                }
            }
            return Tensor(uncheckedShape: [b, o, ho, wo], data: out)
        }
    }
    let direct = kh == 1 && kw == 1 && stride == 1 && padding == .uniform(0)
    // Small images (a batch of 16×16 or 32×32 latents) are unfolded side by side into one
    // `[C·kh·kw, g·Ho·Wo]` buffer: one product for g images instead of g small ones, which OpenBLAS
    // runs far below its peak. The product's rows are then scattered back to NCHW.
    let group = n < 4096 ? max(1, min(b, (1 << 22) / max(1, k * n))) : 1
    if group > 1 {
        x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                convolveGroups(xp.baseAddress!, batch: b, channels: c, height: h, width: w, weight: weight, bias: bias,
                               kh: kh, kw: kw, stride: stride, padding: padding, outHeight: ho, outWidth: wo,
                               group: group, out: op.baseAddress!)
            }
        }
        return Tensor(uncheckedShape: [b, o, ho, wo], data: out)
    }
    // im2col works on bands of output rows so the patch buffer stays near 16 MB (a 512×512 VAE
    // layer would otherwise unfold to over 1 GB) and each band's sgemm stays large.
    let bandRows = max(1, min(ho, (1 << 22) / max(1, k * wo)))
    var cols = uninitializedFloats(direct ? 0 : k * bandRows * wo)   // im2col writes every element
    var scratch: [Float] = []
    x.data.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBufferPointer { op in
            cols.withUnsafeMutableBufferPointer { cp in
                for bi in 0..<b {
                    let src = xp.baseAddress! + bi * c * h * w
                    let dst = op.baseAddress! + bi * o * n
                    if let bias {
                        bias.data.withUnsafeBufferPointer { bp in
                            for oc in 0..<o { (dst + oc * n).update(repeating: bp[oc], count: n) }
                        }
                    }
                    let beta: Float = bias == nil ? 0 : 1
                    if direct {
                        weightTimesMatrix(weight, b: src, n: n, ldb: n, beta: beta, c: dst, ldc: n, scratch: &scratch)
                        continue
                    }
                    var row0 = 0
                    while row0 < ho {
                        let rows = min(bandRows, ho - row0), cn = rows * wo
                        im2col(src, channels: c, height: h, width: w, kh: kh, kw: kw, stride: stride,
                               padding: padding, outWidth: wo, firstRow: row0, rows: rows, into: cp.baseAddress!)
                        weightTimesMatrix(weight, b: cp.baseAddress!, n: cn, ldb: cn, beta: beta, c: dst + row0 * wo,
                                          ldc: n, scratch: &scratch)
                        row0 += rows
                    }
                }
            }
        }
    }
    return Tensor(uncheckedShape: [b, o, ho, wo], data: out)
}

/// `conv2d` for `group` images per product: their patches side by side in one `[C·kh·kw, g·n]` buffer
/// (image j's columns at j·n; a 1×1 kernel copies its channels, anything else goes through im2col), one
/// `[O, C·kh·kw] × [C·kh·kw, g·n]` product, then each image's `[O, n]` block copied to its NCHW place.
private func convolveGroups(_ x: UnsafePointer<Float>, batch b: Int, channels c: Int, height h: Int, width w: Int,
                            weight: Weight, bias: Tensor?, kh: Int, kw: Int, stride: Int, padding: Padding2D,
                            outHeight ho: Int, outWidth wo: Int, group: Int, out: UnsafeMutablePointer<Float>) {
    let o = weight.rows, n = ho * wo, k = c * kh * kw
    let direct = kh == 1 && kw == 1 && stride == 1 && padding == .uniform(0)
    // Written whole before read: every column by the copy or im2col, every product row by bias or beta 0.
    var cols = uninitializedFloats(k * group * n)
    var product = uninitializedFloats(o * group * n)
    var scratch: [Float] = []
    cols.withUnsafeMutableBufferPointer { cp in
        product.withUnsafeMutableBufferPointer { pp in
            let cols = cp.baseAddress!, prod = pp.baseAddress!
            var first = 0
            while first < b {
                let g = min(group, b - first), ldb = g * n
                for j in 0..<g {
                    let src = x + (first + j) * c * h * w
                    if direct {
                        for ci in 0..<c { (cols + ci * ldb + j * n).update(from: src + ci * n, count: n) }
                    } else {
                        im2col(src, channels: c, height: h, width: w, kh: kh, kw: kw, stride: stride, padding: padding,
                               outWidth: wo, firstRow: 0, rows: ho, into: cols + j * n, rowStride: ldb)
                    }
                }
                if let bias {
                    bias.data.withUnsafeBufferPointer { bp in
                        for oc in 0..<o { (prod + oc * ldb).update(repeating: bp[oc], count: ldb) }
                    }
                }
                weightTimesMatrix(weight, b: cols, n: ldb, ldb: ldb, beta: bias == nil ? 0 : 1, c: prod, ldc: ldb,
                                  scratch: &scratch)
                for j in 0..<g {
                    let dst = out + (first + j) * o * n
                    for oc in 0..<o { (dst + oc * n).update(from: prod + oc * ldb + j * n, count: n) }
                }
                first += g
            }
        }
    }
}

/// Whether Winograd F(2×2, 3×3) beats im2col + sgemm for a 3×3 stride-1 layer with `channels` inputs,
/// `outputs` outputs and `tiles` 2×2 output tiles over the batch, as measured by `storyloom bench conv`
/// at 1 thread (Winograd time / im2col time): SD v1.5's UNet and VAE layers (192–1280 channels, ≥ 72
/// tiles) 0.55–0.8, 128 channels 0.96 at 2048 tiles and 0.8 at 16384; but narrow layers (the StoryWorld
/// UNet's 64–256 channels at 16×16 and below, 16–64 channels, a 4-channel `conv_in`) 1.1–5.6 and
/// 32 or fewer tiles (1280 channels at 8×8 latents) 1.4–1.9. The transforms cost a fixed amount per
/// element where the products cost 2·O (input side) or 2·C (output side), and the 16 products of a few
/// tiles are too thin for sgemm's peak. Since the transforms are vectorised C (2026-12-01), 64 channels pay
/// from 256 tiles: `bench conv` (2 threads, AVX-512 machine) StoryWorld's 64→64 at 16×16 batch 12 im2col
/// 5.4 ms against F(2×2) 1.8 ms; `bench sd --storyworld-only`, builds alternating, the quickstart's generation
/// per image (8 items, batch 16) 0.381 / 0.381 → 0.337 / 0.324 s.
func winogradPays(channels c: Int, outputs o: Int, tiles: Int) -> Bool {
    let width = min(c, o)
    return (tiles >= 64 && (width >= 192 || (width >= 128 && tiles >= 4096))) || (width >= 64 && tiles >= 256)
}

/// The Winograd tile `conv2d` takes for a 3×3 stride-1 layer (`tiles`: 2×2 output tiles over the batch),
/// or nil for im2col. F(4×4, 3×3), measured by `storyloom bench conv` at 1 thread (im2col time / its
/// time, against F(2×2)'s): 1.69 vs 1.58 on SD's 320→320 at 64×64 (2048 tiles), 1.83 vs 1.63 on
/// 960→320, 1.93 vs 1.52 on 640→640 at 32×32 (512), the VAE's 512 at 128×128 1.82 vs 1.53, 256 at
/// 256×256 2.44 vs 1.28, 128 at 256×256 1.71 vs 0.94; but with few tiles per product its 36 products are
/// too thin: 1.11 vs 1.51 on 1280 at 16×16 (128 tiles), 1.14 vs 1.37 on 320 at 32×32 (512), and equal
/// (1.0) on 128 at 64×64 (2048). One image (each thread's half of a batch-2 SD step), best of 3: 2.11 vs 1.68
/// on 960→320 at 64×64 (1024 tiles) and 1.78 vs 1.56 on 640→640 at 32×32 (256), where 320→320 at 64×64
/// keeps F(2×2) (1.68 vs 1.86) and 1920→640 at 32×32 gains nothing (1.39 vs 1.41: with that many input
/// channels a band of the transformed input holds few tiles, so its products are thin).
func winogradTile(channels c: Int, outputs o: Int, tiles: Int) -> WinogradTile? {
    let width = min(c, o)
    if (width >= 192 && tiles >= 2048) || (width >= 128 && tiles >= 8192) || (width >= 512 && tiles >= 512)
        || (c >= 512 && c <= 1024 && o >= 192 && tiles >= 256) {
        return .f4x4
    }
    return winogradPays(channels: c, outputs: o, tiles: tiles) ? .f2x2 : nil
}

/// Unfolds output rows `firstRow ..< firstRow + rows` of one `[C, H, W]` image into
/// `[C·kh·kw, rows·Wo]` (row `(c·kh + ky)·kw + kx`), zeros where the kernel overhangs the
/// padding. Row r starts at `cols + r · rowStride` (default: packed, `rows · Wo`). Rows are independent
/// and filled in parallel.
func im2col(_ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, kh: Int, kw: Int, stride: Int,
            padding: Padding2D, outWidth wo: Int, firstRow: Int, rows bandRows: Int, into cols: UnsafeMutablePointer<Float>,
            rowStride: Int? = nil) {
    let shared = SharedPointers(src: src, dst: cols)
    let rows = c * kh * kw
    let ld = rowStride ?? bandRows * wo
    // Stride 1 with "same" width (wo == w): output line oy of row (c, ky, kx) is the input plane shifted
    // by a constant offset, so the band is one copy of the plane, then the columns and rows the kernel
    // overhangs are zeroed. A 16×16 latent would otherwise cost 16 tiny copies per row.
    let shiftable = stride == 1 && wo == w
    func unfold(_ r: Int) {
        let ci = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw
        let plane = shared.src + ci * h * w
        let row = shared.dst + r * ld
        if shiftable {
            // Valid output rows: 0 ≤ oy − top + ky < h; valid columns: 0 ≤ ox − left + kx < w.
            let first = min(bandRows, max(0, padding.top - ky - firstRow))
            let end = max(first, min(bandRows, h + padding.top - ky - firstRow))
            let lo = min(wo, max(0, padding.left - kx)), hi = max(lo, min(wo, w + padding.left - kx))
            if first > 0 { row.update(repeating: 0, count: first * wo) }
            if end < bandRows { (row + end * wo).update(repeating: 0, count: (bandRows - end) * wo) }
            guard end > first, hi > lo else {
                (row + first * wo).update(repeating: 0, count: (end - first) * wo)
                return
            }
            // Copy only elements whose source lies in the plane: from the first line's `lo` to the last line's `hi`.
            let delta = (padding.top - ky) * w + (padding.left - kx)   // output index − input index (wo == w)
            let start = (firstRow + first) * wo + lo, stop = (firstRow + end - 1) * wo + hi
            (row + start - firstRow * wo).update(from: plane + (start - delta), count: stop - start)
            // Column by column down the lines: a loop along a line would become a memset call per line.
            func zeroColumn(_ ox: Int) {
                var p = row + first * wo + ox
                for _ in first..<end { p.pointee = 0; p += wo }
            }
            for ox in 0..<lo { zeroColumn(ox) }
            for ox in hi..<wo { zeroColumn(ox) }
            return
        }
        for band in 0..<bandRows {
            let oy = firstRow + band
            let iy = oy * stride - padding.top + ky
            let line = row + band * wo
            guard iy >= 0 && iy < h else { line.update(repeating: 0, count: wo); continue }
            let input = plane + iy * w
            if stride == 1 {
                // Valid ox: 0 ≤ ox − left + kx < w.
                let lo = min(wo, max(0, padding.left - kx)), hi = min(wo, w + padding.left - kx)
                if lo > 0 { line.update(repeating: 0, count: lo) }
                if hi > lo { (line + lo).update(from: input + (lo - padding.left + kx), count: hi - lo) }
                if hi < wo { (line + max(hi, 0)).update(repeating: 0, count: wo - max(hi, 0)) }
            } else {
                for ox in 0..<wo {
                    let ix = ox * stride - padding.left + kx
                    line[ox] = ix >= 0 && ix < w ? input[ix] : 0
                }
            }
        }
    }
    // A small unfold (one 16×16 latent) is not worth a thread hand-off.
    if rows * bandRows * wo < 32_768 {
        for r in 0..<rows { unfold(r) }
    } else {
        Threads.parallelFor(rows, unfold)
    }
}

/// Nearest-neighbour resize of `[B, C, H, W]` to `outHeight × outWidth`
/// (`F.interpolate(mode="nearest")`: source index `floor(dst · in / out)`).
public func upsampleNearest(_ x: Tensor, outHeight: Int, outWidth: Int) throws -> Tensor {
    guard x.rank == 4 else { throw TensorError("upsampleNearest: input must be [B, C, H, W], got \(x.shape)") }
    let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    var out = [Float](repeating: 0, count: b * c * outHeight * outWidth)
    let xs = (0..<outWidth).map { min(Int(Float(w) / Float(outWidth) * Float($0)), w - 1) }
    let ys = (0..<outHeight).map { min(Int(Float(h) / Float(outHeight) * Float($0)), h - 1) }
    x.data.withUnsafeBufferPointer { s in
        out.withUnsafeMutableBufferPointer { o in
            for plane in 0..<(b * c) {
                let src = s.baseAddress! + plane * h * w
                let dst = o.baseAddress! + plane * outHeight * outWidth
                for oy in 0..<outHeight {
                    let line = src + ys[oy] * w, target = dst + oy * outWidth
                    for ox in 0..<outWidth { target[ox] = line[xs[ox]] }
                }
            }
        }
    }
    return Tensor(uncheckedShape: [b, c, outHeight, outWidth], data: out)
}
