import Foundation
import Testing
@testable import Tensor

/// The fused channel products equal the permute → `linear` → permute (→ add) they replace, computed
/// naively here in double. Tolerance: 1e-5 · Σ|x·w| per output (float32 sums of the same products in
/// another order); f16 weights are compared with their widened values, so the same bound holds.
@Suite("channel products")
struct ChannelProductsTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] { WeightTests.values(n, seed: seed) }

    /// `[B, C, H, W]` → `[B·H·W, C]` rows, as `x.permute(0, 2, 3, 1)`.
    static func tokens(_ x: Tensor) -> [Float] {
        let (b, c, n) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var out = [Float](repeating: 0, count: x.count)
        for bi in 0..<b { for ci in 0..<c { for i in 0..<n { out[(bi * n + i) * c + ci] = x.data[(bi * c + ci) * n + i] } } }
        return out
    }

    /// Naive `rows · wᵀ + bias` in double, with Σ|x·w| per output.
    static func product(_ rows: [Float], _ w: Tensor, _ bias: Tensor?) -> (value: [Double], magnitude: [Double]) {
        let (o, k) = (w.shape[0], w.shape[1]), r = rows.count / k
        var value = [Double](repeating: 0, count: r * o), magnitude = value
        for i in 0..<r {
            for j in 0..<o {
                var s = Double(bias?.data[j] ?? 0), m = abs(s) + 1e-30
                for l in 0..<k {
                    let p = Double(rows[i * k + l]) * Double(w.data[j * k + l])
                    s += p; m += abs(p)
                }
                value[i * o + j] = s; magnitude[i * o + j] = m
            }
        }
        return (value, magnitude)
    }

    @Test("linearFromChannels equals the permutation then linear (f32 and f16 weights, odd sizes, with and without bias)",
          arguments: [Weight.DType.f32, .f16])
    func fromChannels(dtype: Weight.DType) throws {
        for (b, c, h, w, o) in [(1, 3, 1, 1, 2), (2, 5, 3, 7, 9), (3, 17, 4, 5, 11)] {
            let x = try Tensor(shape: [b, c, h, w], data: Self.values(b * c * h * w, seed: 7))
            let weight = WeightTests.halfWeight([o, c], .f32, seed: UInt64(o * c)).converted(to: dtype)
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 9))
            for bb in [bias, nil] {
                let got = try linearFromChannels(x, weight: weight, bias: bb)
                #expect(got.shape == [b * h * w, o])
                let (want, mag) = Self.product(Self.tokens(x), weight.float32(), bb)
                for i in want.indices {
                    #expect(abs(Double(got.data[i]) - want[i]) <= 1e-5 * mag[i], "\(dtype) \([b, c, h, w]) → \(o) at \(i)")
                }
            }
        }
    }

    @Test("linearToChannels equals linear then the permutation back plus the residual", arguments: [Weight.DType.f32, .f16])
    func toChannels(dtype: Weight.DType) throws {
        for (b, c, h, w, o) in [(1, 2, 1, 1, 3), (2, 9, 3, 7, 5), (3, 11, 4, 5, 17)] {
            let n = h * w
            let rows = Self.values(b * n * c, seed: 11)
            let tokens = try Tensor(shape: [b * n, c], data: rows)
            let weight = WeightTests.halfWeight([o, c], .f32, seed: UInt64(o + c)).converted(to: dtype)
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 13))
            let residual = try Tensor(shape: [b, o, h, w], data: Self.values(b * o * n, seed: 17))
            for (bb, res) in [(bias, residual), (nil, residual), (bias, nil), (nil, nil)] as [(Tensor?, Tensor?)] {
                let got = try linearToChannels(tokens, weight: weight, bias: bb, batch: b, height: h, width: w, adding: res)
                #expect(got.shape == [b, o, h, w])
                let (value, mag) = Self.product(rows, weight.float32(), bb)
                for bi in 0..<b {
                    for j in 0..<o {
                        for i in 0..<n {
                            let at = (bi * o + j) * n + i, from = (bi * n + i) * o + j
                            let want = value[from] + Double(res?.data[at] ?? 0)
                            #expect(abs(Double(got.data[at]) - want) <= 1e-5 * (mag[from] + abs(want)),
                                    "\(dtype) \(b)×\(n)×\(c) → \(o) at \(at)")
                        }
                    }
                }
            }
        }
        // Shapes that do not fit are refused, naming what was expected.
        let tokens = try Tensor(shape: [6, 4], data: Self.values(24, seed: 1))
        let weight = WeightTests.halfWeight([3, 4], .f32, seed: 2)
        #expect(throws: TensorError.self) { try linearToChannels(tokens, weight: weight, batch: 1, height: 2, width: 2) }
        #expect(throws: TensorError.self) {
            try linearToChannels(tokens, weight: weight, batch: 1, height: 2, width: 3, adding: Tensor(shape: [1, 4, 2, 3], data: Self.values(24, seed: 3)))
        }
    }

    @Test("addLinear accumulates x · wᵀ + bias into h (sgemm path, single row, f16 fallback)", arguments: [Weight.DType.f32, .f16])
    func accumulate(dtype: Weight.DType) throws {
        for (rows, k, o) in [(1, 5, 3), (7, 13, 9), (33, 40, 24)] {
            let xs = Self.values(rows * k, seed: 19)
            let x = try Tensor(shape: [rows, k], data: xs)
            let weight = WeightTests.halfWeight([o, k], .f32, seed: UInt64(rows + k)).converted(to: dtype)
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 23))
            let start = Self.values(rows * o, seed: 29)
            for bb in [bias, nil] {
                var h = try Tensor(shape: [rows, o], data: start)
                try addLinear(x, weight: weight, bias: bb, to: &h)
                let (value, mag) = Self.product(xs, weight.float32(), bb)
                for i in value.indices {
                    let want = value[i] + Double(start[i])
                    #expect(abs(Double(h.data[i]) - want) <= 1e-5 * (mag[i] + abs(want)), "\(dtype) \(rows)×\(k) → \(o) at \(i)")
                }
            }
        }
        var h = try Tensor(shape: [2, 3], data: Self.values(6, seed: 1))
        #expect(throws: TensorError.self) {
            try addLinear(Tensor(shape: [3, 4], data: Self.values(12, seed: 2)), weight: WeightTests.halfWeight([3, 4], .f32, seed: 3), to: &h)
        }
    }
}
