import COpenBLAS

/// Keys and values of past positions for one decoder layer, for incremental (cached) decoding.
///
/// Rows are `width` (= heads × headDim) floats, appended in position order; `keyMask` marks
/// positions that may be attended to (0 for padding), as the attention mask of a full forward.
public struct KVCache: Sendable {
    public let width: Int
    public private(set) var keys: [Float] = []
    public private(set) var values: [Float] = []
    public private(set) var keyMask: [Bool] = []

    public init(width: Int) { self.width = width }

    /// Number of cached positions.
    public var count: Int { keyMask.count }

    /// Appends `rows` positions: keys and values read from `rowStride`-apart rows at the given offsets.
    public mutating func append(rows: Int, from base: UnsafePointer<Float>, rowStride: Int,
                                keyOffset: Int, valueOffset: Int, mask: [Bool]? = nil) {
        // No reserveCapacity here: it allocates exactly what it is asked for, so calling it on every decoded token
        // copied the whole cache each time (quadratic in the sequence); `append` grows the storage geometrically.
        for r in 0..<rows {
            let row = base + r * rowStride
            keys.append(contentsOf: UnsafeBufferPointer(start: row + keyOffset, count: width))
            values.append(contentsOf: UnsafeBufferPointer(start: row + valueOffset, count: width))
        }
        keyMask += mask ?? [Bool](repeating: true, count: rows)
    }
}

/// Multi-head attention of `newRows` query rows against every position in `cache`, where the
/// queries are the cache's last `newRows` positions (causal: query `i` sees keys `0…past+i`,
/// skipping masked keys).
///
/// - Parameters:
///   - query: `newRows` rows, `rowStride` floats apart, the query starting at `offset`.
///   - out: `[newRows, width]`, overwritten.
///   - scale: multiplies the scores (pass 1 when the query projection already holds it).
/// A single new row (decode) goes through `cblas_sgemv` per head.
public func cachedAttention(query: UnsafePointer<Float>, rowStride: Int, newRows: Int, cache: KVCache,
                            heads: Int, scale: Float, out: UnsafeMutablePointer<Float>) {
    let width = cache.width, hd = width / heads
    let total = cache.count, past = total - newRows
    guard newRows > 0, total > 0 else { return }
    // Additive mask per key: 0 or -inf for padding.
    let keyBias: [Float] = cache.keyMask.map { $0 ? 0 : -.infinity }
    let shared = CachedAttentionPointers(query: query, out: out)
    cache.keys.withUnsafeBufferPointer { kp in
        cache.values.withUnsafeBufferPointer { vp in
            keyBias.withUnsafeBufferPointer { bp in
                let k = UncheckedConstPointer(kp.baseAddress!), v = UncheckedConstPointer(vp.baseAddress!)
                let bias = UncheckedConstPointer(bp.baseAddress!)
                Threads.singleThreadedBLAS {
                    Threads.parallelFor(heads) { h in
                        var scores = [Float](repeating: 0, count: newRows * total)
                        scores.withUnsafeMutableBufferPointer { sp in
                            let s = sp.baseAddress!
                            let qh = shared.query + h * hd, kh = k.value + h * hd, vh = v.value + h * hd
                            let oh = shared.out + h * hd
                            if newRows == 1 {
                                BLAS.sgemv(CblasRowMajor, CblasNoTrans, Int32(total), Int32(hd), scale, kh, Int32(width),
                                            qh, 1, 0, s, 1)
                            } else {
                                BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(newRows), Int32(total), Int32(hd),
                                            scale, qh, Int32(rowStride), kh, Int32(width), 0, s, Int32(total))
                            }
                            for i in 0..<newRows {
                                let row = s + i * total
                                for j in 0..<total { row[j] += bias.value[j] }
                                let visible = past + i + 1
                                if visible < total { (row + visible).update(repeating: -.infinity, count: total - visible) }
                                softmaxRow(row, count: total)
                            }
                            if newRows == 1 {
                                BLAS.sgemv(CblasRowMajor, CblasTrans, Int32(total), Int32(hd), 1, vh, Int32(width),
                                            s, 1, 0, oh, 1)
                            } else {
                                BLAS.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(newRows), Int32(hd), Int32(total),
                                            1, s, Int32(total), vh, Int32(width), 0, oh, Int32(width))
                            }
                        }
                    }
                }
            }
        }
    }
}

private struct CachedAttentionPointers: @unchecked Sendable {
    let query: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
}

private struct UncheckedConstPointer: @unchecked Sendable {
    let value: UnsafePointer<Float>
    init(_ value: UnsafePointer<Float>) { self.value = value }
}
