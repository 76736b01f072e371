import CHalfKernels
import COpenBLAS

/// Matrix products with `Weight`s that may be stored as f16/bf16.
///
/// Float32 weights take the plain OpenBLAS path of `MatMul.swift`. A half-precision weight is
/// never widened whole: a single input row (decode) goes through a kernel that reads each 16-bit
/// weight once and multiplies it in float32 (OPT decode is bound by the bytes read, so half the
/// bytes is the whole gain); more rows widen a tile of weight rows at a time into a per-worker
/// scratch buffer and hand it to sgemm, so the conversion is amortised over the rows of `x`.

/// Floats per widened tile: 2 MB, a few hundred weight rows, small enough to stay in cache
/// while sgemm packs it and large enough that each sgemm is efficient.
let halfTileFloats = 1 << 19

/// `x · weightᵀ + bias` (`nn.Linear`) for a weight in any storage; see `linear(_:weight:bias:)`.
public func linear(_ x: Tensor, weight: Weight, bias: Tensor? = nil) throws -> Tensor {
    if case let .float32(data) = weight.storage {
        return try linear(x, weight: Tensor(uncheckedShape: weight.shape, data: data), bias: bias)
    }
    guard weight.rank == 2 else {
        throw TensorError("linear: weight must be 2-D [out, in], got \(weight.dtype.rawValue) \(weight.shape)")
    }
    let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
    guard x.lastDimension == inFeatures, x.rank >= 1 else {
        throw TensorError("linear: input \(x.shape) does not end in \(inFeatures) (\(weight.dtype.rawValue) weight \(weight.shape))")
    }
    if let bias, bias.count != outFeatures {
        throw TensorError("linear: bias \(bias.shape) does not match \(outFeatures) outputs")
    }
    let rows = x.rowCount
    // Every element is written: the batch-1 kernel stores each output, sgemm has beta 0 or the bias copied in.
    var out = uninitializedFloats(rows * outFeatures)
    if rows > 0, outFeatures > 0 {
        x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                if let bias {
                    bias.data.withUnsafeBufferPointer { bp in
                        halfLinear(xp.baseAddress!, rows: rows, weight: weight, bias: bp.baseAddress!, out: op.baseAddress!)
                    }
                } else {
                    halfLinear(xp.baseAddress!, rows: rows, weight: weight, bias: nil, out: op.baseAddress!)
                }
            }
        }
    }
    return Tensor(uncheckedShape: Array(x.shape.dropLast()) + [outFeatures], data: out)
}

