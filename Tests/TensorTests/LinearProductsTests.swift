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
        let one = try Threads.withLocalCount(1) { try linear(x, weight: w) }
        let two = try Threads.withLocalCount(2) { try linear(x, weight: w) }
        #expect(one.data == two.data)
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
