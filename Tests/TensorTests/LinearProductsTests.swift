import CVectorMath
import Foundation
import Testing
@testable import Tensor

/// `linear`'s AVX2 products (`linear_products.h`, `LinearProducts.swift`) and the OpenBLAS forms they replace
/// for prefill shapes, against a naive Double product.
///
/// Tolerance: |y − exact| ≤ 1e-5 · Σ|x·w| per output (float32 accumulation, in a different order on each path,
/// over up to 4,099 terms; the relative error of such a sum stays near 1e-7 · √terms in practice).
@Suite("linear products")
struct LinearProductsTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] { WeightTests.values(n, seed: seed) }

    /// Worst |y − exact| / Σ|x·w| (+ |bias|) over the outputs of `x · wᵀ + bias`.
    static func worstError(_ y: Tensor, x: Tensor, w: Tensor, bias: Tensor?) -> Double {
        let rows = x.rowCount, k = x.lastDimension, o = w.shape[0]
        var worst = 0.0
        for i in 0..<rows { for j in 0..<o {
            var sum = Double(bias?.data[j] ?? 0), magnitude = abs(sum) + 1e-30
            for t in 0..<k {
                let p = Double(x.data[i * k + t]) * Double(w.data[j * k + t])
                sum += p; magnitude += abs(p)
            }
            worst = max(worst, abs(Double(y.data[i * o + j]) - sum) / magnitude)
        } }
        return worst
    }

    /// (rows, in, out): rows around the 16-row panels (2, 15, 17, 33, 128), depth past the 2,048 a pass covers
    /// (4,099: stored and reloaded accumulators), outputs around the 6-row blocks and over several tiles (252 rows
    /// at 1,024 inputs) split between workers (700).
    static let shapes = [(2, 1031, 5), (15, 1024, 7), (17, 1024, 13), (33, 4099, 19), (128, 1024, 3), (64, 1024, 700),
                         (5, 2050, 130)]

    @Test("the AVX2 linear products equal a naive product on odd shapes, float32 and f16, with and without bias",
          .enabled(if: LinearProducts.enabled, "this CPU lacks AVX2 or FMA (or STORYLOOM_LINEAR_PRODUCTS=openblas): the kernel is not used"))
    func ownProducts() throws {
        try LinearProducts.withoutBlockedProduct { try ownProductsOnThisThread() }
    }

    func ownProductsOnThisThread() throws {
        for (rows, k, o) in Self.shapes {
            #expect(LinearProducts.pays(rows: rows, inFeatures: k))
            let x = try Tensor(shape: [rows, k], data: Self.values(rows * k, seed: 21))
            let w = try Tensor(shape: [o, k], data: Self.values(o * k, seed: 22))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 23))
            let half = Weight(w).converted(to: .f16)
            let wideHalf = half.float32()
            for b in [bias, nil] {
                let y = try linear(x, weight: w, bias: b)
                let err = Self.worstError(y, x: x, w: w, bias: b)
                #expect(err < 1e-5, "float32 rows \(rows) in \(k) out \(o) bias \(b != nil): worst relative error \(err)")
                let yh = try linear(x, weight: half, bias: b)
                let errHalf = Self.worstError(yh, x: x, w: wideHalf, bias: b)
                #expect(errHalf < 1e-5, "f16 rows \(rows) in \(k) out \(o) bias \(b != nil): worst relative error \(errHalf)")
            }
        }
    }

    @Test("the AVX2 linear products give the same bits on one worker and on two",
          .enabled(if: LinearProducts.enabled, "this CPU lacks AVX2 or FMA (or STORYLOOM_LINEAR_PRODUCTS=openblas): the kernel is not used"))
    func threadCountIndependent() throws {
        let (rows, k, o) = (40, 2100, 300)
        let x = try Tensor(shape: [rows, k], data: Self.values(rows * k, seed: 31))
        let w = try Tensor(shape: [o, k], data: Self.values(o * k, seed: 32))
        let one = try LinearProducts.withoutBlockedProduct { try Threads.withLocalCount(1) { try linear(x, weight: w) } }
        let two = try LinearProducts.withoutBlockedProduct { try Threads.withLocalCount(2) { try linear(x, weight: w) } }
        #expect(one.data == two.data)
    }

    /// (rows, in, out) for the AVX-512 blocked product: rows around its 12-row blocks and past 128 (where the AVX2
    /// products stop), depth around its 384-deep passes (385, 800) and its 16-deep packing tiles (17), outputs around
    /// its 32-feature panels and 256-feature blocks (31, 33, 290), fewer outputs than workers' panels (5: split by rows),
    /// and prefill shapes it takes from the AVX2 products (24 and 64 rows from 1,024 inputs).
    static let gemmShapes = [(2, 17, 5), (13, 385, 33), (150, 800, 290), (257, 64, 31), (25, 1000, 64), (131, 768, 97),
                             (24, 1031, 40), (64, 2050, 70)]

    @Test("the AVX-512 blocked product equals a naive product on odd shapes, called directly with a seeded output",
          .enabled(if: storyloom_linear_gemm_available() != 0, "this CPU lacks AVX-512F: the blocked product is not used"))
    func blockedProductKernel() throws {
        for (rows, k, o) in Self.gemmShapes {
            let x = try Tensor(shape: [rows, k], data: Self.values(rows * k, seed: 51))
            let w = try Tensor(shape: [o, k], data: Self.values(o * k, seed: 52))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 53))
            // Seeded with the bias in a wider output (row stride o + 3), whose extra columns must stay untouched.
            let ldo = o + 3
            var out = [Float](repeating: 7, count: rows * ldo)
            for r in 0..<rows { for j in 0..<o { out[r * ldo + j] = bias.data[j] } }
            var scratch = [Float](repeating: 0, count: storyloom_linear_gemm_scratch_size())
            storyloom_linear_gemm(rows, k, x.data, o, w.data, &out, ldo, &scratch)
            var y = [Float](), untouched = true
            for r in 0..<rows {
                y += out[(r * ldo)..<(r * ldo + o)]
                untouched = untouched && out[(r * ldo + o)..<(r * ldo + ldo)].allSatisfy { $0 == 7 }
            }
            let err = Self.worstError(try Tensor(shape: [rows, o], data: y), x: x, w: w, bias: bias)
            #expect(err < 1e-5, "rows \(rows) in \(k) out \(o): worst relative error \(err)")
            #expect(untouched, "rows \(rows) in \(k) out \(o): wrote past its features")
        }
    }

    @Test("linear through the AVX-512 blocked product equals a naive product, float32 and f16, with and without bias, and gives the same bits on one worker and on two",
          .enabled(if: LinearProducts.gemmEnabled, "this CPU lacks AVX-512F, or OpenBLAS runs its own AVX-512 kernels (or STORYLOOM_LINEAR_PRODUCTS=openblas): linear does not use the blocked product"))
    func blockedProducts() throws {
        for (rows, k, o) in Self.gemmShapes {
            #expect(!LinearProducts.pays(rows: rows, inFeatures: k) && LinearProducts.gemmPays(rows: rows, inFeatures: k))
            let x = try Tensor(shape: [rows, k], data: Self.values(rows * k, seed: 61))
            let w = try Tensor(shape: [o, k], data: Self.values(o * k, seed: 62))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 63))
            let half = Weight(w).converted(to: .f16)
            let wideHalf = half.float32()
            for b in [bias, nil] {
                let y = try linear(x, weight: w, bias: b)
                let err = Self.worstError(y, x: x, w: w, bias: b)
                #expect(err < 1e-5, "float32 rows \(rows) in \(k) out \(o) bias \(b != nil): worst relative error \(err)")
                let yh = try linear(x, weight: half, bias: b)
                let errHalf = Self.worstError(yh, x: x, w: wideHalf, bias: b)
                #expect(errHalf < 1e-5, "f16 rows \(rows) in \(k) out \(o) bias \(b != nil): worst relative error \(errHalf)")
                let one = try Threads.withLocalCount(1) { try linear(x, weight: w, bias: b) }
                let two = try Threads.withLocalCount(2) { try linear(x, weight: w, bias: b) }
                #expect(one.data == two.data, "rows \(rows) in \(k) out \(o): one worker and two differ")
            }
        }
    }

    /// (in, out) for one row (decode): inputs around the 16- and 8-wide steps and their scalar tails (1, 7, 8, 9, 23,
    /// 776), outputs around the 4-row groups and the workers' 64-row bands (1, 3, 5, 130, 771).
    static let gemvShapes = [(1, 1), (7, 3), (8, 5), (9, 4), (23, 130), (776, 771), (3072, 130)]

    @Test("one row (decode) through the AVX2 gemv equals a naive product, with and without bias, the same bits on one worker and on two, and matches sgemv's path",
          .enabled(if: LinearProducts.enabled, "this CPU lacks AVX2 or FMA (or STORYLOOM_LINEAR_PRODUCTS=openblas): the kernel is not used"))
    func oneRow() throws {
        #expect(LinearProducts.gemvPays)
        for (k, o) in Self.gemvShapes {
            let x = try Tensor(shape: [1, k], data: Self.values(k, seed: 71))
            let w = try Tensor(shape: [o, k], data: Self.values(o * k, seed: 72))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 73))
            for b in [bias, nil] {
                let y = try linear(x, weight: w, bias: b)
                let err = Self.worstError(y, x: x, w: w, bias: b)
                #expect(err < 1e-5, "in \(k) out \(o) bias \(b != nil): worst relative error \(err)")
                let one = try Threads.withLocalCount(1) { try linear(x, weight: w, bias: b) }
                let two = try Threads.withLocalCount(2) { try linear(x, weight: w, bias: b) }
                #expect(one.data == two.data, "in \(k) out \(o): one worker and two differ")
                try LinearProducts.withOpenBLAS {
                    #expect(!LinearProducts.gemvPays)
                    let errBLAS = Self.worstError(try linear(x, weight: w, bias: b), x: x, w: w, bias: b)
                    #expect(errBLAS < 1e-5, "sgemv in \(k) out \(o) bias \(b != nil): worst relative error \(errBLAS)")
                }
            }
        }
    }

    @Test("the OpenBLAS forms for the same shapes (the path of CPUs without AVX2 + FMA) equal a naive product")
    func openBLASForms() throws {
        for (rows, k, o) in Self.shapes {
            let x = try Tensor(shape: [rows, k], data: Self.values(rows * k, seed: 41))
            let w = try Tensor(shape: [o, k], data: Self.values(o * k, seed: 42))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 43))
            let half = Weight(w).converted(to: .bf16)
            let wideHalf = half.float32()
            try LinearProducts.withOpenBLAS {
                #expect(!LinearProducts.pays(rows: rows, inFeatures: k))
                for b in [bias, nil] {
                    let err = Self.worstError(try linear(x, weight: w, bias: b), x: x, w: w, bias: b)
                    #expect(err < 1e-5, "float32 rows \(rows) in \(k) out \(o) bias \(b != nil): worst relative error \(err)")
                    let errHalf = Self.worstError(try linear(x, weight: half, bias: b), x: x, w: wideHalf, bias: b)
                    #expect(errHalf < 1e-5, "bf16 rows \(rows) in \(k) out \(o) bias \(b != nil): worst relative error \(errHalf)")
                }
            }
        }
    }
}