/// `out[rows, O] = x[rows, K] · weightᵀ + bias` for a half-precision `[O, K]` weight.
private func halfLinear(_ x: UnsafePointer<Float>, rows: Int, weight: Weight, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>) {
    let o = weight.rows, k = weight.rowLength
    if k == 0 {
        for r in 0..<rows {
            if let bias { (out + r * o).update(from: bias, count: o) } else { (out + r * o).update(repeating: 0, count: o) }
        }
        return
    }
    let format = weight.halfFormat
    weight.withStorage(float32: { _ in preconditionFailure("halfLinear on a float32 weight") }, half: { w in
        if rows == 1 {
            // Decode: each worker streams a contiguous band of weight rows once.
            let workers = min(Threads.count, max(1, o / 64))
            Threads.parallelFor(workers) { i in
                let lo = o * i / workers, hi = o * (i + 1) / workers
                storyloom_half_gemv(w + lo * k, hi - lo, k, x, bias.map { $0 + lo }, out + lo, format)
            }
            return
        }
        // Prefill shapes on AVX2 + FMA CPUs: Storyloom's products, widening a tile per worker (`LinearProducts`).
        if LinearProducts.pays(rows: rows, inFeatures: k) {
            LinearProducts.run(x, rows: rows, inFeatures: k, weight: .half(w, format), outFeatures: o, bias: bias, out: out)
            return
        }
        if LinearProducts.gemmPays(rows: rows, inFeatures: k) {
            LinearProducts.runGEMM(x, rows: rows, inFeatures: k, weight: .half(w, format), outFeatures: o, bias: bias, out: out)
            return
        }
        // Prefill-shaped products run transposed (`transposedProductPays`), written back with the bias.
        let transposed = transposedProductPays(rows: rows, inFeatures: k)
        if let bias, !transposed {
            for r in 0..<rows { (out + r * o).update(from: bias, count: o) }
        }
        let beta: Float = bias == nil ? 0 : 1
        // Tiles of at most `halfTileFloats`, as many as a multiple of the workers and of near-equal
        // rows: 5 uneven tiles on 2 workers (CLIP's fc1 and fc2) left one worker idle a fifth of the time.
        // A weight that fits one tile stays one product, threaded by OpenBLAS.
        let minimumTiles = (o * k + halfTileFloats - 1) / halfTileFloats
        let workers = minimumTiles == 1 ? 1 : min(Threads.count, o)
        let tiles = min(o, (minimumTiles + workers - 1) / workers * workers)
        let tileRows = (o + tiles - 1) / tiles
        // Each worker widens its own tiles into its own scratch and runs a single-threaded sgemm on
        // it; with one worker OpenBLAS keeps its threads for the (then larger) products.
        func run(_ worker: Int) {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * k)
            let product = UnsafeMutablePointer<Float>.allocate(capacity: transposed ? tileRows * rows : 0)
            defer { scratch.deallocate(); product.deallocate() }
            for t in (tiles * worker / workers)..<(tiles * (worker + 1) / workers) {
                let r0 = o * t / tiles, n = o * (t + 1) / tiles - r0
                storyloom_half_to_float(w + r0 * k, scratch, n * k, format)
                if transposed {
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rows), Int32(k), 1,
                                scratch, Int32(k), x, Int32(k), 0, product, Int32(rows))
                    writeTransposed(product, features: n, rows: rows, bias: bias.map { $0 + r0 }, into: out + r0, stride: o)
                } else {
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), 1,
                                x, Int32(k), scratch, Int32(k), beta, out + r0, Int32(o))
                }
            }
        }
        if workers <= 1 {
            run(0)
        } else {
            Threads.singleThreadedBLAS { Threads.parallelFor(workers, run) }
        }
    })
}

/// `c[O, n] = weight[O, K] · b[K, n] + beta · c` with row stride `ldc` for `c` and `ldb` for `b`:
/// the left-hand product of a convolution (output channels × unfolded patches). Half-precision
/// weights are widened a tile of output channels at a time into `scratch`. Where the CPU has AVX-512F and
/// OpenBLAS runs AVX2 kernels, Storyloom's AVX-512 kernel takes it (`LinearProducts.weightProductPays`).
func weightTimesMatrix(_ weight: Weight, b: UnsafePointer<Float>, n: Int, ldb: Int, beta: Float,
                       c: UnsafeMutablePointer<Float>, ldc: Int, scratch: inout [Float]) {
    let o = weight.rows, k = weight.rowLength
    guard o > 0, n > 0, k > 0 else { return }
    let own = LinearProducts.weightProductPays(rows: o)
    // `rows` output channels from `w` (row-major `[rows, K]`) into `c` from channel `r0`.
    func product(_ w: UnsafePointer<Float>, rows: Int, from r0: Int) {
        if own {
            LinearProducts.runWeightProduct(w, rows: rows, depth: k, b: b, n: n, ldb: ldb, c: c + r0 * ldc, ldc: ldc,
                                            accumulate: beta != 0)
        } else {
            BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(k), 1,
                        w, Int32(k), b, Int32(ldb), beta, c + r0 * ldc, Int32(ldc))
        }
    }
    weight.withStorage(float32: { w in
        product(w, rows: o, from: 0)
    }, half: { w in
        let tileRows = max(1, min(o, halfTileFloats / k))
        if scratch.count < tileRows * k { scratch = [Float](repeating: 0, count: tileRows * k) }
        scratch.withUnsafeMutableBufferPointer { s in
            var r0 = 0
            while r0 < o {
                let rows = min(tileRows, o - r0)
                storyloom_half_to_float(w + r0 * k, s.baseAddress!, rows * k, weight.halfFormat)
                product(s.baseAddress!, rows: rows, from: r0)
                r0 += rows
            }
        }
    })
}
