import CVectorMath
import Foundation
import Testing
@testable import Tensor

/// The fused attention kernels (`attention_kernels.h`), each one this CPU has (AVX2 + FMA; AVX-512), called
/// directly on packed keys and values against a Double `softmax(scale · QKᵀ) V`.
///
/// Tolerance: 2e-5 absolute (values of order 1, scores up to about ±40 so the softmax is peaked; measured up to
/// 7.9e-6 on these cases). Both kernels compute each score and each output as one FMA chain in the same order, so
/// they must also agree bit for bit.
@Suite("attention kernels")
struct AttentionKernelsTests {
    /// (rows, keys, head dim): rows around the 6- and 12-row blocks, keys around the 16-key panels and the AVX-512
    /// tiles' pairs of them (1, 19, 33, 77, 300), head dimensions of one 8-wide panel, 16 + 8, 32 + 8 (the AVX-512
    /// tiles' masked last panel), 48 and 160.
    static let cases = [(5, 19, 8), (13, 64, 24), (37, 77, 40), (12, 33, 48), (25, 300, 160), (30, 1, 16), (7, 100, 80)]

    @Test("each fused attention kernel equals a Double softmax(scale · QKᵀ)V on odd shapes",
          .enabled(if: storyloom_attention_kernels_available() != 0, "this CPU lacks AVX2 + FMA: the fused kernels are not used"))
    func kernelsMatchNaive() throws {
        let values = { (n: Int, seed: UInt64) in WeightTests.values(n, seed: seed) }
        var outputs: [[[Float]]] = []
        for kernel in 1...Int(storyloom_attention_kernels_available()) {
            outputs.append([])
            for (rows, tk, hd) in Self.cases {
                let tp = storyloom_attention_padded_keys(tk)
                let q = values(rows * hd, 121).map { $0 * 4 }, k = values(tk * hd, 122).map { $0 * 4 }
                let v = values(tk * hd, 123)
                var kpack = [Float](repeating: 0, count: tp * hd), vpack = kpack
                storyloom_attention_pack(k, hd, v, hd, tk, hd, &kpack, &vpack)
                var scores = [Float](repeating: 0, count: rows * tp), rowScale = [Float](repeating: 0, count: rows)
                var out = [Float](repeating: .nan, count: rows * hd)
                let scale: Float = 0.3
                storyloom_attention_rows_with(Int32(kernel), q, hd, rows, kpack, vpack, tk, hd, scale, &scores, &rowScale,
                                              &out, hd)
                var worst = 0.0
                for r in 0..<rows {
                    var s = (0..<tk).map { t in
                        Double(scale) * (0..<hd).reduce(0.0) { $0 + Double(q[r * hd + $1]) * Double(k[t * hd + $1]) }
                    }
                    let m = s.max()!
                    s = s.map { exp($0 - m) }
                    let z = s.reduce(0, +)
                    for d in 0..<hd {
                        let expected = (0..<tk).reduce(0.0) { $0 + s[$1] * Double(v[$1 * hd + d]) } / z
                        let got = Double(out[r * hd + d])
                        worst = max(worst, got.isNaN ? .infinity : abs(expected - got))
                    }
                }
                outputs[kernel - 1].append(out)
                #expect(worst <= 2e-5, "kernel \(kernel == 2 ? "AVX-512" : "AVX2"), \(rows) rows × \(tk) keys × \(hd): max |Δ| \(worst)")
            }
        }
        if outputs.count == 2 { #expect(outputs[0] == outputs[1], "the AVX2 and AVX-512 kernels differ") }
    }
}
