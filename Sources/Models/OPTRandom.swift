import Foundation
import Tensor

extension OPTModel {
    /// An OPT decoder with random weights built in memory, for benchmarks at published sizes
    /// without writing (or having) a checkpoint: matrices uniform with std 0.02 (OPT's init std)
    /// stored as `dtype`, biases std 0.02 in float32, LayerNorms 1 and 0, tied lm_head.
    /// Generation runs on `Threads.count` threads (an OPT-6.7B's 6.7 G values take seconds).
    public static func random(config c: OPTConfig, dtype: Weight.DType, seed: UInt64 = 11) throws -> OPTModel {
        var next = seed
        func matrix(_ shape: [Int]) throws -> Weight {
            next &+= 1
            return try randomWeight(shape, dtype: dtype, seed: next)
        }
        func vector(_ n: Int, value: Float? = nil) throws -> Tensor {
            if let value { return Tensor(zeros: [n], value: value) }
            next &+= 1
            return try randomWeight([n], dtype: .f32, seed: next).float32()
        }
        let d = c.hiddenSize, f = c.ffnDim, e = c.wordEmbedProjDim
        let scale = 1 / Float(d / c.numAttentionHeads).squareRoot()
        var layers: [OPTDecoderLayer] = []
        for _ in 0..<c.numHiddenLayers {
            var qkv = try matrix([3 * d, d])
            var qkvBias = try vector(3 * d)
            var queryScale = scale
            if dtype == .f32 {
                // As `OPTDecoderLayer.load` does for float32: the scale folded into the Q rows.
                var t = qkv.float32()
                for i in 0..<(d * d) { t.data[i] *= scale }
                for i in 0..<d { qkvBias.data[i] *= scale }
                qkv = Weight(t)
                queryScale = 1
            }
            layers.append(OPTDecoderLayer(
                qkvWeight: qkv, qkvBias: qkvBias, queryScale: queryScale,
                outWeight: try matrix([d, d]), outBias: try vector(d),
                attnNormWeight: try vector(d, value: 1), attnNormBias: try vector(d, value: 0),
                fc1Weight: try matrix([f, d]), fc1Bias: try vector(f),
                fc2Weight: try matrix([d, f]), fc2Bias: try vector(d),
                ffnNormWeight: try vector(d, value: 1), ffnNormBias: try vector(d, value: 0)))
        }
        next &+= 1
        let positions = try randomWeight([c.maxPositionEmbeddings + positionOffset, d], dtype: .f32, seed: next).float32()
        let hasProjections = c.hasProjections
        return OPTModel(folder: URL(fileURLWithPath: "/dev/null"), config: c, embedTokens: try matrix([c.vocabSize, e]),
                        embedPositions: positions,
                        projectIn: hasProjections ? try matrix([d, e]) : nil, projectOut: hasProjections ? try matrix([e, d]) : nil,
                        layers: layers, finalNorm: c.hasFinalLayerNorm ? (try vector(d, value: 1), try vector(d, value: 0)) : nil,
                        lmHead: nil, digest: "random-\(seed)")
    }

    /// Uniform values with std 0.02 from a per-chunk LCG, generated in parallel straight into `dtype` storage.
    static func randomWeight(_ shape: [Int], dtype: Weight.DType, seed: UInt64) throws -> Weight {
        let n = shape.reduce(1, *)
        let chunk = 1 << 20, chunks = (n + chunk - 1) / chunk
        let k = 0.02 * Float(12).squareRoot()
        func fill<T>(_ p: UnsafeMutablePointer<T>, _ convert: @escaping (Float) -> T) {
            Threads.parallelFor(chunks) { ci in
                var s = (seed &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(ci) &* 0xBF58_476D_1CE4_E5B9) | 1
                for i in (ci * chunk)..<min(n, (ci + 1) * chunk) {
                    s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    p[i] = convert((Float(s >> 40) * (1.0 / 16_777_216.0) - 0.5) * k)
                }
            }
        }
        switch dtype {
        case .f32:
            var values = [Float](repeating: 0, count: n)
            values.withUnsafeMutableBufferPointer { p in
                if n > 0 { fill(p.baseAddress!) { v in v } }
            }
            return Weight(try Tensor(shape: shape, data: values))
        case .f16, .bf16:
            var bits = [UInt16](repeating: 0, count: n)
            let bf16 = dtype == .bf16
            bits.withUnsafeMutableBufferPointer { p in
                if n > 0 { fill(p.baseAddress!) { v in bf16 ? bfloat16BitsFromFloat(v) : halfBitsFromFloat(v) } }
            }
            return try Weight(shape: shape, bits: bits, dtype: dtype)
        }
    }
}
