import Foundation
import Tensor

/// `storyloom bench conv`: 3×3 stride-1 convolutions of the shapes the SD v1.5 UNet and VAE and the
/// StoryWorld UNet run, by Winograd F(2×2, 3×3) against im2col + sgemm (the "reference" column), so
/// the ratio is im2col's time over Winograd's. `winogradPays` (Conv2D.swift) is set from these rows.
public enum ConvBench {
    /// (label, batch, channels in, channels out, height = width).
    static let shapes: [(String, Int, Int, Int, Int)] = [
        ("StoryWorld UNet", 2, 4, 64, 16), ("StoryWorld UNet", 2, 64, 64, 16), ("StoryWorld UNet", 2, 128, 128, 8),
        ("StoryWorld UNet", 2, 128, 128, 4), ("StoryWorld UNet", 2, 256, 128, 8),
        // The quickstart's batches: 6 stories × 2 (guidance) denoised together.
        ("StoryWorld UNet", 12, 64, 64, 16), ("StoryWorld UNet", 12, 128, 64, 16), ("StoryWorld UNet", 12, 128, 128, 8),
        ("StoryWorld UNet", 12, 256, 128, 8), ("StoryWorld UNet", 12, 128, 128, 4),
        ("SD UNet", 2, 320, 320, 64), ("SD UNet", 2, 640, 640, 32), ("SD UNet", 2, 1280, 1280, 16),
        ("SD UNet", 2, 1280, 1280, 8), ("SD UNet", 2, 320, 320, 32), ("SD UNet", 2, 640, 640, 16),
        ("SD UNet", 2, 1280, 1280, 4), ("SD UNet", 2, 960, 320, 64), ("SD UNet", 2, 4, 320, 64),
        // One image: what each thread's half of a batch-2 step runs (`UNet2DConditionModel.forwardInGroups`).
        ("SD UNet half", 1, 320, 320, 64), ("SD UNet half", 1, 960, 320, 64), ("SD UNet half", 1, 640, 640, 32),
        ("SD UNet half", 1, 1920, 640, 32), ("SD UNet half", 1, 1280, 1280, 16),
        ("SD VAE", 1, 512, 512, 64), ("SD VAE", 1, 512, 512, 128), ("SD VAE", 1, 256, 256, 256),
        ("SD VAE", 1, 128, 128, 256), ("mid", 2, 64, 64, 64), ("mid", 2, 128, 128, 64), ("mid", 2, 128, 128, 32),
        ("mid", 2, 192, 192, 32), ("mid", 2, 256, 256, 32), ("mid", 2, 256, 256, 16), ("mid", 2, 320, 320, 16),
        ("mid", 2, 640, 640, 12), ("mid", 2, 1280, 1280, 12),
        ("small", 2, 16, 16, 16), ("small", 2, 32, 32, 8), ("small", 2, 32, 32, 16), ("small", 2, 64, 64, 8),
    ]

    public static func run(threads: Int, quick: Bool) throws -> BenchReport {
        Threads.set(threads)
        let reps = quick ? 1 : 3
        var report = BenchReport()
        report.notes.append("threads=\(Threads.count) reps=\(reps) (best of), float32 kernels, padding 1")
        var generator = TorchGenerator(seed: 0)
        for (label, b, c, o, s) in shapes {
            let x = try generator.randn(shape: [b, c, s, s])
            let weight = Weight(try generator.randn(shape: [o, c, 3, 3]))
            let bias = try generator.randn(shape: [o])
            // Enough calls per timing that a sub-millisecond layer is not timer noise.
            let inner = max(1, min(50, Int(2e8 / Double(o * c * 9 * s * s * b))))
            func time(_ algorithm: Conv2DAlgorithm) throws -> Double {
                var best = Double.infinity
                for _ in 0..<reps {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<inner { _ = try conv2d(x, weight: weight, bias: bias, padding: .uniform(1), algorithm: algorithm) }
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(inner))
                }
                return best
            }
            let im2col = try time(.im2col), winograd = try time(.winograd), winograd4 = try time(.winograd4x4)
            let tiles = b * ((s + 1) / 2) * ((s + 1) / 2)
            let flops = 2.0 * Double(o * c * 9 * s * s * b)
            report.rows.append(BenchRow(name: "\(label) \(c)→\(o) \(s)×\(s) batch \(b)", storyloom_s: winograd, reference_s: im2col,
                                        extra: ["tiles": Double(tiles), "im2col GFLOP/s": flops / im2col / 1e9,
                                                "winograd eff. GFLOP/s": flops / winograd / 1e9,
                                                "4×4 ratio": im2col / winograd4, "4×4 eff. GFLOP/s": flops / winograd4 / 1e9]))
        }
        report.notes.append("storyloom s = Winograd F(2×2, 3×3); reference s = im2col + sgemm; ratio above 1: Winograd faster; 4×4 ratio = im2col / Winograd F(4×4, 3×3); tiles = 2×2 tiles; GFLOP/s counts the direct convolution's 2·O·C·9·H·W·B")
        return report
    }
}
