import CVectorMath
import Foundation
import Testing
@testable import Tensor

/// The AVX-512 products around a convolution (`storyloom_weight_product` for `weight · patches`,
/// `storyloom_gemm_strided` for an image transformer's projections and `addLinear`): each kernel against a naive
/// Double product with strided operands, then `conv2d`, `linearFromChannels`, `linearToChannels` and `addLinear`
/// through them against the OpenBLAS path on the same inputs.
///
/// Tolerance: 1e-6 of the magnitude sum Σ|u·v| (+ |seed|) for the kernels (float32 FMAs over up to 1,000 terms),
/// 1e-5 of it against OpenBLAS (two float32 orders of the same sum; the magnitude is the same computation on |inputs|,
/// which for the chained projections bounds each stage's terms). Skipped where the CPU lacks AVX-512F or
/// OpenBLAS runs its own AVX-512 kernels: the products are not used there.
@Suite("convolution products")
struct ConvolutionProductsTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] { WeightTests.values(n, seed: seed) }

    /// (rows, depth, cols): rows around the 8-row blocks and their tails (1, 7, 9, 33), columns around the 32-column
    /// panels (1, 31, 33, 70), depths from 1 to past 384.
    static let shapes = [(1, 1, 1), (7, 5, 31), (9, 130, 33), (33, 64, 70), (16, 385, 64), (40, 1000, 3)]

    @Test("storyloom_weight_product equals a naive product with strided operands, overwriting and accumulating",
          .enabled(if: storyloom_weight_product_available() != 0, "this CPU lacks AVX-512F: the kernel is not used"))
    func weightProductKernel() throws {
        for (rows, depth, cols) in Self.shapes {
            let ldv = cols + 5, ldm = cols + 3
            let u = Self.values(rows * depth, seed: 81), v = Self.values(depth * ldv, seed: 82)
            let seed = Self.values(rows * ldm, seed: 83)
            for accumulate in [false, true] {
                var m = accumulate ? seed : [Float](repeating: .nan, count: rows * ldm)
                // The columns past `cols` must stay as they were.
                for r in 0..<rows { for j in cols..<ldm { m[r * ldm + j] = 7 } }
                storyloom_weight_product(rows, cols, depth, u, v, ldv, &m, ldm, accumulate ? 1 : 0)
                var worst = 0.0, untouched = true
                for i in 0..<rows {
                    for j in 0..<cols {
                        var sum = accumulate ? Double(seed[i * ldm + j]) : 0, magnitude = abs(sum)
                        for k in 0..<depth {
                            let p = Double(u[i * depth + k]) * Double(v[k * ldv + j])
                            sum += p; magnitude += abs(p)
                        }
                        worst = max(worst, abs(Double(m[i * ldm + j]) - sum) / max(magnitude, 1e-30))
                    }
                    untouched = untouched && m[(i * ldm + cols)..<(i * ldm + ldm)].allSatisfy { $0 == 7 }
                }
                #expect(worst < 1e-6, "\(rows) × \(depth) × \(cols) accumulate \(accumulate): worst relative error \(worst)")
                #expect(untouched, "\(rows) × \(depth) × \(cols): wrote past its columns")
            }
        }
    }

    @Test("storyloom_gemm_strided equals a naive product in each layout of x and w",
          .enabled(if: storyloom_linear_gemm_available() != 0, "this CPU lacks AVX-512F: the blocked product is not used"))
    func stridedKernel() throws {
        for (rows, depth, features) in [(13, 385, 33), (2, 17, 5), (150, 800, 290), (25, 64, 64)] {
            for xDepthMajor in [false, true] {
                for wDepthMajor in [false, true] {
                    // Strides wider than the operand: x's rows (or depth rows) and w's, 3 floats of slack.
                    let ldx = (xDepthMajor ? rows : depth) + 3, ldw = (wDepthMajor ? features : depth) + 3
                    let x = Self.values((xDepthMajor ? depth : rows) * ldx, seed: 91)
                    let w = Self.values((wDepthMajor ? depth : features) * ldw, seed: 92)
                    func xAt(_ r: Int, _ k: Int) -> Float { xDepthMajor ? x[k * ldx + r] : x[r * ldx + k] }
                    func wAt(_ f: Int, _ k: Int) -> Float { wDepthMajor ? w[k * ldw + f] : w[f * ldw + k] }
                    let seed = Self.values(rows * features, seed: 93)
                    var out = seed
                    var scratch = [Float](repeating: 0, count: storyloom_linear_gemm_scratch_size())
                    storyloom_gemm_strided(rows, depth, x, ldx, xDepthMajor ? 1 : 0, features, w, ldw, wDepthMajor ? 1 : 0,
                                           &out, features, &scratch)
                    var worst = 0.0
                    for r in 0..<rows { for f in 0..<features {
                        var sum = Double(seed[r * features + f]), magnitude = abs(sum)
                        for k in 0..<depth {
                            let p = Double(xAt(r, k)) * Double(wAt(f, k))
                            sum += p; magnitude += abs(p)
                        }
                        worst = max(worst, abs(Double(out[r * features + f]) - sum) / max(magnitude, 1e-30))
                    } }
                    #expect(worst < 1e-6, "\(rows) × \(depth) × \(features), x depth-major \(xDepthMajor), w depth-major \(wDepthMajor): worst relative error \(worst)")
                }
            }
        }
    }

    /// Max over elements of |a − b| / magnitude, the magnitude being the same computation on |inputs| (Σ|x·w| +
    /// |bias| + |residual| per output).
    static func difference(_ a: Tensor, _ b: Tensor, magnitude: Tensor) -> Float {
        var worst: Float = 0
        for i in a.data.indices { worst = max(worst, abs(a.data[i] - b.data[i]) / (magnitude.data[i] + 1e-30)) }
        return worst
    }

    static func absolute(_ t: Tensor) -> Tensor { Tensor(uncheckedShape: t.shape, data: t.data.map(abs)) }

    /// (batch, in, out, size, kernel, stride, padding, f16 weight): a 1×1 kernel on a 64×64 image (one product per
    /// image), on small images (several per product), a stride-2 3×3 (im2col), a `conv_in`-like 4-channel input, an
    /// output count off the 8-row blocks (33), 8 outputs (below the 32 the kernel takes: OpenBLAS), and one image of
    /// 25 outputs (a single 32-column panel: the workers split the output channels instead).
    static let convCases: [(Int, Int, Int, Int, Int, Int, Int, Bool)] = [
        (2, 20, 40, 64, 1, 1, 0, false), (3, 33, 35, 8, 1, 1, 0, true), (2, 16, 33, 17, 3, 2, 1, false),
        (1, 4, 40, 20, 3, 1, 1, false), (2, 24, 8, 9, 3, 1, 1, false), (1, 70, 64, 12, 3, 2, 1, true),
        (1, 20, 48, 5, 3, 1, 1, false),
    ]

    @Test("conv2d through the AVX-512 kernel equals the OpenBLAS path, and gives the same bits on one worker and on two",
          .enabled(if: LinearProducts.weightProductPays(rows: 32), "this CPU lacks AVX-512F, or OpenBLAS runs its own AVX-512 kernels (or STORYLOOM_LINEAR_PRODUCTS=openblas): conv2d does not use the kernel"))
    func convolutions() throws {
        for (b, c, o, size, kernel, stride, pad, half) in Self.convCases {
            let x = try Tensor(shape: [b, c, size, size], data: Self.values(b * c * size * size, seed: 101))
            let w = try Tensor(shape: [o, c, kernel, kernel], data: Self.values(o * c * kernel * kernel, seed: 102))
            let weight = half ? Weight(w).converted(to: .f16) : Weight(w)
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 103))
            for withBias in [true, false] {
                func run(_ x: Tensor, _ weight: Weight, _ bias: Tensor) throws -> Tensor {
                    try conv2d(x, weight: weight, bias: withBias ? bias : nil, stride: stride, padding: .uniform(pad),
                               algorithm: .im2col)
                }
                func run() throws -> Tensor { try run(x, weight, bias) }
                let own = try run()
                let reference = try LinearProducts.withOpenBLAS { try run() }
                let magnitude = try LinearProducts.withOpenBLAS {
                    try run(Self.absolute(x), Weight(Self.absolute(weight.float32())), Self.absolute(bias))
                }
                let err = Self.difference(own, reference, magnitude: magnitude)
                #expect(err < 1e-5, "conv \(b)×\(c)→\(o) \(size)² k\(kernel) s\(stride) bias \(withBias): difference \(err)")
                let one = try Threads.withLocalCount(1) { try run() }
                let two = try Threads.withLocalCount(2) { try run() }
                #expect(one.data == two.data, "conv \(b)×\(c)→\(o) \(size)²: one worker and two differ")
            }
        }
    }

    @Test("linearFromChannels, linearToChannels and addLinear through the blocked product equal the OpenBLAS path",
          .enabled(if: LinearProducts.blockedPays(rows: 2, features: 1), "this CPU lacks AVX-512F, or OpenBLAS runs its own AVX-512 kernels (or STORYLOOM_LINEAR_PRODUCTS=openblas): they do not use the blocked product"))
    func projections() throws {
        for (b, c, o, h, w) in [(2, 20, 33, 9, 7), (1, 64, 40, 16, 16), (3, 5, 3, 4, 5)] {
            let x = try Tensor(shape: [b, c, h, w], data: Self.values(b * c * h * w, seed: 111))
            let weight = try Tensor(shape: [o, c], data: Self.values(o * c, seed: 112))
            let back = try Tensor(shape: [c, o], data: Self.values(o * c, seed: 113))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 114))
            let biasBack = try Tensor(shape: [c], data: Self.values(c, seed: 115))
            let square = try Tensor(shape: [o, o], data: Self.values(o * o, seed: 116))
            for withBias in [true, false] {
                func run(_ x: Tensor, _ weight: Tensor, _ back: Tensor, _ square: Tensor, _ bias: Tensor,
                         _ biasBack: Tensor) throws -> (Tensor, Tensor, Tensor) {
                    let tokens = try linearFromChannels(x, weight: Weight(weight), bias: withBias ? bias : nil)
                    let image = try linearToChannels(tokens, weight: Weight(back), bias: withBias ? biasBack : nil,
                                                     batch: b, height: h, width: w, adding: x)
                    var sum = tokens
                    try addLinear(tokens, weight: Weight(square), bias: withBias ? bias : nil, to: &sum)
                    return (tokens, image, sum)
                }
                func run() throws -> (Tensor, Tensor, Tensor) { try run(x, weight, back, square, bias, biasBack) }
                let own = try run()
                let reference = try LinearProducts.withOpenBLAS { try run() }
                let magnitude = try LinearProducts.withOpenBLAS {
                    try run(Self.absolute(x), Self.absolute(weight), Self.absolute(back), Self.absolute(square),
                            Self.absolute(bias), Self.absolute(biasBack))
                }
                for (name, a, r, m) in [("linearFromChannels", own.0, reference.0, magnitude.0),
                                        ("linearToChannels", own.1, reference.1, magnitude.1),
                                        ("addLinear", own.2, reference.2, magnitude.2)] {
                    let err = Self.difference(a, r, magnitude: m)
                    #expect(err < 1e-5, "\(name) \(b)×\(c)→\(o) \(h)×\(w) bias \(withBias): difference \(err)")
                }
                let one = try Threads.withLocalCount(1) { try run() }
                let two = try Threads.withLocalCount(2) { try run() }
                #expect(one.0.data == two.0.data && one.1.data == two.1.data && one.2.data == two.2.data,
                        "\(b)×\(c)→\(o) \(h)×\(w): one worker and two differ")
            }
        }
    }
}
