import Foundation
import Testing
import Tensor

/// The tensor ops added for Stable Diffusion, against direct (naive) evaluations.
/// Tolerance 1e-4 absolute (float32, values of order 1).
@Suite("SD tensor ops vs naive loops")
struct SDOpsTests {
    static func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
        var g = TorchGenerator(seed: seed)
        return try g.randn(shape: shape)
    }

    /// (batch, query length, key length, heads, head dim, score budget, kernel): many blocks, lengths that are
    /// not whole tiles (6 query rows, 16 keys), a head dimension the fused kernels cannot take (4: sgemm), and
    /// Q, K, V as strided column ranges of one fused projection.
    static let attentionCases: [(Int, Int, Int, Int, Int, Int?, AttentionKernel)] = [
        (2, 37, 11, 3, 4, 25, .automatic), (2, 37, 11, 3, 8, 25, .sgemm), (2, 37, 19, 3, 8, 25, .fused),
        (1, 50, 77, 2, 40, nil, .fused), (2, 13, 33, 2, 24, 100, .fused), (1, 70, 70, 1, 16, nil, .fused),
    ]

    @Test("blocked attention equals the plain softmax(QKᵀ/√d)V, over many query blocks and unequal lengths",
          arguments: attentionCases.indices)
    func blockedAttentionMatchesNaive(_ index: Int) throws {
        let (b, tq, tk, heads, hd, budget, kernel) = Self.attentionCases[index]
        let width = heads * hd, stride = 3 * width + 5
        // One [rows, 3·width + 5] buffer per side: Q at column 0, K at `width`, V at `2·width`, as a fused QKV.
        let qkv = try Self.random([b * max(tq, tk), stride], seed: UInt64(index + 1))
        let kv = try Self.random([b * tk, stride], seed: UInt64(index + 11))
        func q(_ row: Int, _ c: Int) -> Float { qkv.data[row * stride + c] }
        func k(_ row: Int, _ c: Int) -> Float { kv.data[row * stride + width + c] }
        func v(_ row: Int, _ c: Int) -> Float { kv.data[row * stride + 2 * width + c] }
        var out = [Float](repeating: .nan, count: b * tq * width)
        qkv.data.withUnsafeBufferPointer { qp in
            kv.data.withUnsafeBufferPointer { kp in
                out.withUnsafeMutableBufferPointer { op in
                    blockedAttention(query: AttentionOperand(base: qp.baseAddress!, rowStride: stride),
                                     key: AttentionOperand(base: kp.baseAddress!, rowStride: stride, offset: width),
                                     value: AttentionOperand(base: kp.baseAddress!, rowStride: stride, offset: 2 * width),
                                     batch: b, queryLength: tq, keyLength: tk, heads: heads, headDim: hd,
                                     out: op.baseAddress!, outStride: width, maxScoreFloats: budget, kernel: kernel)
                }
            }
        }
        var worst: Float = 0
        for bi in 0..<b { for h in 0..<heads { for i in 0..<tq {
            var scores = (0..<tk).map { j in
                (0..<hd).reduce(Float(0)) { $0 + q(bi * tq + i, h * hd + $1) * k(bi * tk + j, h * hd + $1) }
                    / Float(hd).squareRoot()
            }
            let m = scores.max()!
            scores = scores.map { exp($0 - m) }
            let sum = scores.reduce(0, +)
            for d in 0..<hd {
                let expected = (0..<tk).reduce(Float(0)) { $0 + scores[$1] / sum * v(bi * tk + $1, h * hd + d) }
                let got = out[(bi * tq + i) * width + h * hd + d]
                worst = max(worst, got.isNaN ? .infinity : abs(expected - got))
            }
        } } }
        #expect(worst <= 1e-4, "max |Δ| = \(worst)")
    }

    @Test("the fused attention kernels run here (AVX2 + FMA), so the cases above test them, not only sgemm")
    func fusedAttentionIsAvailable() throws {
        try #require(CPUFeatures.current.avx2 && CPUFeatures.current.fma, "this CPU lacks AVX2 + FMA: the fused kernels cannot run (sgemm is used)")
        #expect(AttentionKernel.fusedAvailable(headDim: 40))
        #expect(!AttentionKernel.fusedAvailable(headDim: 4))
    }

    func naiveConv(_ x: Tensor, _ w: Tensor, _ bias: Tensor, stride: Int, pad: Padding2D) -> (shape: [Int], data: [Float]) {
        let (b, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, _, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + pad.top + pad.bottom - kh) / stride + 1, wo = (wd + pad.left + pad.right - kw) / stride + 1
        var out = [Float](repeating: 0, count: b * o * ho * wo)
        for bi in 0..<b { for oc in 0..<o { for oy in 0..<ho { for ox in 0..<wo {
            var s = bias.data[oc]
            for ci in 0..<c { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * stride - pad.top + ky, ix = ox * stride - pad.left + kx
                if iy >= 0 && iy < h && ix >= 0 && ix < wd {
                    s += x.data[((bi * c + ci) * h + iy) * wd + ix] * w.data[((oc * c + ci) * kh + ky) * kw + kx]
                }
            } } }
            out[((bi * o + oc) * ho + oy) * wo + ox] = s
        } } } }
        return ([b, o, ho, wo], out)
    }

    // The stride-1 "same width" cases (wo == w) unfold by shifting whole planes; the asymmetric and
    // over-padded ones check its zeroed columns and rows, 3×3 with no padding the line-by-line path.
    @Test("conv2d equals a direct convolution: 3×3 and 5×5 same, stride 2, asymmetric and over-padding, 1×1",
          arguments: [(3, 1, Padding2D.uniform(1)), (3, 2, Padding2D.uniform(1)), (3, 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
                      (1, 1, Padding2D.uniform(0)), (5, 1, Padding2D.uniform(2)), (3, 1, Padding2D.uniform(0)),
                      (3, 1, Padding2D(top: 1, left: 2, bottom: 1, right: 0)), (3, 1, Padding2D(top: 4, left: 0, bottom: 0, right: 2))])
    func convMatchesNaive(_ kernel: Int, _ stride: Int, _ pad: Padding2D) throws {
        let x = try Self.random([2, 3, 7, 6], seed: 4)
        let w = try Self.random([5, 3, kernel, kernel], seed: 5), bias = try Self.random([5], seed: 6)
        let ours = try conv2d(x, weight: w, bias: bias, stride: stride, padding: pad)
        let ref = naiveConv(x, w, bias, stride: stride, pad: pad)
        #expect(ours.shape == ref.shape)
        let worst = zip(ours.data, ref.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-4, "max |Δ| = \(worst)")
    }

    @Test("conv2d over several im2col bands (a wide input whose patches exceed the band budget)")
    func convBands() throws {
        // k·Wo = 576·512 floats per output row → 14-row bands → 5 bands for 70 rows.
        let x = try Self.random([1, 64, 70, 512], seed: 10)
        let w = try Self.random([2, 64, 3, 3], seed: 11), bias = try Self.random([2], seed: 12)
        let ours = try conv2d(x, weight: w, bias: bias, padding: .uniform(1))
        let ref = naiveConv(x, w, bias, stride: 1, pad: .uniform(1))
        #expect(ours.shape == ref.shape)
        let worst = zip(ours.data, ref.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-3, "max |Δ| = \(worst) (sums of 576 products)")
    }

    @Test("group norm (with fused SiLU) and nearest upsampling equal their definitions")
    func groupNormAndUpsample() throws {
        let x = try Self.random([2, 6, 3, 5], seed: 7)
        let w = try Self.random([6], seed: 8), b = try Self.random([6], seed: 9)
        let y = try groupNorm(x, groups: 3, weight: w, bias: b, eps: 1e-5, silu: true)
        var worst: Float = 0
        for bi in 0..<2 { for g in 0..<3 {
            let start = (bi * 6 + g * 2) * 15
            let values = Array(x.data[start..<(start + 30)])
            let mean = values.reduce(0, +) / 30
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 30
            for i in 0..<30 {
                let ch = g * 2 + i / 15
                let n = (values[i] - mean) / (variance + 1e-5).squareRoot() * w.data[ch] + b.data[ch]
                worst = max(worst, abs(n / (1 + exp(-n)) - y.data[start + i]))
            }
        } }
        #expect(worst <= 1e-4, "group norm max |Δ| = \(worst)")
        let up = try upsampleNearest(x, outHeight: 6, outWidth: 10)
        #expect(up.shape == [2, 6, 6, 10])
        let upIndex = ((1 * 6 + 4) * 6 + 5) * 10 + 7   // [1, 4, 5, 7] comes from [1, 4, 2, 3]
        let sourceIndex = ((1 * 6 + 4) * 3 + 2) * 5 + 3
        #expect(up.data[upIndex] == x.data[sourceIndex])
    }
}
