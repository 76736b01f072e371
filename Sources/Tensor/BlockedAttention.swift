import COpenBLAS
import CVectorMath

/// How `blockedAttention` computes each block: the fused AVX2 kernels (`attention_kernels.h`) where the CPU
/// and head dimension allow, else two sgemm calls. Tests pin one to compare them.
public enum AttentionKernel: Sendable {
    case automatic, fused, sgemm

    /// Whether the fused kernels run head dimension `headDim` on this CPU.
    public static func fusedAvailable(headDim: Int) -> Bool {
        headDim > 0 && storyloom_attention_fused_available(headDim) != 0
    }

    /// Whether `.automatic` takes them: `bench attention --threads 1` (2026-11-30) measured them 1.1–1.7×
    /// faster than sgemm at head dimensions 16–160 (the SD and StoryWorld UNets) and 0.88× at the VAE's single
    /// head of 512, where each 16-column panel of the output re-reads the whole score block.
    static func fusedPays(headDim: Int) -> Bool { headDim <= 160 && fusedAvailable(headDim: headDim) }
}

/// Multi-head attention for long sequences (a diffusion UNet's 4096 latent tokens), computed
/// in query blocks so the full `Tq × Tk` score matrix is never materialised.
///
/// Work items are (sequence, head, block of queries), split over `Threads.count` workers in contiguous
/// runs. The fused path packs each (sequence, head)'s K and V once per worker and computes a block with
/// register-tiled kernels, the block's scores staying in cache (`attention_kernels.h` says why this beats
/// sgemm at the UNet's head dimensions). The sgemm path computes `S = scale · Q_blk Kᵀ`, a row softmax,
/// then `O_blk = S V`, with OpenBLAS single-threaded meanwhile. Query and key lengths may differ
/// (cross-attention to 77 text tokens).
///
/// - Parameters:
///   - query: `batch · queryLength` rows; head `h` at columns `offset + h·headDim`.
///   - key, value: `batch · keyLength` rows, laid out likewise.
///   - out: `[batch · queryLength, heads · headDim]`, row stride `outStride`; overwritten.
///   - maxScoreFloats: the per-worker score buffer budget, which sets the block height.
///   - kernel: `.automatic` takes the fused kernels where they pay (`fusedPays`); `.fused` wherever they run; both
///     fall back to sgemm otherwise.
public func blockedAttention(query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                             batch: Int, queryLength tq: Int, keyLength tk: Int, heads: Int, headDim hd: Int,
                             scale: Float? = nil, out: UnsafeMutablePointer<Float>, outStride: Int,
                             maxScoreFloats: Int? = nil, kernel: AttentionKernel = .automatic) {
    guard batch > 0, tq > 0, tk > 0, heads > 0, hd > 0 else { return }
    let s = scale ?? 1 / Float(hd).squareRoot()
    let p = BlockedPointers(query: query, key: key, value: value, out: out)
    let fused = kernel == .fused ? AttentionKernel.fusedAvailable(headDim: hd)
        : kernel == .automatic && AttentionKernel.fusedPays(headDim: hd)
    if fused {
        fusedBlocks(p, batch: batch, tq: tq, tk: tk, heads: heads, hd: hd, scale: s, outStride: outStride,
                    maxScoreFloats: maxScoreFloats ?? 1 << 16)
        return
    }
    let blockRows = max(1, min(tq, (maxScoreFloats ?? 1 << 18) / tk))
    let blocks = (tq + blockRows - 1) / blockRows
    let items = batch * heads * blocks
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

/// The fused path: no BLAS calls, so no BLAS gate; each worker owns packed K and V (`tp · hd` floats each),
/// a score block and its row scales.
private func fusedBlocks(_ p: BlockedPointers, batch: Int, tq: Int, tk: Int, heads: Int, hd: Int, scale: Float,
                         outStride: Int, maxScoreFloats: Int) {
    let tp = storyloom_attention_padded_keys(tk)
    // Whole 6-row tiles, the block's scores within the budget (64K floats, 256 KB: half of a Zen 2 L2).
    let blockRows = min(tq, max(6, maxScoreFloats / tp / 6 * 6))
    let blocks = (tq + blockRows - 1) / blockRows
    let items = batch * heads * blocks
    let workers = min(Threads.count, items)
    let perWorker = 2 * tp * hd + blockRows * tp + blockRows
    var scratch = [Float](repeating: 0, count: workers * perWorker)
    scratch.withUnsafeMutableBufferPointer { sp in
        let sbase = BlockedScratch(value: sp.baseAddress!)
        Threads.parallelFor(workers) { wkr in
            let kpack = sbase.value + wkr * perWorker, vpack = kpack + tp * hd
            let scores = vpack + tp * hd, rowScale = scores + blockRows * tp
            var packed = -1
            let lo = items * wkr / workers, hi = items * (wkr + 1) / workers
            for item in lo..<hi {
                let blk = item % blocks, pair = item / blocks, h = pair % heads, b = pair / heads
                if pair != packed {
                    storyloom_attention_pack(p.key.base + b * tk * p.key.rowStride + p.key.offset + h * hd, p.key.rowStride,
                                             p.value.base + b * tk * p.value.rowStride + p.value.offset + h * hd,
                                             p.value.rowStride, tk, hd, kpack, vpack)
                    packed = pair
                }
                let q0 = blk * blockRows, rows = min(blockRows, tq - q0)
                storyloom_attention_rows(p.query.base + (b * tq + q0) * p.query.rowStride + p.query.offset + h * hd,
                                         p.query.rowStride, rows, kpack, vpack, tk, hd, scale, scores, rowScale,
                                         p.out + (b * tq + q0) * outStride + h * hd, outStride)
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
