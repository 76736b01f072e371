import Foundation
import Testing
@testable import Tensor

/// Winograd F(2×2, 3×3) convolution against the im2col path on the same inputs.
///
/// Tolerance: |winograd − im2col| ≤ 1e-5 · (Σ|x·w| + |bias|) per output. Both compute the same sum in
/// float32; Winograd's transforms add and subtract up to 16 inputs (and 9 kernel values, halved) before
/// the products and 16 products after, so its rounding error grows with those magnitudes rather than
/// with the output's. Measured worst case over the cases below: see `worstRelativeError` in the test log
/// (about 3e-7, i.e. a few ulps of the magnitude sum); 1e-5 leaves room for other BLAS kernels' orders.
@Suite("Winograd convolution")
struct WinogradTests {
    static let tolerance: Float = 1e-5

    static func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
        var g = TorchGenerator(seed: seed)
        return try g.randn(shape: shape)
    }

    /// Max over outputs of |a − b| / (Σ|x·w| + |bias|): the magnitude sum is the convolution of |x| with |w|.
    static func relativeError(_ a: Tensor, _ b: Tensor, x: Tensor, w: Tensor, bias: Tensor?, padding: Padding2D) throws -> Float {
        let magnitude = try conv2d(Tensor(uncheckedShape: x.shape, data: x.data.map(abs)),
                                   weight: Tensor(uncheckedShape: w.shape, data: w.data.map(abs)),
                                   bias: bias.map { Tensor(uncheckedShape: $0.shape, data: $0.data.map(abs)) },
                                   padding: padding, algorithm: .im2col)
        var worst: Float = 0
        for i in a.data.indices {
            worst = max(worst, abs(a.data[i] - b.data[i]) / (magnitude.data[i] + 1e-30))
        }
        return worst
    }

    /// (batch, in, out, height, width, padding): odd and tiny sizes (partial tiles, a 1×1 image),
    /// padding 0, 1 and asymmetric, channel counts that are not multiples of 8.
    static let cases: [(Int, Int, Int, Int, Int, Padding2D)] = [
        (1, 3, 5, 5, 7, .uniform(1)),
        (3, 5, 7, 5, 7, .uniform(0)),
        (1, 4, 3, 1, 1, .uniform(1)),
        (3, 9, 6, 3, 3, .uniform(1)),
        (2, 13, 11, 8, 9, Padding2D(top: 0, left: 1, bottom: 2, right: 0)),
        (1, 17, 19, 6, 4, Padding2D(top: 2, left: 0, bottom: 1, right: 1)),
        (3, 33, 21, 16, 16, .uniform(1)),
    ]

    @Test("equals im2col within 1e-5 · Σ|x·w| on odd sizes, paddings and batches, with and without bias")
    func matchesIm2col() throws {
        var worstSeen: Float = 0
        for (i, (b, c, o, h, w, pad)) in Self.cases.enumerated() {
            let x = try Self.random([b, c, h, w], seed: UInt64(10 + i))
            let weight = try Self.random([o, c, 3, 3], seed: UInt64(20 + i))
            let bias = try Self.random([o], seed: UInt64(30 + i))
            for withBias in [true, false] {
                let wino = try conv2d(x, weight: weight, bias: withBias ? bias : nil, padding: pad, algorithm: .winograd)
                let ref = try conv2d(x, weight: weight, bias: withBias ? bias : nil, padding: pad, algorithm: .im2col)
                #expect(wino.shape == ref.shape)
                let err = try Self.relativeError(wino, ref, x: x, w: weight, bias: withBias ? bias : nil, padding: pad)
                worstSeen = max(worstSeen, err)
                #expect(err <= Self.tolerance, "case \(i) \([b, c, h, w]) → \(o) pad \(pad) bias \(withBias): relative error \(err)")
            }
        }
        print("WinogradTests.matchesIm2col worstRelativeError \(worstSeen)")
    }

    @Test("several tile and output-channel bands equal one band", arguments: [7, 16 * 5 * 3, 16 * 40])
    func bands(bandFloats: Int) throws {
        let (b, c, o, h, w, pad) = (2, 5, 9, 9, 11, Padding2D.uniform(1))
        let x = try Self.random([b, c, h, w], seed: 40), weight = try Self.random([o, c, 3, 3], seed: 41)
        let bias = try Self.random([o], seed: 42)
        let whole = try conv2d(x, weight: weight, bias: bias, padding: pad, algorithm: .winograd)
        var banded = [Float](repeating: .nan, count: whole.count)
        x.data.withUnsafeBufferPointer { xp in
            bias.data.withUnsafeBufferPointer { bp in
                banded.withUnsafeMutableBufferPointer { op in
                    winogradConvolve(xp.baseAddress!, batch: b, channels: c, height: h, width: w, weight: Weight(weight),
                                     bias: bp.baseAddress, padding: pad, outHeight: h, outWidth: w, out: op.baseAddress!,
                                     bandFloats: bandFloats)
                }
            }
        }
        let ref = try conv2d(x, weight: weight, bias: bias, padding: pad, algorithm: .im2col)
        let err = try Self.relativeError(Tensor(uncheckedShape: whole.shape, data: banded), ref, x: x, w: weight, bias: bias, padding: pad)
        #expect(err <= Self.tolerance, "bandFloats \(bandFloats): relative error \(err)")
        #expect(!banded.contains { $0.isNaN }, "every output written")
    }

    @Test("an f16/bf16 kernel equals im2col on the widened kernel", arguments: [Weight.DType.f16, .bf16])
    func halfKernel(dtype: Weight.DType) throws {
        let x = try Self.random([3, 11, 7, 5], seed: 50)
        let wide = try Self.random([10, 11, 3, 3], seed: 51)
        let half = Weight(wide).converted(to: dtype)
        let bias = try Self.random([10], seed: 52)
        let wino = try conv2d(x, weight: half, bias: bias, padding: .uniform(1), algorithm: .winograd)
        let widened = half.float32()
        let ref = try conv2d(x, weight: widened, bias: bias, padding: .uniform(1), algorithm: .im2col)
        let err = try Self.relativeError(wino, ref, x: x, w: widened, bias: bias, padding: .uniform(1))
        #expect(err <= Self.tolerance, "\(dtype): relative error \(err)")
    }

    @Test("stride 2 and kernels other than 3×3 fall back to im2col (bit for bit)",
          arguments: [(3, 2), (1, 1), (5, 1), (2, 1)])
    func fallsBack(kernel: Int, stride: Int) throws {
        let x = try Self.random([2, 6, 9, 8], seed: 60)
        let weight = try Self.random([7, 6, kernel, kernel], seed: 61), bias = try Self.random([7], seed: 62)
        let pad = Padding2D.uniform(kernel / 2)
        let forced = try conv2d(x, weight: weight, bias: bias, stride: stride, padding: pad, algorithm: .winograd)
        let ref = try conv2d(x, weight: weight, bias: bias, stride: stride, padding: pad, algorithm: .im2col)
        #expect(forced.shape == ref.shape)
        #expect(forced.data == ref.data)
    }

    @Test("automatic dispatch takes Winograd only where it pays")
    func dispatch() throws {
        // Wide and many tiles (an SD-sized layer, shrunk): the automatic result is the Winograd result.
        #expect(winogradPays(channels: 256, outputs: 256, tiles: 144))
        let x = try Self.random([1, 256, 24, 24], seed: 70), weight = try Self.random([256, 256, 3, 3], seed: 71)
        #expect(try conv2d(x, weight: weight, padding: .uniform(1)).data
                == conv2d(x, weight: weight, padding: .uniform(1), algorithm: .winograd).data)
        // Narrow (the StoryWorld UNet's 64 channels) or a 3-channel first layer: im2col.
        #expect(!winogradPays(channels: 64, outputs: 64, tiles: 128))
        #expect(!winogradPays(channels: 1280, outputs: 1280, tiles: 32))
        #expect(!winogradPays(channels: 3, outputs: 320, tiles: 4096))
        let narrow = try Self.random([2, 64, 16, 16], seed: 72), w64 = try Self.random([64, 64, 3, 3], seed: 73)
        #expect(try conv2d(narrow, weight: w64, padding: .uniform(1)).data
                == conv2d(narrow, weight: w64, padding: .uniform(1), algorithm: .im2col).data)
    }
}
