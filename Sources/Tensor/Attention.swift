import COpenBLAS

/// Scaled dot-product multi-head attention, materialising each head's score matrix.
///
/// Suited to sequences up to a few hundred tokens (CLIP's 77 text / 257 image tokens). Each
/// (sequence, head) pair is two small sgemm calls; pairs run in parallel over
/// `Threads.count` workers with OpenBLAS single-threaded meanwhile, which beats threading
/// inside such small products.

/// Where one of Q, K, V lives: a row-major buffer of `rows` tokens, `rowStride` floats apart,
/// the projection starting `offset` floats into each row (heads follow each other inside it).
public struct AttentionOperand {
    public var base: UnsafePointer<Float>
    public var rowStride: Int
    public var offset: Int
    public init(base: UnsafePointer<Float>, rowStride: Int, offset: Int = 0) {
        self.base = base
        self.rowStride = rowStride
        self.offset = offset
    }
}

/// Multi-head attention over `batch` sequences of `sequenceLength` tokens each.
///
/// - Parameters:
///   - query, key, value: operands, each `width` wide (= heads × headDim) per token.
///   - out: `[batch * sequenceLength, width]`, row stride `width`; overwritten.
///   - causal: mask positions `j > i` (text towers, decoders).
///   - scale: multiplies the scores; defaults to `1/sqrt(headDim)`.
public func multiHeadAttention(query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                               batch: Int, sequenceLength t: Int, heads: Int, width: Int, causal: Bool,
                               scale: Float? = nil, out: UnsafeMutablePointer<Float>) {
    guard batch > 0, t > 0, heads > 0 else { return }
    let hd = width / heads
    let s = scale ?? 1 / Float(hd).squareRoot()
    let q = UncheckedPointers(query: query, key: key, value: value, out: out)
    Threads.singleThreadedBLAS {
        let workers = min(Threads.count, batch * heads)
        // One score buffer per worker, reused across that worker's (sequence, head) pairs.
        var scratch = [Float](repeating: 0, count: workers * t * t)
        scratch.withUnsafeMutableBufferPointer { sp in
            let sbase = UncheckedMutablePointer(sp.baseAddress!)
            Threads.parallelFor(workers) { w in
                let scores = sbase.value + w * t * t
                let lo = batch * heads * w / workers, hi = batch * heads * (w + 1) / workers
                for pair in lo..<hi {
                    let b = pair / heads, h = pair % heads
                    let qp = q.query.base + (b * t) * q.query.rowStride + q.query.offset + h * hd
                    let kp = q.key.base + (b * t) * q.key.rowStride + q.key.offset + h * hd
                    let vp = q.value.base + (b * t) * q.value.rowStride + q.value.offset + h * hd
                    let op = q.out + (b * t) * width + h * hd
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(t), Int32(hd), s,
                                qp, Int32(q.query.rowStride), kp, Int32(q.key.rowStride), 0, scores, Int32(t))
                    for i in 0..<t {
                        let row = scores + i * t
                        if causal && i + 1 < t {
                            (row + i + 1).update(repeating: -.infinity, count: t - i - 1)
                        }
                        softmaxRow(row, count: t)
                    }
                    BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(t), 1,
                                scores, Int32(t), vp, Int32(q.value.rowStride), 0, op, Int32(width))
                }
            }
        }
    }
}

/// Multi-head attention on `[batch, sequenceLength, width]` tensors (or `[batch*seq, width]`).
public func multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, batch: Int, heads: Int,
                               causal: Bool, scale: Float? = nil) throws -> Tensor {
    let width = query.lastDimension
    guard heads > 0, width % heads == 0 else {
        throw TensorError("attention: width \(width) is not divisible by \(heads) heads")
    }
    guard key.shape == query.shape, value.shape == query.shape else {
        throw TensorError("attention: query \(query.shape), key \(key.shape), value \(value.shape) differ")
    }
    guard batch > 0, query.rowCount % batch == 0 else {
        throw TensorError("attention: \(query.rowCount) tokens do not split into \(batch) sequences")
    }
    let t = query.rowCount / batch
    var out = [Float](repeating: 0, count: query.count)
    query.data.withUnsafeBufferPointer { qp in
        key.data.withUnsafeBufferPointer { kp in
            value.data.withUnsafeBufferPointer { vp in
                out.withUnsafeMutableBufferPointer { op in
                    multiHeadAttention(query: AttentionOperand(base: qp.baseAddress!, rowStride: width),
                                       key: AttentionOperand(base: kp.baseAddress!, rowStride: width),
                                       value: AttentionOperand(base: vp.baseAddress!, rowStride: width),
                                       batch: batch, sequenceLength: t, heads: heads, width: width,
                                       causal: causal, scale: scale, out: op.baseAddress!)
                }
            }
        }
    }
    return Tensor(uncheckedShape: query.shape, data: out)
}

/// Pointers shared read-only (or, for `out`, written at disjoint offsets) by the workers.
private struct UncheckedPointers: @unchecked Sendable {
    let query: AttentionOperand, key: AttentionOperand, value: AttentionOperand
    let out: UnsafeMutablePointer<Float>
}

private struct UncheckedMutablePointer: @unchecked Sendable {
    let value: UnsafeMutablePointer<Float>
    init(_ value: UnsafeMutablePointer<Float>) { self.value = value }
}
