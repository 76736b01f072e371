import Foundation
import Models
import Tensor

/// `storyloom bench clip`: full-size CLIP vision towers (ViT-B/32, ViT-L/14) with random
/// weights, Storyloom against PyTorch on the same weights in the same invocation.
///
/// The weights are written once to a temporary `CLIPVisionModelWithProjection` folder (F16, to
/// halve the file; both sides widen to f32 on load), which Storyloom loads through
/// `CLIPModel.load` and `Tools/bench_clip_reference.py` through transformers. Rows report
/// seconds per batch, images/s on both sides, and the GFLOP/s Storyloom achieves; a raw sgemm
/// row gives the machine's attainable rate for comparison.
public enum ClipBench {
    /// A vision tower to benchmark.
    struct Spec {
        var name: String
        var config: CLIPVisionConfig
        var projectionDim: Int
    }

    static func specs() -> [Spec] {
        var b32 = CLIPVisionConfig()
        b32.hiddenSize = 768; b32.intermediateSize = 3072; b32.numHiddenLayers = 12
        b32.numAttentionHeads = 12; b32.patchSize = 32; b32.imageSize = 224
        var l14 = CLIPVisionConfig()
        l14.hiddenSize = 1024; l14.intermediateSize = 4096; l14.numHiddenLayers = 24
        l14.numAttentionHeads = 16; l14.patchSize = 14; l14.imageSize = 224
        return [Spec(name: "ViT-B/32", config: b32, projectionDim: 512), Spec(name: "ViT-L/14", config: l14, projectionDim: 768)]
    }

