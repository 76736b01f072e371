import COpenBLAS
import Foundation
import CVectorMath

/// Winograd F(2×2, 3×3) convolution for 3×3, stride-1 kernels (Lavin & Gray 2015, "Fast Algorithms
/// for Convolutional Neural Networks", with their names for the transforms).
///
/// Each 2×2 block of outputs ("tile") is computed from a 4×4 block of padded input `d` as
/// `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, summed over input channels: 16 multiplies per tile and channel
/// pair where the direct (im2col) product spends 36, so the sgemm arithmetic shrinks 2.25×.
/// Summed over channels, the element-wise product becomes 16 matrix products, one per position ξ
/// of the 4×4 transformed tile: `M_ξ [O, tiles] = U_ξ [O, C] · V_ξ [C, tiles]`, with
/// `U = G g Gᵀ` (kernel transform) and `V = Bᵀ d B` (input transform). The output transform
/// `Aᵀ M A` then writes each tile's 2×2 outputs (plus bias) into NCHW.
///
/// F(2,3)'s matrices hold only 0, ±1 and ½, so the transforms add no rounding beyond float32
/// additions; the measured error against im2col is stated in `WinogradTests`.
///
/// Memory: the transformed kernel is 16/9 of the kernel in float32; it is computed per call (a
/// band of output channels at a time), never cached, so a half-precision SD v1.5 UNet does not
/// grow by its 3×3 kernels' 16/9 × 4 bytes. The transformed input and the products are processed
/// in bands of tiles, each buffer at most `winogradBandFloats`.
///
/// Tiles of all images of a batch lie side by side in one product (as `convolveGroups` does for
/// im2col), so a batch of small latents makes one set of 16 products, not one per image.
///
/// F(4×4, 3×3) (interpolation points 0, ±1, ±2, ∞) runs through the same driver with 6×6 input blocks and
/// 36 products: 36 multiplies per 16 outputs against F(2×2)'s 16 per 4, a further 1.78× fewer, at the
/// price of transforms with larger coefficients (so larger rounding) and 4× fewer, thinner products.
///
/// The transforms themselves are C (`CVectorMath/winograd_transforms.c`: vector loops over a run of tiles);
/// this file drives them and the products.

/// The two tile sizes: F(m×m, 3×3) reads (m+2)×(m+2) input blocks and makes (m+2)² products.
enum WinogradTile: Sendable {
    case f2x2, f4x4
    /// Outputs per tile side (m).
    var outputs: Int { self == .f2x2 ? 2 : 4 }
    /// Input block side (m + 2).
    var inputs: Int { outputs + 2 }
    /// Products per set: one per position ξ of the transformed block.
    var positions: Int { inputs * inputs }
}

/// Floats per Winograd buffer (transformed input, transformed kernel band, products): 16 MB,
/// the size of im2col's bands.
let winogradBandFloats = 1 << 22

// Bᵀ (input), G (kernel) and Aᵀ (output) for F(2×2, 3×3):
//   Bᵀ = [1  0 −1  0]     G = [1    0    0 ]     Aᵀ = [1  1  1  0]
//        [0  1  1  0]         [½    ½    ½ ]          [0  1 −1 −1]
//        [0 −1  1  0]         [½   −½    ½ ]
//        [0  1  0 −1]         [0    0    1 ]
// and for F(4×4, 3×3), whose coefficients scale values by up to 8 (and the kernel by 1/24) before they are
// summed, so rounding grows with the magnitudes (`WinogradTests` states both tolerances):
//   Bᵀ = [4  0 −5  0  1  0]     G = [ 1/4     0     0 ]     Aᵀ = [1  1  1  1  1  0]
//        [0 −4 −4  1  1  0]         [−1/6  −1/6  −1/6 ]          [0  1 −1  2 −2  0]
//        [0  4 −4 −1  1  0]         [−1/6   1/6  −1/6 ]          [0  1  1  4  4  0]
//        [0 −2 −1  2  1  0]         [1/24  1/12   1/6 ]          [0  1 −1  8 −8  1]
//        [0  2 −1 −2  1  0]         [1/24 −1/12   1/6 ]
//        [0  4  0 −5  0  1]         [  0     0     1  ]
// The C transforms apply them written out.

