import CVectorMath

/// The transforms of Winograd F(4×4, 3×3) (Lavin & Gray 2015, interpolation points 0, ±1, ±2, ∞), run by
/// `winogradConvolve` (Winograd.swift) with `tile: .f4x4`: each 4×4 block of outputs comes from a 6×6
/// block of padded input as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, the element-wise product summed over
/// input channels as 36 matrix products `M_ξ = U_ξ · V_ξ`, ξ = 6·row + column of the 6×6 block.
///
///     Bᵀ = [4  0 −5  0  1  0]     G = [ 1/4     0     0 ]     Aᵀ = [1  1  1  1  1  0]
///          [0 −4 −4  1  1  0]         [−1/6  −1/6  −1/6 ]          [0  1 −1  2 −2  0]
///          [0  4 −4 −1  1  0]         [−1/6   1/6  −1/6 ]          [0  1  1  4  4  0]
///          [0 −2 −1  2  1  0]         [1/24  1/12   1/6 ]          [0  1 −1  8 −8  1]
///          [0  2 −1 −2  1  0]         [1/24 −1/12   1/6 ]
///          [0  4  0 −5  0  1]         [  0     0     1  ]
///
/// Unlike F(2×2)'s 0/±1/½ matrices these scale values by up to 8 (and the kernel by 1/24) before they are
/// summed, so rounding grows with the magnitudes: `WinogradTests` states the tolerance.

/// Writes `V_ξ = (Bᵀ d B)_ξ` for tiles `firstTile ..< firstTile + tiles` as 36 matrices `[C, tiles]`
/// (`v + (ξ·C + channel)·tiles + tile`), zeros where a block overhangs the padding or a partial tile.
/// Channels are independent and transformed in parallel.
func winograd4x4InputTransform(_ x: UnsafePointer<Float>, channels c: Int, layout: TileLayout, firstTile: Int, tiles: Int,
                               into v: UnsafeMutablePointer<Float>) {
    let (h, w) = (layout.height, layout.width)
    // Six padded input lines for one run of tiles: 4·columns + 2 values each.
    let lineLength = 4 * layout.across + 2
    func transform(channels range: Range<Int>) {
        let lines = UnsafeMutablePointer<Float>.allocate(capacity: 6 * lineLength)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_input_scratch(4, layout.across))
        defer { lines.deallocate(); scratch.deallocate() }
        for ci in range {
            layout.forEachRun(first: firstTile, count: tiles) { image, row, column, n, offset in
                layout.fillLines(x + (image * c + ci) * h * w, row: row, column: column, count: n,
                                 into: lines, lineLength: lineLength)
                storyloom_winograd_input_run(4, lines, lineLength, 4 * column, n, scratch, v + ci * tiles + offset, c * tiles)
            }
        }
    }
    forEachRange(c, values: 36 * c * tiles) { transform(channels: $0) }
}

/// Writes `U_ξ = (G g Gᵀ)_ξ` for output channels `rows` as 36 matrices `[rows.count, C]`
/// (`u + (ξ·rows.count + row)·C + channel`). A half-precision kernel is widened one output channel
/// at a time (exact), so the transform is of the stored values.
func winograd4x4KernelTransform(_ weight: Weight, rows: Range<Int>, into u: UnsafeMutablePointer<Float>) {
    winogradKernelRows(weight, rows: rows, tile: .f4x4, into: u)
}

/// `Y = Aᵀ M A` plus bias for output channels `rows` and tiles `firstTile ..< firstTile + tiles`, from the
/// products `m + (ξ·rows.count + row)·tiles + tile`, into `[B, O, Ho, Wo]` (a partial tile writes only its
/// outputs inside the image). Output channels are independent and transformed in parallel.
func winograd4x4OutputTransform(_ m: UnsafePointer<Float>, outputChannels o: Int, rows: Range<Int>, layout: TileLayout,
                                firstTile: Int, tiles: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
    let (ho, wo) = (layout.outHeight, layout.outWidth)
    let n = rows.count, step = n * tiles   // from M_ξ to M_ξ+1
    func transform(_ range: Range<Int>) {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_output_scratch(4, layout.across))
        defer { scratch.deallocate() }
        for r in range {
            let oc = rows.lowerBound + r
            let beta = bias?[oc] ?? 0
            layout.forEachRun(first: firstTile, count: tiles) { image, row, column, count, offset in
                let oy = 4 * row, ox = 4 * column
                storyloom_winograd_output_run(4, m + r * tiles + offset, step, count, beta, min(4, ho - oy), min(4 * count, wo - ox),
                                              scratch, out + ((image * o + oc) * ho + oy) * wo + ox, wo)
            }
        }
    }
    forEachRange(n, values: 36 * n * tiles, transform)
}