    /// Runs the benchmark with `threads` compute threads. `quick` uses fewer repetitions.
    public static func run(threads: Int, quick: Bool) throws -> BenchReport {
        Threads.set(threads)
        let reps = quick ? 2 : 5
        var report = BenchReport()
        report.notes.append("threads=\(Threads.count) \(openBLASEnvironmentNote()) reps=\(reps) (best of)")
        report.rows.append(try sgemmRow(reps: reps))
        let python = PyTorchReference.python(for: "bench_clip_reference.py")
        if python == nil {
            report.notes.append("PyTorch reference not run: no Python found (set STORYLOOM_PYTHON or run from the repository root with .venv/bin/python) or Tools/bench_clip_reference.py is missing")
        }
        for spec in specs() {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-clipbench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try writeRandomTower(spec, to: dir)
            let model = try CLIPModel.load(from: dir)
            guard let tower = model.vision else { throw ModelError("benchmark tower failed to load") }

            // Same pixels on both sides for a correctness check at full size.
            let size = spec.config.imageSize
            let check = try Tensor(shape: [1, 3, size, size], data: randomValues(3 * size * size, seed: 99, scale: 1))
            try SafetensorsWriter.write(["pixel_values": check], to: dir.appendingPathComponent("check.safetensors"))
            let ours = try model.imageEmbeddings(pixelValues: check)

            var reference: [String: Any]?
            if let python {
                reference = try PyTorchReference.run("bench_clip_reference.py", python: python, arguments: ["--model", dir.path, "--threads", "\(Threads.count)", "--batches", "1,8", "--reps", "\(reps)", "--check",
                                                                dir.appendingPathComponent("check.safetensors").path], scratch: dir)
                if let theirs = reference?["check_image_embeds"] as? [[Double]], let row = theirs.first {
                    let diff = zip(ours[0], row).map { abs(Double($0) - $1) }.max() ?? .infinity
                    report.notes.append("\(spec.name): max |Δ| of image embeddings vs PyTorch on identical pixels = \(String(format: "%.2e", diff))")
                }
            }
            for batch in [1, 8] {
                let pixels = try Tensor(shape: [batch, 3, size, size], data: randomValues(batch * 3 * size * size, seed: UInt64(batch), scale: 1))
                _ = try tower.forward(pixelValues: pixels)  // warm-up
                var best = Double.infinity
                for _ in 0..<reps {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try tower.forward(pixelValues: pixels)
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                var referenceSeconds: Double?
                if let results = reference?["results"] as? [[String: Any]],
                   let r = results.first(where: { ($0["batch"] as? Int) == batch }) {
                    referenceSeconds = r["seconds"] as? Double
                }
                var extra: [String: Double] = [
                    "img/s": Double(batch) / best,
                    "GFLOP/s": tower.flopsPerImage * Double(batch) / best / 1e9,
                ]
                if let referenceSeconds { extra["ref img/s"] = Double(batch) / referenceSeconds }
                report.rows.append(BenchRow(name: "\(spec.name) batch \(batch)", storyloom_s: best,
                                            reference_s: referenceSeconds, extra: extra))
            }
            report.notes.append("\(spec.name) batch 8, one encoder layer: " + (try profileLayer(spec.config, batch: 8, reps: reps)))
            if let reference {
                report.notes.append("\(spec.name) reference: torch \(reference["torch"] ?? "?"), transformers \(reference["transformers"] ?? "?"), torch threads \(reference["threads"] ?? "?")")
            }
        }
        report.notes.append("ratio = reference_s / storyloom_s (above 1: Storyloom faster); GFLOP/s counts 2 per multiply-add of linears, patch conv and attention")
        return report
    }

    /// Where one encoder layer's time goes, op by op (same shapes as the tower, random weights).
    static func profileLayer(_ c: CLIPVisionConfig, batch: Int, reps: Int) throws -> String {
        let t = c.sequenceLength, d = c.hiddenSize, ff = c.intermediateSize, rows = batch * t
        let x = try Tensor(shape: [rows, d], data: randomValues(rows * d, seed: 5, scale: 1))
        let wqkv = try Tensor(shape: [3 * d, d], data: randomValues(3 * d * d, seed: 6, scale: 0.02))
        let wo = try Tensor(shape: [d, d], data: randomValues(d * d, seed: 7, scale: 0.02))
        let w1 = try Tensor(shape: [ff, d], data: randomValues(ff * d, seed: 8, scale: 0.02))
        let w2 = try Tensor(shape: [d, ff], data: randomValues(ff * d, seed: 9, scale: 0.02))
        let ones = Tensor(zeros: [d], value: 1), zeros = Tensor(zeros: [d])
        var timings: [(String, Double)] = []
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            var best = Double.infinity
            for _ in 0..<(reps + 1) {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            timings.append((name, best))
        }
        let q = try linear(x, weight: wqkv)
        let q1 = try Tensor(shape: [rows, d], data: Array(q.data.prefix(rows * d)))
        let h = try linear(x, weight: w1)
        try time("layernorm×2") { _ = try layerNorm(x, weight: ones, bias: zeros, eps: 1e-5); _ = try layerNorm(x, weight: ones, bias: zeros, eps: 1e-5) }
        try time("qkv") { _ = try linear(x, weight: wqkv) }
        try time("attention") { _ = try multiHeadAttention(query: q1, key: q1, value: q1, batch: batch, heads: c.numAttentionHeads, causal: false) }
        try time("out") { _ = try linear(x, weight: wo) }
        try time("fc1") { _ = try linear(x, weight: w1) }
        time("gelu") { _ = activated(h, c.hiddenAct) }
        try time("fc2") { _ = try linear(h, weight: w2) }
        try time("residual×2") { _ = try add(x, x); _ = try add(x, x) }
        let total = timings.reduce(0) { $0 + $1.1 }
        return timings.map { String(format: "%@ %.0f%%", $0.0, 100 * $0.1 / total) }.joined(separator: ", ")
            + String(format: " (%.1f ms total)", total * 1000)
    }

    /// The machine's sgemm rate on a square 1024³ product, the ceiling the model rows compare against.
    static func sgemmRow(reps: Int) throws -> BenchRow {
        let (m, k, n) = (1024, 1024, 1024)
        let a = try Tensor(shape: [m, k], data: randomValues(m * k, seed: 1, scale: 1))
        let b = try Tensor(shape: [k, n], data: randomValues(k * n, seed: 2, scale: 1))
        var best = Double.infinity
        for _ in 0..<(reps + 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try matmul(a, b)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return BenchRow(name: "sgemm 1024³ (machine)", storyloom_s: best, reference_s: nil,
                        extra: ["GFLOP/s": 2 * Double(m * n * k) / best / 1e9])
    }

    /// Random weights shaped like transformers' initialisation (normal-ish, std 0.02; LayerNorm 1/0).
    static func writeRandomTower(_ spec: Spec, to dir: URL) throws {
        let c = spec.config, d = c.hiddenSize, ff = c.intermediateSize
        var tensors: [String: Tensor] = [:]
        var seed: UInt64 = 7
        func random(_ shape: [Int], scale: Float = 0.02) throws -> Tensor {
            seed += 1
            return try Tensor(shape: shape, data: randomValues(shape.reduce(1, *), seed: seed, scale: scale))
        }
        let p = "vision_model."
        tensors[p + "embeddings.class_embedding"] = try random([d])
        tensors[p + "embeddings.patch_embedding.weight"] = try random([d, 3, c.patchSize, c.patchSize])
        tensors[p + "embeddings.position_embedding.weight"] = try random([c.sequenceLength, d])
        for norm in ["pre_layrnorm", "post_layernorm"] {
            tensors[p + norm + ".weight"] = Tensor(zeros: [d], value: 1)
            tensors[p + norm + ".bias"] = Tensor(zeros: [d])
        }
        for i in 0..<c.numHiddenLayers {
            let l = "\(p)encoder.layers.\(i)."
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                tensors[l + "self_attn.\(proj).weight"] = try random([d, d])
                tensors[l + "self_attn.\(proj).bias"] = try random([d])
            }
            for norm in ["layer_norm1", "layer_norm2"] {
                tensors[l + norm + ".weight"] = Tensor(zeros: [d], value: 1)
                tensors[l + norm + ".bias"] = Tensor(zeros: [d])
            }
            tensors[l + "mlp.fc1.weight"] = try random([ff, d])
            tensors[l + "mlp.fc1.bias"] = try random([ff])
            tensors[l + "mlp.fc2.weight"] = try random([d, ff])
            tensors[l + "mlp.fc2.bias"] = try random([d])
        }
        tensors["visual_projection.weight"] = try random([spec.projectionDim, d])
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"), as: .f16, metadata: ["format": "pt"])
        let config: [String: Any] = [
            "architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model",
            "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": c.numHiddenLayers,
            "num_attention_heads": c.numAttentionHeads, "num_channels": 3, "image_size": c.imageSize,
            "patch_size": c.patchSize, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
            "projection_dim": spec.projectionDim, "torch_dtype": "float32",
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: dir.appendingPathComponent("config.json"))
    }

    /// Uniform values in [-scale·√3, scale·√3) (std = scale) from a 64-bit LCG.
    static func randomValues(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var s = seed &* 0x9E3779B97F4A7C15 | 1
        var out = [Float](repeating: 0, count: n)
        let k = scale * 3.0.squareRoot().float * 2
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                s = s &* 6364136223846793005 &+ 1442695040888963407
                p[i] = (Float(s >> 40) * (1.0 / 16_777_216.0) - 0.5) * k
            }
        }
        return out
    }


}

private extension Double {
    var float: Float { Float(self) }
}