/// `conv2d` of `[B, C, H, W]` input with a `[O, C, 3, 3]` kernel at stride 1 by Winograd F(2×2, 3×3)
/// or F(4×4, 3×3) (`tile`): `out` (`[B, O, Ho, Wo]`, `Ho = H + top + bottom − 2`) is overwritten. `bandFloats` bounds each
/// buffer (tests shrink it to cover several bands on small inputs).
func winogradConvolve(_ x: UnsafePointer<Float>, batch b: Int, channels c: Int, height h: Int, width w: Int,
                      weight: Weight, bias: UnsafePointer<Float>?, padding: Padding2D,
                      outHeight ho: Int, outWidth wo: Int, out: UnsafeMutablePointer<Float>,
                      tile: WinogradTile = .f2x2, bandFloats: Int = winogradBandFloats) {
    precondition(weight.rank == 4 && weight.shape[1] == c && weight.shape[2] == 3 && weight.shape[3] == 3,
                 "winogradConvolve needs a [O, \(c), 3, 3] kernel, got \(weight.shape)")
    let o = weight.rows
    guard o > 0, ho > 0, wo > 0 else { return }
    let layout = TileLayout(tile: tile, batch: b, height: h, width: w, padding: padding, outHeight: ho, outWidth: wo)
    let positions = tile.positions
    if c == 0 {
        for plane in 0..<(b * o) {
            (out + plane * ho * wo).update(repeating: bias?[plane % o] ?? 0, count: ho * wo)
        }
        return
    }
    // Tile band: the transformed input [P, C, tiles] within budget (P positions). Output-channel band:
    // the transformed kernel [P, O_band, C] and the products [P, O_band, tiles] within budget.
    let tileBand = max(1, min(layout.total, bandFloats / (positions * c)))
    let channelBand = max(1, min(o, bandFloats / (positions * max(tileBand, c))))
    let v = UnsafeMutablePointer<Float>.allocate(capacity: positions * c * tileBand)
    let u = UnsafeMutablePointer<Float>.allocate(capacity: positions * channelBand * c)
    let m = UnsafeMutablePointer<Float>.allocate(capacity: positions * channelBand * tileBand)
    defer { v.deallocate(); u.deallocate(); m.deallocate() }
    let ownKernel = winogradProductsEnabled && storyloom_winograd_products_available() != 0
    var firstTile = 0
    while firstTile < layout.total {
        let tiles = min(tileBand, layout.total - firstTile)
        // The products without OpenBLAS's packing where the CPU has AVX-512 or AVX2 + FMA (`winograd_products.h`) and
        // they pay (`WinogradProducts.pay`). AVX-512:
        // `bench conv`, the same binary both ways, best of 2: SD's layers from 128 channels 5–45% faster (VAE
        // 256@256² F(2×2) 292 → 223 ms, UNet 1920→640 at 32×32 one image 119 → 86 ms; 320@64×64 one image even);
        // fewer than 32 tiles fill a fraction of its 32-column block. `bench sd --quick` alternating, two runs
        // each: UNet 64×64 7.60 / 7.80 → 7.34 / 7.26 s, 32×32 2.21 / 2.02 → 2.09 / 1.87 s, VAE 9.08 / 8.11 → 7.66 / 7.77 s.
        let ownProducts = ownKernel && WinogradProducts.pay(channels: c, tiles: tiles)
        winogradInputTransform(x, channels: c, layout: layout, firstTile: firstTile, tiles: tiles, into: v)
        var o0 = 0
        while o0 < o {
            let rows = min(channelBand, o - o0)
            // With every output channel in one band the kernel is transformed once per call.
            if channelBand < o || firstTile == 0 {
                winogradKernelTransform(weight, rows: o0..<(o0 + rows), tile: tile, into: u)
            }
            if ownProducts {
                // Each product wholly on one worker (so its result does not depend on the thread count).
                Threads.parallelFor(positions) { xi in
                    storyloom_winograd_product(rows, tiles, c, u + xi * rows * c, v + xi * c * tiles, m + xi * rows * tiles)
                }
            } else {
                for xi in 0..<positions {
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(tiles), Int32(c), 1,
                               u + xi * rows * c, Int32(c), v + xi * c * tiles, Int32(tiles), 0,
                               m + xi * rows * tiles, Int32(tiles))
                }
            }
            winogradOutputTransform(m, outputChannels: o, rows: o0..<(o0 + rows), layout: layout, firstTile: firstTile,
                                    tiles: tiles, bias: bias, into: out)
            o0 += rows
        }
        firstTile += tiles
    }
}

