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

/// The rows of Bᵀ applied to six values (a column of a block, or a row of Bᵀ d).
@inline(__always)
private func inputCombinations(_ d0: SIMD8<Float>, _ d1: SIMD8<Float>, _ d2: SIMD8<Float>, _ d3: SIMD8<Float>,
                               _ d4: SIMD8<Float>, _ d5: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>,
                                                                           SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    let r0 = 4 * d0 - 5 * d2 + d4
    let r1 = d3 + d4 - 4 * (d1 + d2)
    let r2 = d4 - d3 + 4 * (d1 - d2)
    let r3 = d4 - d2 + 2 * (d3 - d1)
    let r4 = d4 - d2 + 2 * (d1 - d3)
    let r5 = 4 * d1 - 5 * d3 + d5
    return (r0, r1, r2, r3, r4, r5)
}

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
        defer { lines.deallocate() }
        for ci in range {
            layout.forEachRun(first: firstTile, count: tiles) { image, row, column, n, offset in
                layout.fillLines(x + (image * c + ci) * h * w, row: row, column: column, count: n,
                                 into: lines, lineLength: lineLength)
                let dst = v + ci * tiles + offset
                let step = c * tiles   // from V_ξ to V_ξ+1
                for j in 0..<n {
                    let p = 4 * (column + j)
                    @inline(__always) func line(_ k: Int) -> SIMD8<Float> {
                        let l = lines + k * lineLength + p
                        return SIMD8(l[0], l[1], l[2], l[3], l[4], l[5], 0, 0)
                    }
                    // Bᵀ d: combinations of the block's rows (each over its 6 columns) …
                    let t = inputCombinations(line(0), line(1), line(2), line(3), line(4), line(5))
                    // … then (Bᵀ d) B: the same combinations of each row's columns; row i gives V_6i … V_6i+5.
                    @inline(__always) func store(_ r: SIMD8<Float>, _ i: Int) {
                        let base = dst + 6 * i * step + j
                        base[0] = 4 * r[0] - 5 * r[2] + r[4]
                        base[step] = r[3] + r[4] - 4 * (r[1] + r[2])
                        base[2 * step] = r[4] - r[3] + 4 * (r[1] - r[2])
                        base[3 * step] = r[4] - r[2] + 2 * (r[3] - r[1])
                        base[4 * step] = r[4] - r[2] + 2 * (r[1] - r[3])
                        base[5 * step] = 4 * r[1] - 5 * r[3] + r[5]
                    }
                    store(t.0, 0); store(t.1, 1); store(t.2, 2); store(t.3, 3); store(t.4, 4); store(t.5, 5)
                }
            }
        }
    }
    forEachRange(c, values: 36 * c * tiles) { transform(channels: $0) }
}

/// Writes `U_ξ = (G g Gᵀ)_ξ` for output channels `rows` as 36 matrices `[rows.count, C]`
/// (`u + (ξ·rows.count + row)·C + channel`). A half-precision kernel is widened one output channel
/// at a time (exact), so the transform is of the stored values.
func winograd4x4KernelTransform(_ weight: Weight, rows: Range<Int>, into u: UnsafeMutablePointer<Float>) {
    let c = weight.shape[1], n = rows.count
    forEachKernel(weight, rows: rows, positions: 36) { r, ci, lanes, g0, g1, g2 in
        // G g: its six rows, each over the kernel's three columns; (G g) Gᵀ: the same on each row's
        // columns; row i gives U_6i … U_6i+5.
        @inline(__always) func store(_ t: KernelRow, _ i: Int) {
            let base = u + (6 * i * n + r) * c + ci
            let nc = n * c
            (t.c0 / 4).store(to: base, lanes: lanes)
            (-(t.c0 + t.c1 + t.c2) / 6).store(to: base + nc, lanes: lanes)
            (-(t.c0 - t.c1 + t.c2) / 6).store(to: base + 2 * nc, lanes: lanes)
            (t.c0 / 24 + t.c1 / 12 + t.c2 / 6).store(to: base + 3 * nc, lanes: lanes)
            (t.c0 / 24 - t.c1 / 12 + t.c2 / 6).store(to: base + 4 * nc, lanes: lanes)
            t.c2.store(to: base + 5 * nc, lanes: lanes)
        }
        store(g0 / 4, 0)
        store(-(g0 + g1 + g2) / 6, 1)
        store(-(g0 - g1 + g2) / 6, 2)
        store(g0 / 24 + g1 / 12 + g2 / 6, 3)
        store(g0 / 24 - g1 / 12 + g2 / 6, 4)
        store(g2, 5)
    }
}

/// `Y = Aᵀ M A` plus bias for output channels `rows` and tiles `firstTile ..< firstTile + tiles`, from the
/// products `m + (ξ·rows.count + row)·tiles + tile`, into `[B, O, Ho, Wo]` (a partial tile writes only its
/// outputs inside the image). Output channels are independent and transformed in parallel.
func winograd4x4OutputTransform(_ m: UnsafePointer<Float>, outputChannels o: Int, rows: Range<Int>, layout: TileLayout,
                                firstTile: Int, tiles: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
    let (ho, wo) = (layout.outHeight, layout.outWidth)
    let n = rows.count, step = n * tiles   // from M_ξ to M_ξ+1
    func transform(_ range: Range<Int>) {
        for r in range {
            let oc = rows.lowerBound + r
            let beta = bias?[oc] ?? 0
            let src = m + r * tiles
            layout.forEachRun(first: firstTile, count: tiles) { image, row, column, count, offset in
                let plane = out + (image * o + oc) * ho * wo
                let oy = 4 * row
                let outRows = min(4, ho - oy)
                for j in 0..<count {
                    let s = src + offset + j
                    @inline(__always) func load(_ i: Int) -> SIMD8<Float> {
                        let b = s + 6 * i * step
                        return SIMD8(b[0], b[step], b[2 * step], b[3 * step], b[4 * step], b[5 * step], 0, 0)
                    }
                    let m0 = load(0), m1 = load(1), m2 = load(2), m3 = load(3), m4 = load(4), m5 = load(5)
                    // Aᵀ M: four rows, each over the block's 6 columns; then (Aᵀ M) A on each row's columns.
                    let ox = 4 * (column + j)
                    let outColumns = min(4, wo - ox)
                    @inline(__always) func write(_ t: SIMD8<Float>, _ i: Int) {
                        let y = SIMD4(t[0] + t[1] + t[2] + t[3] + t[4], t[1] - t[2] + 2 * (t[3] - t[4]),
                                      t[1] + t[2] + 4 * (t[3] + t[4]), t[1] - t[2] + 8 * (t[3] - t[4]) + t[5]) + beta
                        let line = plane + (oy + i) * wo + ox
                        if outColumns == 4 {
                            line[0] = y[0]; line[1] = y[1]; line[2] = y[2]; line[3] = y[3]
                        } else {
                            for k in 0..<outColumns { line[k] = y[k] }
                        }
                    }
                    write(m0 + m1 + m2 + m3 + m4, 0)
                    if outRows > 1 { write(m1 - m2 + 2 * (m3 - m4), 1) }
                    if outRows > 2 { write(m1 + m2 + 4 * (m3 + m4), 2) }
                    if outRows > 3 { write(m1 - m2 + 8 * (m3 - m4) + m5, 3) }
                }
            }
        }
    }
    forEachRange(n, values: 36 * n * tiles, transform)
}
