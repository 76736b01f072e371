import COpenBLAS

/// `nn.Linear` between NCHW feature maps and token rows without materialising the permutation.
///
/// A transformer over an image (SD's `Transformer2DModel`, the VAE's attention) permutes
/// `[B, C, H, W]` to `[B·H·W, C]` rows before its input projection and back after its output
/// projection, then adds the input. The permutations are strided passes over the whole map; here
/// sgemm reads each image's `[C, H·W]` block transposed instead, and the way back seeds sgemm's
/// output with the residual and the bias (beta 1), so neither the permuted copy nor the add exists.

/// `[B, C, H, W]` → `[B·H·W, O]`: `x.permute(0, 2, 3, 1) · weightᵀ + bias`.
public func linearFromChannels(_ x: Tensor, weight: Weight, bias: Tensor? = nil) throws -> Tensor {
    guard x.rank == 4 else { throw TensorError("linearFromChannels: input must be [B, C, H, W], got \(x.shape)") }
    let (b, c, n) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    guard weight.rank == 2, weight.shape[1] == c else {
        throw TensorError("linearFromChannels: weight \(weight.shape) does not take \(c) channels of \(x.shape)")
    }
    let o = weight.shape[0]
    if let bias, bias.count != o { throw TensorError("linearFromChannels: bias \(bias.shape) does not match \(o) outputs") }
    // Every element is written: by sgemm with beta 0, or over the bias copied in first.
    var out = uninitializedFloats(b * n * o)
    if b * n * o > 0 {
        // The weight's own storage when float32; a widened copy of a half-precision one (a projection, a few MB).
        weight.float32().data.withUnsafeBufferPointer { wb in
            x.data.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    let w = wb.baseAddress!, dst = op.baseAddress!
                    if let bias {
                        bias.data.withUnsafeBufferPointer { bp in
                            for r in 0..<(b * n) { (dst + r * o).update(from: bp.baseAddress!, count: o) }
                        }
                    }
                    guard c > 0 else {
                        if bias == nil { dst.update(repeating: 0, count: b * n * o) }
                        return
                    }
                    if LinearProducts.blockedPays(rows: n, features: o) {
                        if bias == nil { dst.update(repeating: 0, count: b * n * o) }
                        for image in 0..<b {
                            // [n, o] += ([c, n])ᵀ · ([o, c])ᵀ: the image's channels read as depth-major token rows.
                            LinearProducts.accumulate(rows: n, depth: c, x: .init(xp.baseAddress! + image * c * n, stride: n, depthMajor: true),
                                                      features: o, w: .init(w, stride: c), out: dst + image * n * o, ldo: o)
                        }
                        return
                    }
                    for image in 0..<b {
                        // [n, o] = ([c, n])ᵀ · ([o, c])ᵀ
                        BLAS.sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(n), Int32(o), Int32(c), 1,
                                    xp.baseAddress! + image * c * n, Int32(n), w, Int32(c),
                                    bias == nil ? 0 : 1, dst + image * n * o, Int32(o))
                    }
                }
            }
        }
    }
    return Tensor(uncheckedShape: [b * n, o], data: out)
}

/// `[B·H·W, C]` token rows → `[B, O, H, W]`: `(tokens · weightᵀ + bias)` permuted back to NCHW,
/// plus `residual` (`[B, O, H, W]`) when given.
public func linearToChannels(_ tokens: Tensor, weight: Weight, bias: Tensor? = nil, batch b: Int, height h: Int, width w: Int,
                             adding residual: Tensor? = nil) throws -> Tensor {
    let c = tokens.lastDimension, n = h * w
    guard tokens.rowCount == b * n else {
        throw TensorError("linearToChannels: \(tokens.shape) is not \(b) images of \(h)×\(w) tokens")
    }
    guard weight.rank == 2, weight.shape[1] == c else {
        throw TensorError("linearToChannels: weight \(weight.shape) does not take tokens of \(c) values")
    }
    let o = weight.shape[0]
    if let bias, bias.count != o { throw TensorError("linearToChannels: bias \(bias.shape) does not match \(o) outputs") }
    if let residual, residual.shape != [b, o, h, w] {
        throw TensorError("linearToChannels: residual \(residual.shape) is not [\(b), \(o), \(h), \(w)]")
    }
    var out = residual?.data ?? [Float](repeating: 0, count: b * o * n)
    if let bias {
        out.withUnsafeMutableBufferPointer { op in
            for plane in 0..<(b * o) {
                let v = bias.data[plane % o], row = op.baseAddress! + plane * n
                for i in 0..<n { row[i] += v }
            }
        }
    }
    if b * n * o > 0, c > 0 {
        weight.float32().data.withUnsafeBufferPointer { wb in
            let wp = wb.baseAddress!
            tokens.data.withUnsafeBufferPointer { tp in
                out.withUnsafeMutableBufferPointer { op in
                    let blocked = LinearProducts.blockedPays(rows: o, features: n)
                    for image in 0..<b {
                        // [o, n] += [o, c] · ([n, c])ᵀ
                        if blocked {
                            LinearProducts.accumulate(rows: o, depth: c, x: .init(wp, stride: c), features: n,
                                                      w: .init(tp.baseAddress! + image * n * c, stride: c),
                                                      out: op.baseAddress! + image * o * n, ldo: n)
                            continue
                        }
                        BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(o), Int32(n), Int32(c), 1,
                                    wp, Int32(c), tp.baseAddress! + image * n * c, Int32(c),
                                    1, op.baseAddress! + image * o * n, Int32(n))
                    }
                }
            }
        }
    }
    return Tensor(uncheckedShape: [b, o, h, w], data: out)
}

/// `h += x · weightᵀ + bias` (a residual branch's output projection): the bias is added to `h` and
/// sgemm accumulates into it (beta 1), instead of a fresh output and a separate add.
public func addLinear(_ x: Tensor, weight: Weight, bias: Tensor? = nil, to h: inout Tensor) throws {
    let o = weight.rank == 2 ? weight.shape[0] : -1, k = weight.rank == 2 ? weight.shape[1] : -1
    guard x.lastDimension == k, h.lastDimension == o, x.rowCount == h.rowCount, x.rank >= 1 else {
        throw TensorError("addLinear: input \(x.shape) and weight \(weight.shape) do not give \(h.shape)")
    }
    if let bias, bias.count != o { throw TensorError("addLinear: bias \(bias.shape) does not match \(o) outputs") }
    let rows = x.rowCount
    // A single row or a half-precision weight: the plain product (decode's kernels) and one add.
    guard rows > 1, case .float32 = weight.storage, k > 0 else {
        try addInPlace(&h, linear(x, weight: weight, bias: bias))
        return
    }
    h.data.withUnsafeMutableBufferPointer { hp in
        let dst = hp.baseAddress!
        if let bias {
            bias.data.withUnsafeBufferPointer { bp in
                for r in 0..<rows {
                    let row = dst + r * o
                    for j in 0..<o { row[j] += bp[j] }
                }
            }
        }
        weight.float32().data.withUnsafeBufferPointer { w in
            x.data.withUnsafeBufferPointer { xp in
                if LinearProducts.blockedPays(rows: rows, features: o) {
                    LinearProducts.accumulate(rows: rows, depth: k, x: .init(xp.baseAddress!, stride: k), features: o,
                                              w: .init(w.baseAddress!, stride: k), out: dst, ldo: o)
                    return
                }
                BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(o), Int32(k), 1,
                            xp.baseAddress!, Int32(k), w.baseAddress!, Int32(k), 1, dst, Int32(o))
            }
        }
    }
}
