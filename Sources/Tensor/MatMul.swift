import COpenBLAS

/// Matrix products over OpenBLAS (row-major `cblas_sgemm` / `cblas_sgemv`).
///
/// Products with a single row go through sgemv (for decode-shaped work, M = 1, OpenBLAS's sgemv is about 3×
/// faster than its sgemm), or Storyloom's own AVX2 gemv where the CPU has AVX2 and FMA (`LinearProducts.runGEMV`).

/// `x · weightᵀ + bias`, the PyTorch `nn.Linear` convention.
///
/// - Parameters:
///   - x: `[..., in]`; all leading dimensions are flattened into rows, so a batch of
///     sequences is one `[B*T, in]` product.
///   - weight: `[out, in]` as stored by PyTorch.
///   - bias: `[out]`, optional.
/// - Returns: `[..., out]`.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    guard weight.rank == 2 else { throw TensorError("linear: weight must be 2-D [out, in], got \(weight.shape)") }
    let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
    guard x.lastDimension == inFeatures, x.rank >= 1 else {
        throw TensorError("linear: input \(x.shape) does not end in \(inFeatures) (weight \(weight.shape))")
    }
    if let bias, bias.count != outFeatures {
        throw TensorError("linear: bias \(bias.shape) does not match \(outFeatures) outputs")
    }
    let rows = x.rowCount
    // sgemm with beta 0 (or the bias copied in first) writes every element; sgemv's beta-0 scaling is left
    // a zeroed vector, as OpenBLAS versions differ on 0 · NaN.
    var out = rows > 1 || bias != nil ? uninitializedFloats(rows * outFeatures) : [Float](repeating: 0, count: rows * outFeatures)
    x.data.withUnsafeBufferPointer { xp in
        weight.data.withUnsafeBufferPointer { wp in
            bias?.data.withUnsafeBufferPointer { bp in
                linearRaw(xp.baseAddress!, rows: rows, inFeatures: inFeatures, weight: wp.baseAddress!,
                          outFeatures: outFeatures, bias: bp.baseAddress, out: &out)
            } ?? linearRaw(xp.baseAddress!, rows: rows, inFeatures: inFeatures, weight: wp.baseAddress!,
                           outFeatures: outFeatures, bias: nil, out: &out)
        }
    }
    return Tensor(uncheckedShape: Array(x.shape.dropLast()) + [outFeatures], data: out)
}

/// The pointer form of `linear`: `out[rows, outFeatures] = x[rows, inFeatures] · weightᵀ + bias`.
/// `out` must already hold `rows * outFeatures` values; they are overwritten.
func linearRaw(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
               outFeatures: Int, bias: UnsafePointer<Float>?, out: inout [Float]) {
    guard rows > 0, outFeatures > 0 else { return }
    if LinearProducts.pays(rows: rows, inFeatures: inFeatures) {
        out.withUnsafeMutableBufferPointer { op in
            LinearProducts.run(x, rows: rows, inFeatures: inFeatures, weight: .float32(weight), outFeatures: outFeatures,
                               bias: bias, out: op.baseAddress!)
        }
        return
    }
    if LinearProducts.gemmPays(rows: rows, inFeatures: inFeatures) {
        out.withUnsafeMutableBufferPointer { op in
            LinearProducts.runGEMM(x, rows: rows, inFeatures: inFeatures, weight: .float32(weight), outFeatures: outFeatures,
                                   bias: bias, out: op.baseAddress!)
        }
        return
    }
    if transposedProductPays(rows: rows, inFeatures: inFeatures) {
        out.withUnsafeMutableBufferPointer { op in
            linearTransposed(x, rows: rows, inFeatures: inFeatures, weight: weight, outFeatures: outFeatures, bias: bias,
                             out: op.baseAddress!)
        }
        return
    }
    out.withUnsafeMutableBufferPointer { op in
        let o = op.baseAddress!
        if rows == 1 && inFeatures > 0 && LinearProducts.gemvPays {
            LinearProducts.runGEMV(x, inFeatures: inFeatures, weight: weight, outFeatures: outFeatures, bias: bias, out: o)
            return
        }
        // Seed every row with the bias and accumulate with beta = 1: one pass instead of two.
        var beta: Float = 0
        if let bias {
            for r in 0..<rows {
                (o + r * outFeatures).update(from: bias, count: outFeatures)
            }
            beta = 1
        }
        if inFeatures == 0 {
            if bias == nil { o.update(repeating: 0, count: rows * outFeatures) }
            return
        }
        if rows == 1 {
            BLAS.sgemv(CblasRowMajor, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), 1,
                        weight, Int32(inFeatures), x, 1, beta, o, 1)
        } else {
            BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures),
                        Int32(inFeatures), 1, x, Int32(inFeatures), weight, Int32(inFeatures), beta,
                        o, Int32(outFeatures))
        }
    }
}