/// Where Storyloom's kernels run a convolution's products instead of OpenBLAS (see `winogradConvolve`).
enum WinogradProducts {
    static let avx512 = storyloom_winograd_products_available() == 2

    /// AVX-512 beside OpenBLAS's own AVX-512 kernels: from 128 channels and 32 tiles (fewer tiles fill a fraction of its
    /// 32-column block).
    /// AVX2 (16-column block), beside OpenBLAS 0.3.21's Zen kernels on one core of an AMD EPYC without AVX-512
    /// (C harness, the same product both ways alternating, best of 9, two or three runs; rows × tiles × channels):
    /// up to 256 channels at any tile count, where OpenBLAS's packing weighs most: 32 × 768 × 32 1.35×,
    /// 64 × 256–1,024 × 64 1.01–1.24×, 64 × 768 × 128–192 1.09–1.13×, 128 × 192–1,024 × 128 1.07–1.18×,
    /// 256 × 512 × 256 1.07–1.09×; deeper, only at 16–128 tiles: 1,280 deep 8 tiles 0.96–1.01×, 16 1.34–1.60×,
    /// 32 1.22–1.26×, 64 1.08–1.18×, 128 0.96–1.07×; 320–640 deep at 512–2,048 tiles 0.84–1.03× (OpenBLAS near the
    /// core's peak there, and our panel packing is not free).
    ///
    /// AVX-512 where OpenBLAS runs AVX2 kernels (`openBLASRunsAVX2`: it does not know Zen 5, or
    /// `OPENBLAS_CORETYPE=Haswell` is set) from 16 tiles at any channel count: C harness, one core of an AMD EPYC
    /// (Zen 5) beside OpenBLAS's Haswell kernels, two runs (rows × channels × tiles): 64 × 64 × 64–2,048 1.8–2.1×,
    /// 32 × 32 × 64 2.2–2.3×, 16 × 16 × 1,024 1.4–1.7×, 8 × 8 × 1,024 2.0×, 32 × 32 × 16 1.5×, 64 × 64 × 16 1.3×; at 8
    /// tiles 0.87×. The 128-channel, 32-tile rule above stands where OpenBLAS runs its own AVX-512 kernels.
    static func pay(channels: Int, tiles: Int) -> Bool {
        if avx512 { return openBLASRunsAVX2 ? tiles >= 16 : (channels >= 128 && tiles >= 32) }
        return channels >= 32 && tiles >= 16 && (channels <= 256 || tiles <= 128)
    }

    /// The CPU has AVX-512F and OpenBLAS's chosen kernels do not use it (as for `LinearProducts.gemmEnabled`).
    static let openBLASRunsAVX2 = !LinearProducts.openBLASAVX512Cores.contains(BLASKernels.coreName.lowercased())

    static var description: String {
        avx512 ? (openBLASRunsAVX2 ? "AVX-512 kernel from 16 tiles (OpenBLAS runs \(BLASKernels.coreName) kernels)"
                  : "AVX-512 kernel from 128 channels and 32 tiles")
            : "AVX2 kernel from 32 channels and 16 tiles (above 256 channels up to 128 tiles)"
    }
}

