import CVectorMath
import Foundation
import Testing
@testable import Tensor

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) convolution against the im2col path on the same inputs.
///
/// Tolerance: |winograd − im2col| ≤ 1e-5 · (Σ|x·w| + |bias|) per output for F(2×2), 1e-4 for F(4×4). Both
/// compute the same sum in float32; F(2×2)'s transforms add and subtract up to 16 inputs (and 9 kernel
/// values, halved) before the products and 16 products after, so its rounding error grows with those
/// magnitudes rather than with the output's: measured about 3e-7 (see `worstRelativeError` in the test
/// log), a few ulps of the magnitude sum; 1e-5 leaves room for other BLAS kernels' orders. F(4×4)'s
/// transforms scale inputs by up to 5·5 and products by up to 8·8 before summing 36 of them, which costs
/// about a decimal digit: 1e-4.
@Suite("Winograd convolution")
struct WinogradTests {
    static let tolerance: Float = 1e-5
    static let tolerance4x4: Float = 1e-4

    static func tolerance(_ algorithm: Conv2DAlgorithm) -> Float {
        algorithm == .winograd4x4 ? tolerance4x4 : tolerance
    }

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
        // 128+ input channels and 32–512 tiles: the AVX-512 products where the CPU has them (partial blocks).
        (2, 128, 13, 24, 20, .uniform(1)),
        (1, 131, 9, 19, 35, Padding2D(top: 1, left: 0, bottom: 1, right: 2)),
    ]

    @Test("equals im2col within its tolerance · Σ|x·w| on odd sizes, paddings and batches, with and without bias",
          arguments: [Conv2DAlgorithm.winograd, .winograd4x4])
    func matchesIm2col(algorithm: Conv2DAlgorithm) throws {
        var worstSeen: Float = 0
        for (i, (b, c, o, h, w, pad)) in Self.cases.enumerated() {
            let x = try Self.random([b, c, h, w], seed: UInt64(10 + i))
            let weight = try Self.random([o, c, 3, 3], seed: UInt64(20 + i))
            let bias = try Self.random([o], seed: UInt64(30 + i))
            for withBias in [true, false] {
                let wino = try conv2d(x, weight: weight, bias: withBias ? bias : nil, padding: pad, algorithm: algorithm)
                let ref = try conv2d(x, weight: weight, bias: withBias ? bias : nil, padding: pad, algorithm: .im2col)
                #expect(wino.shape == ref.shape)
                let err = try Self.relativeError(wino, ref, x: x, w: weight, bias: withBias ? bias : nil, padding: pad)
                worstSeen = max(worstSeen, err)
                #expect(err <= Self.tolerance(algorithm), "case \(i) \([b, c, h, w]) → \(o) pad \(pad) bias \(withBias): relative error \(err)")
            }
        }
        print("WinogradTests.matchesIm2col \(algorithm) worstRelativeError \(worstSeen)")
    }

    /// (tile, floats per buffer): one tile per band, several tiles and channels, every output channel in one band.
    static let bandCases: [(WinogradTile, Int)] = [(.f2x2, 7), (.f2x2, 240), (.f2x2, 640), (.f4x4, 7), (.f4x4, 360), (.f4x4, 1080)]

    @Test("several tile and output-channel bands equal one band", arguments: bandCases)
    func bands(tile: WinogradTile, bandFloats: Int) throws {
        let (b, c, o, h, w, pad) = (2, 5, 9, 9, 11, Padding2D.uniform(1))
        let x = try Self.random([b, c, h, w], seed: 40), weight = try Self.random([o, c, 3, 3], seed: 41)
        let bias = try Self.random([o], seed: 42)
        let whole = try conv2d(x, weight: weight, bias: bias, padding: pad, algorithm: tile == .f2x2 ? .winograd : .winograd4x4)
        var banded = [Float](repeating: .nan, count: whole.count)
        x.data.withUnsafeBufferPointer { xp in
            bias.data.withUnsafeBufferPointer { bp in
                banded.withUnsafeMutableBufferPointer { op in
                    winogradConvolve(xp.baseAddress!, batch: b, channels: c, height: h, width: w, weight: Weight(weight),
                                     bias: bp.baseAddress, padding: pad, outHeight: h, outWidth: w, out: op.baseAddress!,
                                     tile: tile, bandFloats: bandFloats)
                }
            }
        }
        let ref = try conv2d(x, weight: weight, bias: bias, padding: pad, algorithm: .im2col)
        let err = try Self.relativeError(Tensor(uncheckedShape: whole.shape, data: banded), ref, x: x, w: weight, bias: bias, padding: pad)
        #expect(err <= (tile == .f2x2 ? Self.tolerance : Self.tolerance4x4), "\(tile) bandFloats \(bandFloats): relative error \(err)")
        #expect(!banded.contains { $0.isNaN }, "every output written")
    }

    @Test("an f16/bf16 kernel equals im2col on the widened kernel",
          arguments: [Weight.DType.f16, .bf16], [Conv2DAlgorithm.winograd, .winograd4x4])
    func halfKernel(dtype: Weight.DType, algorithm: Conv2DAlgorithm) throws {
        let x = try Self.random([3, 11, 7, 5], seed: 50)
        let wide = try Self.random([10, 11, 3, 3], seed: 51)
        let half = Weight(wide).converted(to: dtype)
        let bias = try Self.random([10], seed: 52)
        let wino = try conv2d(x, weight: half, bias: bias, padding: .uniform(1), algorithm: algorithm)
        let widened = half.float32()
        let ref = try conv2d(x, weight: widened, bias: bias, padding: .uniform(1), algorithm: .im2col)
        let err = try Self.relativeError(wino, ref, x: x, w: widened, bias: bias, padding: .uniform(1))
        #expect(err <= Self.tolerance(algorithm), "\(dtype) \(algorithm): relative error \(err)")
    }

    @Test("stride 2 and kernels other than 3×3 fall back to im2col (bit for bit)",
          arguments: [(3, 2), (1, 1), (5, 1), (2, 1)], [Conv2DAlgorithm.winograd, .winograd4x4])
    func fallsBack(shape: (kernel: Int, stride: Int), algorithm: Conv2DAlgorithm) throws {
        let (kernel, stride) = shape
        let x = try Self.random([2, 6, 9, 8], seed: 60)
        let weight = try Self.random([7, 6, kernel, kernel], seed: 61), bias = try Self.random([7], seed: 62)
        let pad = Padding2D.uniform(kernel / 2)
        let forced = try conv2d(x, weight: weight, bias: bias, stride: stride, padding: pad, algorithm: algorithm)
        let ref = try conv2d(x, weight: weight, bias: bias, stride: stride, padding: pad, algorithm: .im2col)
        #expect(forced.shape == ref.shape)
        #expect(forced.data == ref.data)
    }

    @Test("automatic dispatch takes Winograd only where it pays, F(4×4) where tiles are many")
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
        // Tiles enough for F(4×4): SD's 320 channels at 64×64 latents, the VAE's 128 at 256×256; not 1280 at 16×16.
        #expect(winogradTile(channels: 320, outputs: 320, tiles: 2048) == .f4x4)
        #expect(winogradTile(channels: 128, outputs: 128, tiles: 16384) == .f4x4)
        #expect(winogradTile(channels: 1280, outputs: 1280, tiles: 128) == .f2x2)
        // One image of SD's 64×64 and 32×32 levels (each thread's half of a batch-2 step).
        #expect(winogradTile(channels: 960, outputs: 320, tiles: 1024) == .f4x4)
        #expect(winogradTile(channels: 640, outputs: 640, tiles: 256) == .f4x4)
        #expect(winogradTile(channels: 320, outputs: 320, tiles: 1024) == .f2x2)
        #expect(winogradTile(channels: 1920, outputs: 640, tiles: 256) == .f2x2)
        #expect(winogradTile(channels: 1280, outputs: 1280, tiles: 64) == .f2x2)
        // 64 channels with a batch's tiles (the quickstart's StoryWorld UNet: 16 latents of 16×16): F(2×2).
        #expect(winogradTile(channels: 64, outputs: 64, tiles: 1024) == .f2x2)
        #expect(!winogradPays(channels: 32, outputs: 32, tiles: 1024))
        let wide = try Self.random([2, 192, 64, 64], seed: 74), w192 = try Self.random([192, 192, 3, 3], seed: 75)
        #expect(try conv2d(wide, weight: w192, padding: .uniform(1)).data
                == conv2d(wide, weight: w192, padding: .uniform(1), algorithm: .winograd4x4).data)
    }
    /// The C transforms' two paths (AVX2 + FMA, and baseline x86-64 for CPUs without them) on the same runs: they
    /// differ only by FMA contraction, so within 1e-6 of the magnitudes. Tile counts cover the vector loops' tails;
    /// the output runs write partial tiles (fewer rows and columns).
    @Test("the transforms' AVX2 and baseline paths agree", arguments: [2, 4])
    func transformPaths(m: Int) throws {
        func both(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> ([Float], [Float]) {
            var fast = [Float](repeating: 0, count: count), slow = fast
            fast.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
            storyloom_winograd_baseline_on_this_thread(1)
            defer { storyloom_winograd_baseline_on_this_thread(0) }
            slow.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
            return (fast, slow)
        }
        func expectClose(_ pair: ([Float], [Float]), _ what: String) {
            let scale = max(1, pair.1.map(abs).max() ?? 0)
            let worst = zip(pair.0, pair.1).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-6 * scale, "\(what): max |Δ| \(worst) at scale \(scale)")
        }
        let positions = (m + 2) * (m + 2)
        for tiles in [1, 5, 13, 40] {
            let lineLength = m * tiles + 2 + 3
            let lines = try Self.random([m + 2, lineLength], seed: UInt64(tiles)).data
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_input_scratch(m, tiles))
            defer { scratch.deallocate() }
            let input = both(positions * tiles) { dst in
                storyloom_winograd_input_run(m, lines, lineLength, 3, tiles, scratch, dst, tiles)
            }
            expectClose(input, "F(\(m)) input, \(tiles) tiles")
            let products = try Self.random([positions, tiles], seed: UInt64(100 + tiles)).data
            let outScratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_output_scratch(m, tiles))
            defer { outScratch.deallocate() }
            for (rows, columns) in [(m, m * tiles), (1, m * tiles - 1)] {
                let output = both(m * m * tiles) { out in
                    storyloom_winograd_output_run(m, products, tiles, tiles, 0.25, rows, columns, outScratch, out, m * tiles)
                }
                expectClose(output, "F(\(m)) output, \(tiles) tiles, \(rows) rows, \(columns) columns")
            }
        }
        for channels in [1, 7, 19] {
            let kernels = try Self.random([channels, 3, 3], seed: UInt64(200 + channels)).data
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_winograd_kernel_scratch(m, channels))
            defer { scratch.deallocate() }
            let u = both(positions * channels) { u in
                storyloom_winograd_kernel_row(m, kernels, channels, scratch, u, channels)
            }
            expectClose(u, "F(\(m)) kernel, \(channels) channels")
        }
    }
    /// Storyloom's Winograd products (`winograd_products.h`), each kernel this CPU has (AVX2 + FMA; AVX-512),
    /// against a naive Double product: row counts around the 6- and 8-row blocks, column counts around the 16- and
    /// 32-column blocks (masked tails), depths 1 to 600 (the AVX2 kernel's 256-deep passes). Tolerance 1e-6 of the
    /// magnitude sum Σ|u·v| (float32 FMAs over up to 600 terms). Skipped on CPUs with neither, where
    /// `winogradConvolve` keeps OpenBLAS and no kernel is called.
    @Test("Storyloom's Winograd products equal a naive product on odd shapes",
          .enabled(if: storyloom_winograd_products_available() != 0, "this CPU has neither AVX-512F nor AVX2 + FMA: the kernels are not used here"))
    func ownProducts() throws {
        for kernel in 1...Int(storyloom_winograd_products_available()) {
            for (rows, cols, depth) in [(1, 1, 1), (8, 32, 7), (9, 33, 130), (17, 70, 64), (3, 15, 128), (16, 48, 5),
                                        (7, 17, 600), (13, 300, 257), (6, 16, 256)] {
                let u = try Self.random([rows, depth], seed: UInt64(rows)).data
                let v = try Self.random([depth, cols], seed: UInt64(cols)).data
                var m = [Float](repeating: .nan, count: rows * cols)
                m.withUnsafeMutableBufferPointer { storyloom_winograd_product_with(Int32(kernel), rows, cols, depth, u, v, $0.baseAddress!) }
                var worst = 0.0
                for i in 0..<rows { for j in 0..<cols {
                    var sum = 0.0, magnitude = 0.0
                    for k in 0..<depth {
                        let p = Double(u[i * depth + k]) * Double(v[k * cols + j])
                        sum += p; magnitude += abs(p)
                    }
                    worst = max(worst, abs(Double(m[i * cols + j]) - sum) / max(magnitude, 1e-30))
                } }
                #expect(worst < 1e-6, "kernel \(kernel == 2 ? "AVX-512" : "AVX2"), \(rows) × \(cols) × \(depth): worst relative error \(worst)")
            }
        }
    }
}
