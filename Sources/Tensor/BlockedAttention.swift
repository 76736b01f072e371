import COpenBLAS

/// Multi-head attention for long sequences (a diffusion UNet's 4096 latent tokens), computed
/// in query blocks so the full `Tq × Tk` score matrix is never materialised.
///
/// Work items are (sequence, head, block of queries); each worker owns one
/// `blockRows × Tk` score buffer: `S = scale · Q_blk Kᵀ` (sgemm), a row softmax, then
/// `O_blk = S V` (sgemm) written straight into the output rows. Items run in parallel over
/// `Threads.count` workers with OpenBLAS single-threaded meanwhile. Query and key lengths may
/// differ (cross-attention to 77 text tokens).
///
/// - Parameters:
///   - query: `batch · queryLength` rows; head `h` at columns `offset + h·headDim`.
///   - key, value: `batch · keyLength` rows, laid out likewise.
///   - out: `[batch · queryLength, heads · headDim]`, row stride `outStride`; overwritten.
///   - maxScoreFloats: the per-worker score buffer budget, which sets the block height.
public func blockedAttention(query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                             batch: Int, queryLength tq: Int, keyLength tk: Int, heads: Int, headDim hd: Int,
                             scale: Float? = nil, out: UnsafeMutablePointer<Float>, outStride: Int,
                             maxScoreFloats: Int = 1 << 18) {
    guard batch > 0, tq > 0, tk > 0, heads > 0, hd > 0 else { return }
    let s = scale ?? 1 / Float(hd).squareRoot()
    let blockRows = max(1, min(tq, maxScoreFloats / tk))
    let blocks = (tq + blockRows - 1) / blockRows
    let items = batch * heads * blocks
    let p = BlockedPointers(query: query, key: key, value: value, out: out)
    Threads.singleThreadedBLAS {
        let workers = min(Threads.count, items)
        var scratch = [Float](repeating: 0, count: workers * blockRows * tk)
        scratch.withUnsafeMutableBufferPointer { sp in
            let sbase = BlockedScratch(value: sp.baseAddress!)
            Threads.parallelFor(workers) { wkr in
                let scores = sbase.value + wkr * blockRows * tk
                let lo = items * wkr / workers, hi = items * (wkr + 1) / workers
                for item in lo..<hi {
                    let blk = item % blocks, h = (item / blocks) % heads, b = item / (blocks * heads)
                    let q0 = blk * blockRows, rows = min(blockRows, tq - q0)
                    let qp = p.query.base + (b * tq + q0) * p.query.rowStride + p.query.offset + h * hd
                    let kp = p.key.base + (b * tk) * p.key.rowStride + p.key.offset + h * hd
                    let vp = p.value.base + (b * tk) * p.value.rowStride + p.value.offset + h * hd
                    let op = p.out + (b * tq + q0) * outStride + h * hd
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(tk), Int32(hd), s,
                                qp, Int32(p.query.rowStride), kp, Int32(p.key.rowStride), 0, scores, Int32(tk))
                    for r in 0..<rows { softmaxRow(scores + r * tk, count: tk) }
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hd), Int32(tk), 1,
                                scores, Int32(tk), vp, Int32(p.value.rowStride), 0, op, Int32(outStride))
                }
            }
        }
    }
}

private struct BlockedPointers: @unchecked Sendable {
    let query: AttentionOperand, key: AttentionOperand, value: AttentionOperand
    let out: UnsafeMutablePointer<Float>
}

private struct BlockedScratch: @unchecked Sendable {
    let value: UnsafeMutablePointer<Float>
}