/// Whether `linearRaw` computes `outᵀ = weight · xᵀ` and transposes, rather than `x · weightᵀ` directly. On CPUs
/// with AVX2 and FMA these shapes go to Storyloom's own products instead (`LinearProducts`), which take the same form.
///
/// Why: for a few dozen rows (a prompt's prefill, a small image's tokens) and a long reduction,
/// OpenBLAS 0.3.21 runs the transposed product 10–45% faster on one thread and 3–25% on two (its packing of
/// a transposed `[out, in]` weight is the slow part), which is more than the transpose back costs. Measured
/// with a C harness beside `bench llm` (AMD EPYC, Cooper Lake kernels; M = 64: 2048→2048 123 → 153 GFLOP/s,
/// 8192→2048 136 → 162, 3072→768 136 → 159; but 768→768 179 → 170, hence the 1,024 floor on `in`). Half-precision
/// weights take the same form tile by tile (`halfLinear`). Not past 128 rows: `bench clip` with the rule at 512
/// rows ran ViT-L/14 batch 1 (257 rows) 22% and ViT-B/32 batch 8 (400 rows) 13% slower — the write-back then
/// spans more cache lines than L1 holds, and OpenBLAS's own form is near its peak there anyway.
func transposedProductPays(rows: Int, inFeatures: Int) -> Bool {
    rows >= 2 && rows <= 128 && inFeatures >= 1024
}

/// `out[rows, O] = x · weightᵀ + bias` as `(weight · xᵀ)ᵀ`: the product into scratch `[O, rows]`, then
/// written back as rows with the bias.
private func linearTransposed(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
                              outFeatures: Int, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
    let product = UnsafeMutablePointer<Float>.allocate(capacity: outFeatures * rows)
    defer { product.deallocate() }
    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(outFeatures), Int32(rows), Int32(inFeatures), 1,
               weight, Int32(inFeatures), x, Int32(inFeatures), 0, product, Int32(rows))
    writeTransposed(product, features: outFeatures, rows: rows, bias: bias, into: out, stride: outFeatures)
}

/// `out[r · stride + j] = product[j · productStride + r] + bias[j]` for `features` columns: a `[features, rows]`
/// product (rows `productStride` apart, `rows` by default) written back as rows. Each feature's column is written
/// across the rows, whose cache lines stay in L1.
func writeTransposed(_ product: UnsafePointer<Float>, features: Int, rows: Int, productStride: Int? = nil,
                     bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>, stride: Int) {
    let ld = productStride ?? rows
    for j in 0..<features {
        let column = product + j * ld, b = bias?[j] ?? 0
        var p = out + j
        for r in 0..<rows {
            p.pointee = column[r] + b
            p += stride
        }
    }
}

/// The matrix product `a · b` (or `a · bᵀ` when `transposeB`), for 2-D tensors.
///
/// `a` is `[M, K]`; `b` is `[K, N]`, or `[N, K]` when `transposeB`. A single-row `a` goes
/// through sgemv.
public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool = false) throws -> Tensor {
    guard a.rank == 2, b.rank == 2 else { throw TensorError("matmul: expects 2-D tensors, got \(a.shape) and \(b.shape)") }
    let m = a.shape[0], k = a.shape[1]
    let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard k == kb else {
        throw TensorError("matmul: inner dimensions differ: \(a.shape) · \(b.shape)\(transposeB ? "ᵀ" : "")")
    }
    var out = [Float](repeating: 0, count: m * n)
    if m > 0, n > 0, k > 0 {
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { op in
                    if m == 1 {
                        // y = bᵀ x (b is [K, N]) or y = b x (b is [N, K]).
                        BLAS.sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans,
                                    Int32(b.shape[0]), Int32(b.shape[1]), 1, bp.baseAddress!,
                                    Int32(b.shape[1]), ap.baseAddress!, 1, 0, op.baseAddress!, 1)
                    } else {
                        BLAS.sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                    Int32(m), Int32(n), Int32(k), 1, ap.baseAddress!, Int32(k),
                                    bp.baseAddress!, Int32(b.shape[1]), 0, op.baseAddress!, Int32(n))
                    }
                }
            }
        }
    }
    return Tensor(uncheckedShape: [m, n], data: out)
}