/// Whether Winograd products may skip OpenBLAS (`STORYLOOM_WINOGRAD_PRODUCTS=openblas` keeps OpenBLAS, to compare).
let winogradProductsEnabled = ProcessInfo.processInfo.environment["STORYLOOM_WINOGRAD_PRODUCTS"] != "openblas"

/// What runs the Winograd products here, for `doctor` and the benchmarks' notes.
public var winogradProductsDescription: String {
    if storyloom_winograd_products_available() == 0 {
        return "winograd products: OpenBLAS (no AVX-512F, no AVX2 + FMA on this CPU)"
    }
    return winogradProductsEnabled
        ? "winograd products: Storyloom's \(WinogradProducts.description), OpenBLAS elsewhere"
        : "winograd products: OpenBLAS (STORYLOOM_WINOGRAD_PRODUCTS=openblas)"
}

/// Runs `body` over `0..<count` in contiguous ranges, one per worker; a transform of fewer than 32,768
/// values is not worth a thread hand-off and runs on this thread.
func forEachRange(_ count: Int, values: Int, _ body: (Range<Int>) -> Void) {
    let workers = values < 32_768 ? 1 : min(Threads.count, count)
    if workers <= 1 { body(0..<count); return }
    Threads.parallelFor(workers) { i in body((count * i / workers)..<(count * (i + 1) / workers)) }
}

/// Where the tiles are: tile `t` of the batch is image `t / perImage`, tile row `(t % perImage) / across`,
/// tile column `t % across`; its (m+2)×(m+2) input block starts at padded row m·row, column m·column.
struct TileLayout {
    var tile: WinogradTile = .f2x2
    let batch: Int, height: Int, width: Int, padding: Padding2D, outHeight: Int, outWidth: Int
    /// Tiles down and across one image (a partial tile covers the last output rows or columns).
    var down: Int { (outHeight + tile.outputs - 1) / tile.outputs }
    var across: Int { (outWidth + tile.outputs - 1) / tile.outputs }
    var perImage: Int { down * across }
    var total: Int { batch * perImage }

    /// Calls `body(image, tileRow, firstColumn, columns, offset)` for each run of tiles
    /// `first ..< first + count` within one tile row; `offset` counts from `first`.
    func forEachRun(first: Int, count: Int, _ body: (Int, Int, Int, Int, Int) -> Void) {
        var t = first
        let end = first + count
        while t < end {
            let image = t / perImage, r = t % perImage
            let row = r / across, column = r % across
            let n = min(across - column, end - t)
            body(image, row, column, n, t - first)
            t += n
        }
    }

    /// Copies the m+2 padded input lines (zeros outside the image) that tiles `column ..< column + count` of
    /// tile row `row` read from one channel's `plane`: padded columns m·column ..< m·(column + count) + 2 of
    /// lines m·row …, each line `lineLength` floats from `lines`, indexed by padded column.
    func fillLines(_ plane: UnsafePointer<Float>, row: Int, column: Int, count n: Int,
                   into lines: UnsafeMutablePointer<Float>, lineLength: Int) {
        let m = tile.outputs
        let lo = m * column, hi = m * (column + n) + 2   // padded columns this run reads
        for k in 0..<tile.inputs {
            let line = lines + k * lineLength
            let iy = m * row + k - padding.top
            guard iy >= 0 && iy < height else { (line + lo).update(repeating: 0, count: hi - lo); continue }
            // Padded column p holds input column p − left.
            let a = min(hi, max(lo, padding.left)), z = max(a, min(hi, padding.left + width))
            if a > lo { (line + lo).update(repeating: 0, count: a - lo) }
            if z > a { (line + a).update(from: plane + iy * width + (a - padding.left), count: z - a) }
            if hi > z { (line + z).update(repeating: 0, count: hi - z) }
        }
    }
}

