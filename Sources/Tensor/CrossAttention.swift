import COpenBLAS

/// Multi-head attention of `query` rows `[Tq, W]` over `key`/`value` rows `[Tk, W]` with no mask
/// (encoder self-attention and decoder cross-attention, where Tq ≠ Tk), `1/sqrt(headDim)` scaling.
/// Each head is two sgemm calls over strided views; no copies of the operands.
public func unmaskedAttention(query: Tensor, key: Tensor, value: Tensor, heads: Int) throws -> Tensor {
    let w = query.lastDimension
    guard heads > 0, w % heads == 0 else { throw TensorError("attention: width \(w) is not divisible by \(heads) heads") }
    guard key.lastDimension == w, value.lastDimension == w, key.rowCount == value.rowCount else {
        throw TensorError("attention: query \(query.shape), key \(key.shape), value \(value.shape) disagree")
    }
    let tq = query.rowCount, tk = key.rowCount, hd = w / heads
    var out = [Float](repeating: 0, count: tq * w)
    guard tq > 0, tk > 0 else { return Tensor(uncheckedShape: [tq, w], data: out) }
    var scores = [Float](repeating: 0, count: tq * tk)
    let scale = 1 / Float(hd).squareRoot()
    query.data.withUnsafeBufferPointer { q in
        key.data.withUnsafeBufferPointer { k in
            value.data.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    scores.withUnsafeMutableBufferPointer { s in
                        for h in 0..<heads {
                            BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tq), Int32(tk), Int32(hd), scale,
                                        q.baseAddress! + h * hd, Int32(w), k.baseAddress! + h * hd, Int32(w), 0,
                                        s.baseAddress!, Int32(tk))
                            for i in 0..<tq { softmaxRow(s.baseAddress! + i * tk, count: tk) }
                            BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tq), Int32(hd), Int32(tk), 1,
                                        s.baseAddress!, Int32(tk), v.baseAddress! + h * hd, Int32(w), 0,
                                        o.baseAddress! + h * hd, Int32(w))
                        }
                    }
                }
            }
        }
    }
    return Tensor(uncheckedShape: [tq, w], data: out)
}

/// Columns `range` of a `[rows, W]` tensor, as a new `[rows, range.count]` tensor.
public func columns(_ x: Tensor, _ range: Range<Int>) throws -> Tensor {
    let w = x.lastDimension
    guard range.lowerBound >= 0, range.upperBound <= w else { throw TensorError("columns \(range) out of 0..<\(w) for \(x.shape)") }
    var out: [Float] = []
    out.reserveCapacity(x.rowCount * range.count)
    for r in 0..<x.rowCount { out += x.data[(r * w + range.lowerBound)..<(r * w + range.upperBound)] }
    return Tensor(uncheckedShape: [x.rowCount, range.count], data: out)
}
