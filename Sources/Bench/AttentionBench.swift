import Foundation
import Tensor

/// `storyloom bench attention`: the attention shapes of the SD v1.5 UNet and VAE and of the StoryWorld UNet, by
/// the fused kernels (`attention_kernels.h`) against the sgemm path (the "reference" column), so the ratio is
/// the sgemm path's time over the fused one's, both in this process on the same inputs.
public enum AttentionBench {
    /// (label, sequences, query length, key length, heads, head dimension).
    static let shapes: [(String, Int, Int, Int, Int, Int)] = [
        ("SD UNet 64×64 self", 2, 4096, 4096, 8, 40), ("SD UNet 64×64 cross", 2, 4096, 77, 8, 40),
        ("SD UNet 32×32 self", 2, 1024, 1024, 8, 80), ("SD UNet 16×16 self", 2, 256, 256, 8, 160),
        ("SD VAE 64×64 mid", 1, 4096, 4096, 1, 512),
        ("StoryWorld UNet 16×16 self, 8 images", 16, 256, 256, 4, 16), ("StoryWorld UNet 8×8 self, 8 images", 16, 64, 64, 4, 32),
        ("StoryWorld UNet 16×16 cross, 8 images", 16, 256, 77, 4, 16),
    ]

    public static func run(threads: Int, quick: Bool) throws -> BenchReport {
        Threads.set(threads)
        let reps = quick ? 1 : 3
        var report = BenchReport()
        report.notes.append("threads=\(Threads.count) reps=\(reps) (best of), float32; fused kernels "
                            + (AttentionKernel.fusedAvailable(headDim: 8) ? "available (AVX2 + FMA)" : "unavailable here: both columns are sgemm"))
        var generator = TorchGenerator(seed: 0)
        for (label, b, tq, tk, heads, hd) in shapes {
            let width = heads * hd
            let q = try generator.randn(shape: [b * tq, width]), k = try generator.randn(shape: [b * tk, width])
            let v = try generator.randn(shape: [b * tk, width])
            var out = [Float](repeating: 0, count: b * tq * width)
            let flops = 4.0 * Double(b * heads * tq * tk * hd)
            // Enough calls per timing that a sub-millisecond shape is not timer noise.
            let inner = max(1, min(100, Int(2e8 / flops)))
            func time(_ kernel: AttentionKernel) -> Double {
                var best = Double.infinity
                q.data.withUnsafeBufferPointer { qp in
                    k.data.withUnsafeBufferPointer { kp in
                        v.data.withUnsafeBufferPointer { vp in
                            out.withUnsafeMutableBufferPointer { op in
                                for _ in 0..<reps {
                                    let start = DispatchTime.now().uptimeNanoseconds
                                    for _ in 0..<inner {
                                        blockedAttention(query: AttentionOperand(base: qp.baseAddress!, rowStride: width),
                                                         key: AttentionOperand(base: kp.baseAddress!, rowStride: width),
                                                         value: AttentionOperand(base: vp.baseAddress!, rowStride: width),
                                                         batch: b, queryLength: tq, keyLength: tk, heads: heads, headDim: hd,
                                                         out: op.baseAddress!, outStride: width, kernel: kernel)
                                    }
                                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(inner))
                                }
                            }
                        }
                    }
                }
                return best
            }
            let sgemm = time(.sgemm), fused = time(.fused)
            report.rows.append(BenchRow(name: "\(label): \(b)×\(heads) heads of \(hd), \(tq)×\(tk)", storyloom_s: fused,
                                        reference_s: sgemm, extra: ["fused GFLOP/s": flops / fused / 1e9,
                                                                    "sgemm GFLOP/s": flops / sgemm / 1e9]))
        }
        report.notes.append("storyloom s = fused kernels; reference s = sgemm + softmax + sgemm per block of queries; ratio above 1: fused faster; GFLOP/s counts 4·Tq·Tk·d per head (both products)")
        return report
    }
}