/// Writes `V_ξ = (Bᵀ d B)_ξ` for tiles `firstTile ..< firstTile + tiles` as (m+2)² matrices `[C, tiles]`
/// (`v + (ξ·C + channel)·tiles + tile`), zeros where a block overhangs the padding or a partial tile.
/// Channels are independent and transformed in parallel.
func winogradInputTransform(_ x: UnsafePointer<Float>, channels c: Int, layout: TileLayout, firstTile: Int, tiles: Int,
                            into v: UnsafeMutablePointer<Float>) {
    let (h, w, m) = (layout.height, layout.width, layout.tile.outputs)
    // m + 2 padded input lines (zeros outside the image) for one run of tiles: m·columns + 2 values each.
    let lineLength = m * layout.across + 2
    func transform(channels range: Range<Int>) {
        let lines = UnsafeMutablePointer<Float>.allocate(capacity: layout.tile.inputs * lineLength)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_input_scratch(m, layout.across))
        defer { lines.deallocate(); scratch.deallocate() }
        for ci in range {
            layout.forEachRun(first: firstTile, count: tiles) { image, row, column, n, offset in
                layout.fillLines(x + (image * c + ci) * h * w, row: row, column: column, count: n,
                                 into: lines, lineLength: lineLength)
                storyloom_winograd_input_run(m, lines, lineLength, m * column, n, scratch, v + ci * tiles + offset, c * tiles)
            }
        }
    }
    forEachRange(c, values: layout.tile.positions * c * tiles) { transform(channels: $0) }
}

/// Writes `U_ξ = (G g Gᵀ)_ξ` for output channels `rows` as (m+2)² matrices `[rows.count, C]`
/// (`u + (ξ·rows.count + row)·C + channel`). Each output channel's kernels are widened to float32 (exact for
/// f16/bf16, so the transform is of the stored values) and transformed over all input channels at once;
/// output channels are spread over workers.
func winogradKernelTransform(_ weight: Weight, rows: Range<Int>, tile: WinogradTile, into u: UnsafeMutablePointer<Float>) {
    let c = weight.shape[1], n = rows.count, m = tile.outputs
    forEachRange(n, values: tile.positions * n * c) { range in
        let g = UnsafeMutablePointer<Float>.allocate(capacity: 9 * c)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_kernel_scratch(m, c))
        defer { g.deallocate(); scratch.deallocate() }
        for r in range {
            weight.widenRows((rows.lowerBound + r)..<(rows.lowerBound + r + 1), into: g)
            storyloom_winograd_kernel_row(m, g, c, scratch, u + r * c, n * c)
        }
    }
}

/// `Y = Aᵀ M A` plus bias for output channels `rows` and tiles `firstTile ..< firstTile + tiles`, from the
/// products `m + (ξ·rows.count + row)·tiles + tile`, into `[B, O, Ho, Wo]` (a partial tile writes only its
/// outputs inside the image). Output channels are independent and transformed in parallel.
func winogradOutputTransform(_ m: UnsafePointer<Float>, outputChannels o: Int, rows: Range<Int>, layout: TileLayout,
                             firstTile: Int, tiles: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
    let (ho, wo, side) = (layout.outHeight, layout.outWidth, layout.tile.outputs)
    let n = rows.count, step = n * tiles   // from M_ξ to M_ξ+1
    func transform(_ range: Range<Int>) {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_output_scratch(side, layout.across))
        defer { scratch.deallocate() }
        for r in range {
            let oc = rows.lowerBound + r
            let beta = bias?[oc] ?? 0
            layout.forEachRun(first: firstTile, count: tiles) { image, row, column, count, offset in
                let oy = side * row, ox = side * column
                storyloom_winograd_output_run(side, m + r * tiles + offset, step, count, beta, min(side, ho - oy),
                                              min(side * count, wo - ox), scratch, out + ((image * o + oc) * ho + oy) * wo + ox, wo)
            }
        }
    }
    forEachRange(n, values: layout.tile.positions * n * tiles, transform)
}
