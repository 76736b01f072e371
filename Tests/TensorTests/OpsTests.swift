import CVectorMath
import Foundation
import Testing
@testable import Tensor

/// Each op against small known values or an independent naive computation in Double.
@Suite("Tensor ops")
struct OpsTests {
    /// Deterministic pseudo-random values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(s >> 11) / Double(1 << 53)) * 2 - 1
        }
    }

    static func maxDiff(_ a: [Float], _ b: [Double]) -> Double {
        zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    }

    @Test("linear: sgemm rows and the sgemv single row agree with a naive product")
    func linearMatchesNaive() throws {
        let (m, k, n) = (5, 7, 3)
        let x = try Tensor(shape: [m, k], data: Self.values(m * k, seed: 1))
        let w = try Tensor(shape: [n, k], data: Self.values(n * k, seed: 2))
        let b = try Tensor(shape: [n], data: [0.5, -1, 2])
        let y = try linear(x, weight: w, bias: b)
        var naive = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            naive[i * n + j] = Double(b.data[j]) + (0..<k).reduce(0.0) { $0 + Double(x.data[i * k + $1]) * Double(w.data[j * k + $1]) }
        } }
        #expect(y.shape == [m, n])
        #expect(Self.maxDiff(y.data, naive) < 1e-5)
        let one = try linear(try Tensor(shape: [1, k], data: Array(x.data[0..<k])), weight: w, bias: b)
        #expect(Self.maxDiff(one.data, Array(naive[0..<n])) < 1e-5)
        let noBias = try linear(try Tensor(shape: [1, 1, k], data: Array(x.data[0..<k])), weight: w)
        #expect(noBias.shape == [1, 1, n])
        #expect(Self.maxDiff(noBias.data, (0..<n).map { naive[$0] - Double(b.data[$0]) }) < 1e-5)
        #expect(throws: TensorError.self) { try linear(x, weight: try Tensor(shape: [3, 6], data: Self.values(18, seed: 3))) }
    }

    /// The prefill-shaped products (`transposedProductPays`: 2–128 rows, ≥ 1,024 inputs) run as `(W · xᵀ)ᵀ`;
    /// rows and widths on both sides of the rule, with and without bias, against a naive Double product.
    /// Tolerance 1e-5 · Σ|x·w| per output (float32 accumulation over up to 1,031 terms).
    @Test("linear: the transposed product for prefill shapes equals a naive product",
          arguments: [(2, 1031, 5), (64, 1024, 37), (128, 1024, 3), (129, 1024, 3), (7, 1023, 9)])
    func linearTransposedProduct(m: Int, k: Int, n: Int) throws {
        #expect(transposedProductPays(rows: m, inFeatures: k) == (m <= 128 && k >= 1024))
        let x = try Tensor(shape: [m, k], data: Self.values(m * k, seed: 11))
        let w = try Tensor(shape: [n, k], data: Self.values(n * k, seed: 12))
        let b = try Tensor(shape: [n], data: Self.values(n, seed: 13))
        for bias in [b, nil] {
            let y = try linear(x, weight: w, bias: bias)
            #expect(y.shape == [m, n])
            var worst = 0.0
            for i in 0..<m { for j in 0..<n {
                var sum = Double(bias?.data[j] ?? 0), magnitude = abs(sum)
                for t in 0..<k {
                    let p = Double(x.data[i * k + t]) * Double(w.data[j * k + t])
                    sum += p; magnitude += abs(p)
                }
                worst = max(worst, abs(Double(y.data[i * n + j]) - sum) / magnitude)
            } }
            #expect(worst < 1e-5, "rows \(m), in \(k), out \(n), bias \(bias != nil): worst relative error \(worst)")
        }
    }

    @Test("matmul: plain, transposed and single-row forms")
    func matmulForms() throws {
        let a = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [3, 2], data: [7, 8, 9, 10, 11, 12])
        #expect(try matmul(a, b).data == [58, 64, 139, 154])
        let bt = try Tensor(shape: [2, 3], data: [7, 9, 11, 8, 10, 12])
        #expect(try matmul(a, bt, transposeB: true).data == [58, 64, 139, 154])
        let row = try Tensor(shape: [1, 3], data: [1, 2, 3])
        #expect(try matmul(row, b).data == [58, 64])
        #expect(try matmul(row, bt, transposeB: true).data == [58, 64])
        #expect(throws: TensorError.self) { try matmul(a, a) }
    }

    @Test("GELU (erf), QuickGELU, SiLU and ReLU at known points")
    func activations() throws {
        let xs: [Float] = [-6, -3, -1.5, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 2.5, 4, 9]
        let x = try Tensor(shape: [xs.count], data: xs)
        let gelu = activated(x, .gelu).data
        let quick = activated(x, .quickGELU).data
        let silu = activated(x, .silu).data
        let relu = activated(x, .relu).data
        let d = xs.map(Double.init)
        #expect(Self.maxDiff(gelu, d.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }) < 2e-6)
        #expect(Self.maxDiff(quick, d.map { $0 / (1 + exp(-1.702 * $0)) }) < 2e-6)
        #expect(Self.maxDiff(silu, d.map { $0 / (1 + exp(-$0)) }) < 2e-6)
        #expect(relu == xs.map { max($0, 0) })
        // A value from torch: F.gelu(torch.tensor(1.0)) = 0.8413447.
        #expect(abs(gelu[8] - 0.8413447) < 1e-6)
    }

    @Test("exp and erf over their ranges, and the vector path against the portable one")
    func expErf() {
        var worstExp = 0.0, worstErf = 0.0
        let xs = (-2000...2000).map { Float($0) * 0.04 }
        for x in xs {
            let e = Double(storyloom_exp(x)), r = exp(Double(x))
            worstExp = max(worstExp, abs(e - r) / r)
            worstErf = max(worstErf, abs(Double(storyloom_erf(x / 10)) - erf(Double(x / 10))))
        }
        #expect(worstExp < 5e-7, "exp relative error \(worstExp)")
        #expect(worstErf < 3e-7, "erf absolute error \(worstErf)")
        #expect(storyloom_exp(-200) == 0)
        #expect(storyloom_exp(200) == .infinity)
        #expect(storyloom_exp(.nan).isNaN)
        #expect(storyloom_erf(10) == 1 && storyloom_erf(-10) == -1)
        // The kernels (eight lanes where the CPU has AVX2 + FMA, and an odd count so the tail runs too)
        // against the one-value portable path.
        var shifted = xs + [-200, 200]
        let sum = storyloom_exp_shifted_sum(&shifted, shifted.count, 1.5)
        var expected = 0.0, worst = 0.0
        for (i, x) in (xs + [-200, 200]).enumerated() {
            let r = storyloom_exp(x - 1.5)
            expected += Double(r)
            if r.isFinite { worst = max(worst, abs(Double(shifted[i] - r)) / max(Double(r), 1e-30)) }
            else { #expect(shifted[i] == r) }
        }
        #expect(worst < 1e-6, "vector exp vs portable: relative \(worst)")
        #expect(sum == .infinity && expected == .infinity)
        var gelu = xs.map { $0 / 10 }
        storyloom_gelu(&gelu, gelu.count)
        for (i, x) in xs.enumerated() {
            let v = x / 10, r = 0.5 * v * (1 + storyloom_erf(v * 0.70710678118654752))
            #expect(abs(gelu[i] - r) <= 1e-6 * max(1, abs(r)), "gelu(\(v)): \(gelu[i]) vs \(r)")
        }
    }

    @Test("the element-wise kernels' sixteen-lane path (AVX-512F) gives the AVX2 path's bits: GELU, quick GELU, SiLU, GEGLU",
          .enabled(if: storyloom_vector_math_kernels_available() == 2, "this CPU lacks AVX-512F: the sixteen-lane path is not used"))
    func sixteenLanes() {
        // Odd lengths (the 8-lane and scalar tails), values across exp's clamps, and NaN, ±inf, ±0.
        var xs = (-3001...3001).map { Float($0) * 0.037 }
        xs += [.nan, .infinity, -.infinity, 1e30, -1e30, -0.0, 0, 88.8, -88.8, 87.4, -87.4]
        func both(_ body: (Int32, inout [Float]) -> Void) -> ([Float], [Float]) {
            var a = xs, b = xs
            body(1, &a); body(2, &b)
            return (a, b)
        }
        func same(_ pair: ([Float], [Float]), _ what: String) {
            let differing = zip(pair.0, pair.1).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(differing == 0, "\(what): \(differing) of \(pair.0.count) values differ between the AVX2 and AVX-512 paths")
        }
        same(both { storyloom_gelu_with($0, &$1, $1.count) }, "GELU")
        same(both { storyloom_quick_gelu_with($0, &$1, $1.count) }, "quick GELU")
        same(both { storyloom_affine_silu_with($0, &$1, $1.count, 0.7, 0.1) }, "SiLU")
        let d = 61, rows = xs.count / (2 * d)
        same(both { kernel, out in
            let src = out
            storyloom_geglu_with(kernel, src, &out, rows, d)
        }, "GEGLU")
    }

    @Test("GroupNorm's statistics: mean and centred squares against float64 sums, over lengths that are not whole vectors",
          arguments: [0, 1, 15, 16, 17, 40_961])
    func meanAndSquares(_ n: Int) throws {
        var g = TorchGenerator(seed: UInt64(n + 3))
        let x = try g.randn(shape: [max(n, 1)]).data.prefix(n).map { $0 * 3 + 1 }
        var mean: Float = .nan, squares: Double = .nan
        storyloom_mean_and_squares(x, n, &mean, &squares)
        let m = n == 0 ? 0 : x.reduce(0.0) { $0 + Double($1) } / Double(n)
        let sq = x.reduce(0.0) { let d = Double($1) - Double(Float(m)); return $0 + d * d }
        #expect(abs(Double(mean) - m) <= 1e-6 * max(1, abs(m)), "mean \(mean) vs \(m)")
        #expect(abs(squares - sq) <= 1e-5 * max(1, sq), "squares \(squares) vs \(sq)")
    }

    @Test("GEGLU: the first half times GELU of the second half")
    func gegluKnown() throws {
        let x = try Tensor(shape: [2, 1, 4], data: [2, -1, 1, 0, 0.5, 3, -1, 2])
        let y = try geglu(x)
        #expect(y.shape == [2, 1, 2])
        let g = { (v: Double) in 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }
        #expect(Self.maxDiff(y.data, [2 * g(1), -1 * g(0), 0.5 * g(-1), 3 * g(2)]) < 2e-6)
        #expect(throws: TensorError.self) { try geglu(Tensor(zeros: [2, 3])) }
    }

    @Test("layer norm with affine parameters")
    func layerNormKnown() throws {
        let x = try Tensor(shape: [2, 4], data: [1, 2, 3, 4, -2, 0, 0, 2])
        let y = try layerNorm(x, weight: try Tensor(shape: [4], data: [1, 2, 1, 1]),
                              bias: try Tensor(shape: [4], data: [0, 0, 0, 1]), eps: 1e-5)
        // Row 1: mean 2.5, var 1.25; row 2: mean 0, var 2.
        let s1 = 1 / (1.25 + 1e-5).squareRoot(), s2 = 1 / (2 + 1e-5).squareRoot()
        let expected = [-1.5 * s1, -0.5 * s1 * 2, 0.5 * s1, 1.5 * s1 + 1, -2 * s2, 0, 0, 2 * s2 + 1]
        #expect(Self.maxDiff(y.data, expected) < 1e-6)
        #expect(throws: TensorError.self) { try layerNorm(x, weight: Tensor(zeros: [3]), bias: Tensor(zeros: [4]), eps: 1e-5) }
    }

    @Test("softmax rows, masked entries, residual add")
    func softmaxAndAdd() throws {
        var x = try Tensor(shape: [2, 3], data: [1, 2, 3, 1000, 1000, -.infinity])
        softmaxLastDimension(&x)
        let e = [exp(-2.0), exp(-1.0), 1.0], s = e.reduce(0, +)
        #expect(Self.maxDiff(x.data, e.map { $0 / s } + [0.5, 0.5, 0]) < 1e-6)
        let a = try Tensor(shape: [3], data: [1, 2, 3])
        #expect(try add(a, a).data == [2, 4, 6])
        #expect(throws: TensorError.self) { try add(a, Tensor(zeros: [4])) }
    }

    /// Naive attention in Double for comparison.
    static func naiveAttention(q: [Float], k: [Float], v: [Float], b: Int, t: Int, h: Int, d: Int, causal: Bool) -> [Double] {
        let hd = d / h
        var out = [Double](repeating: 0, count: b * t * d)
        for bi in 0..<b { for hi in 0..<h { for i in 0..<t {
            var scores = [Double](repeating: -.infinity, count: t)
            for j in 0..<t where !causal || j <= i {
                scores[j] = (0..<hd).reduce(0.0) { $0 + Double(q[(bi * t + i) * d + hi * hd + $1]) * Double(k[(bi * t + j) * d + hi * hd + $1]) } / Double(hd).squareRoot()
            }
            let m = scores.max()!
            let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }
            let s = e.reduce(0, +)
            for c in 0..<hd {
                out[(bi * t + i) * d + hi * hd + c] = (0..<t).reduce(0.0) { $0 + e[$1] / s * Double(v[(bi * t + $1) * d + hi * hd + c]) }
            }
        } } }
        return out
    }

    @Test("multi-head attention, bidirectional and causal, batched", arguments: [false, true])
    func attention(causal: Bool) throws {
        let (b, t, h, d) = (3, 5, 2, 8)
        let q = Self.values(b * t * d, seed: 11), k = Self.values(b * t * d, seed: 12), v = Self.values(b * t * d, seed: 13)
        let out = try multiHeadAttention(query: Tensor(shape: [b, t, d], data: q), key: Tensor(shape: [b, t, d], data: k),
                                         value: Tensor(shape: [b, t, d], data: v), batch: b, heads: h, causal: causal)
        #expect(Self.maxDiff(out.data, Self.naiveAttention(q: q, k: k, v: v, b: b, t: t, h: h, d: d, causal: causal)) < 1e-5)
        if causal {
            // The first token attends only to itself: its output is its own value.
            #expect(Self.maxDiff(Array(out.data[0..<d]), v[0..<d].map(Double.init)) < 1e-6)
        }
    }

    @Test("attention with 2 threads equals 1 thread")
    func attentionThreads() throws {
        let (b, t, h, d) = (2, 9, 4, 16)
        let q = try Tensor(shape: [b * t, d], data: Self.values(b * t * d, seed: 21))
        // Thread-local widths: `Threads.set` here would change the thread count under parallel tests.
        let one = try Threads.withLocalCount(1) {
            try multiHeadAttention(query: q, key: q, value: q, batch: b, heads: h, causal: true)
        }
        let two = try Threads.withLocalCount(2) {
            try multiHeadAttention(query: q, key: q, value: q, batch: b, heads: h, causal: true)
        }
        #expect(one.data == two.data)
    }

    @Test("patch embedding equals a naive stride-p convolution")
    func patchEmbeddingMatchesConv() throws {
        let (b, c, hgt, wid, p, d) = (2, 3, 8, 12, 4, 5)
        let img = Self.values(b * c * hgt * wid, seed: 31), w = Self.values(d * c * p * p, seed: 32)
        let bias: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5]
        let out = try patchEmbedding(Tensor(shape: [b, c, hgt, wid], data: img), weight: Tensor(shape: [d, c, p, p], data: w),
                                     bias: Tensor(shape: [d], data: bias))
        let gh = hgt / p, gw = wid / p
        #expect(out.shape == [b, gh * gw, d])
        var naive: [Double] = []
        for bi in 0..<b { for py in 0..<gh { for px in 0..<gw { for o in 0..<d {
            var s = Double(bias[o])
            for ci in 0..<c { for y in 0..<p { for x in 0..<p {
                s += Double(img[((bi * c + ci) * hgt + py * p + y) * wid + px * p + x]) * Double(w[((o * c + ci) * p + y) * p + x])
            } } }
            naive.append(s)
        } } } }
        #expect(Self.maxDiff(out.data, naive) < 1e-5)
        #expect(throws: TensorError.self) { try patchEmbedding(Tensor(zeros: [1, 3, 10, 8]), weight: Tensor(zeros: [d, 3, 4, 4])) }
    }

    @Test("shape checks")
    func shapes() throws {
        #expect(throws: TensorError.self) { try Tensor(shape: [2, 3], data: [1, 2]) }
        let t = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        #expect(try t.reshaped([3, 2]).shape == [3, 2])
        #expect(throws: TensorError.self) { try t.reshaped([4]) }
        #expect(try t.gatherRows([1, 0, 1]).data == [4, 5, 6, 1, 2, 3, 4, 5, 6])
        #expect(throws: TensorError.self) { try t.gatherRows([2]) }
    }
}
