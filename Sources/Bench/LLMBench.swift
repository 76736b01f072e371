import Foundation
import Models
import Tensor

/// `storyloom bench llm`: OPT decoders at OPT-125m and OPT-1.3b shapes with random weights,
/// Storyloom against transformers/PyTorch on the same weights in the same invocation.
///
/// The weights are written once to a temporary `OPTForCausalLM` folder (F16, to halve the file;
/// both sides widen to f32 on load). Each model is timed on a 64-token prefill and on per-token
/// decoding with the KV cache (greedy continuation after that prefill); decode rows also report
/// the GB/s of f32 weights streamed per token (every linear plus the tied lm_head), the quantity
/// that bounds decoding on a CPU. Storyloom runs first and frees its model before the reference
/// starts, so the two never hold the weights at once.
public enum LLMBench {
    struct Spec {
        var name: String
        var config: OPTConfig
    }

    static func specs() -> [Spec] {
        var small = OPTConfig()   // defaults are OPT-125m's
        small.vocabSize = 50272
        var large = OPTConfig()
        large.hiddenSize = 2048; large.wordEmbedProjDim = 2048; large.numHiddenLayers = 24
        large.ffnDim = 8192; large.numAttentionHeads = 32
        return [Spec(name: "OPT-125m", config: small), Spec(name: "OPT-1.3b", config: large)]
    }

    static let promptLength = 64

    /// Runs the benchmark with `threads` compute threads; `quick` decodes fewer tokens and
    /// repeats less.
    public static func run(threads: Int, quick: Bool) throws -> BenchReport {
        Threads.set(threads)
        let reps = quick ? 2 : 3
        let decodeTokens = quick ? 16 : 32
        var report = BenchReport()
        report.notes.append("threads=\(Threads.count) \(openBLASEnvironmentNote()) prefill=\(promptLength) tokens, decode=\(decodeTokens) tokens, reps=\(reps) (best of)")
        let python = PyTorchReference.python(for: "bench_llm_reference.py")
        if python == nil {
            report.notes.append("PyTorch reference not run: no Python found (set STORYLOOM_PYTHON or run from the repository root with .venv/bin/python) or Tools/bench_llm_reference.py is missing")
        }
        for spec in specs() {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-llmbench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try writeRandomOPT(spec.config, to: dir)
            let prompt = promptIDs(vocab: spec.config.vocabSize)
            let ours = try measure(folder: dir, prompt: prompt, decodeTokens: decodeTokens, reps: reps)
            var reference: [String: Any]?
            if let python {
                reference = try PyTorchReference.run("bench_llm_reference.py", python: python, arguments: [
                    "--model", dir.path, "--threads", "\(Threads.count)", "--reps", "\(reps)",
                    "--prompt", prompt.map(String.init).joined(separator: ","), "--decode", "\(decodeTokens)"], scratch: dir)
            }
            let refPrefill = reference?["prefill_seconds"] as? Double
            let refDecode = reference?["decode_seconds_per_token"] as? Double
            if let missing = reference?["missing_keys"] as? [String], !missing.isEmpty {
                report.notes.append("\(spec.name): transformers did not find \(missing.count) weight(s) in the benchmark folder: \(missing.prefix(5).joined(separator: ", "))")
            }
            if let theirs = reference?["prefill_last_logits"] as? [Any] {
                // JSON numbers may come back as Int (e.g. 0.0) or NSNumber; null marks a non-finite reference logit.
                let values = theirs.map { ($0 as? NSNumber)?.doubleValue ?? ($0 as? Double) ?? ($0 as? Int).map(Double.init) }
                let finite = zip(ours.lastLogits, values).compactMap { a, b in b.map { abs(Double(a) - $0) } }
                let nonFinite = values.count - finite.count
                report.notes.append("\(spec.name): max |Δ| of the prefill's last-position logits vs PyTorch = \(String(format: "%.2e", finite.max() ?? .infinity))"
                    + (nonFinite > 0 ? " (\(nonFinite) of \(values.count) reference logits non-finite, left out)" : ""))
            }
            if let theirs = reference?["decoded_ids"] as? [Int] {
                report.notes.append("\(spec.name): greedy decode ids \(theirs == ours.decodedIDs ? "match" : "differ from") PyTorch's (\(ours.decodedIDs.count) tokens)")
            }
            var prefillExtra: [String: Double] = ["tok/s": Double(promptLength) / ours.prefill,
                                                  "GFLOP/s": 2 * ours.parameters * Double(promptLength) / ours.prefill / 1e9]
            if let refPrefill { prefillExtra["ref tok/s"] = Double(promptLength) / refPrefill }
            report.rows.append(BenchRow(name: "\(spec.name) prefill \(promptLength)", storyloom_s: ours.prefill,
                                        reference_s: refPrefill, extra: prefillExtra))
            var decodeExtra: [String: Double] = ["tok/s": 1 / ours.decode, "GB/s": ours.weightBytes / ours.decode / 1e9]
            if let refDecode {
                decodeExtra["ref tok/s"] = 1 / refDecode
                decodeExtra["ref GB/s"] = ours.weightBytes / refDecode / 1e9
            }
            report.rows.append(BenchRow(name: "\(spec.name) decode (per token, cache)", storyloom_s: ours.decode,
                                        reference_s: refDecode, extra: decodeExtra))
            if let reference {
                report.notes.append("\(spec.name) reference: torch \(reference["torch"] ?? "?"), transformers \(reference["transformers"] ?? "?"), torch threads \(reference["threads"] ?? "?")")
            }
        }
        report.notes.append("ratio = reference_s / storyloom_s (above 1: Storyloom faster); GB/s = f32 weights of every linear and the lm_head streamed once per decoded token; GFLOP/s counts 2 per weight per token")
        return report
    }

    struct Measurement {
        var prefill: Double
        var decode: Double
        var lastLogits: [Float]
        var decodedIDs: [Int]
        /// Weights read per decoded token, bytes (f32).
        var weightBytes: Double
        /// Multiply-add weights per token (linears and lm_head).
        var parameters: Double
    }

    /// Storyloom's side; the model is released when this returns.
    static func measure(folder: URL, prompt: [Int], decodeTokens: Int, reps: Int) throws -> Measurement {
        let model = try OPTModel.load(from: folder)
        let c = model.config
        let d = Double(c.hiddenSize), f = Double(c.ffnDim)
        let parameters = Double(c.numHiddenLayers) * (4 * d * d + 2 * d * f) + Double(c.vocabSize) * Double(c.wordEmbedProjDim)
        let embeddings = try model.embed(prompt)
        var state = model.makeState()
        _ = try model.forward(inputEmbeddings: embeddings, state: &state, lastLogitsOnly: true)   // warm-up
        var prefill = Double.infinity, decode = Double.infinity
        var lastLogits: [Float] = [], decoded: [Int] = []
        for _ in 0..<reps {
            var s = model.makeState()
            var start = DispatchTime.now().uptimeNanoseconds
            var out = try model.forward(inputEmbeddings: embeddings, state: &s, lastLogitsOnly: true)
            prefill = min(prefill, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            lastLogits = out.logits.row(0)
            var ids: [Int] = []
            start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<decodeTokens {
                let next = argmax(out.logits.row(out.logits.rowCount - 1))
                ids.append(next)
                out = try model.forward(inputEmbeddings: model.embed([next]), state: &s, lastLogitsOnly: true)
            }
            decode = min(decode, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(decodeTokens))
            decoded = ids
        }
        return Measurement(prefill: prefill, decode: decode, lastLogits: lastLogits, decodedIDs: decoded,
                           weightBytes: 4 * parameters, parameters: parameters)
    }

    static func argmax(_ v: [Float]) -> Int {
        var best = 0
        for i in 1..<v.count where v[i] > v[best] { best = i }
        return best
    }

    /// A fixed pseudo-random prompt (ids past the first few special tokens).
    static func promptIDs(vocab: Int) -> [Int] {
        ClipBench.randomValues(promptLength, seed: 42, scale: 1).map { v in
            4 + Int((Double(v) / (2 * 3.0.squareRoot()) + 0.5) * Double(vocab - 5)) % (vocab - 4)
        }
    }

    /// Random OPT weights (std 0.02 as OPT's init, LayerNorm 1/0, biases 0.02), tied lm_head.
    static func writeRandomOPT(_ c: OPTConfig, to dir: URL) throws {
        let d = c.hiddenSize, f = c.ffnDim
        var tensors: [String: Tensor] = [:]
        var seed: UInt64 = 11
        func random(_ shape: [Int], scale: Float = 0.02) throws -> Tensor {
            seed += 1
            return try Tensor(shape: shape, data: ClipBench.randomValues(shape.reduce(1, *), seed: seed, scale: scale))
        }
        let p = "model.decoder."
        tensors[p + "embed_tokens.weight"] = try random([c.vocabSize, c.wordEmbedProjDim])
        tensors[p + "embed_positions.weight"] = try random([c.maxPositionEmbeddings + OPTModel.positionOffset, d])
        tensors[p + "final_layer_norm.weight"] = Tensor(zeros: [d], value: 1)
        tensors[p + "final_layer_norm.bias"] = Tensor(zeros: [d])
        for i in 0..<c.numHiddenLayers {
            let l = "\(p)layers.\(i)."
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                tensors[l + "self_attn.\(proj).weight"] = try random([d, d])
                tensors[l + "self_attn.\(proj).bias"] = try random([d])
            }
            for norm in ["self_attn_layer_norm", "final_layer_norm"] {
                tensors[l + norm + ".weight"] = Tensor(zeros: [d], value: 1)
                tensors[l + norm + ".bias"] = Tensor(zeros: [d])
            }
            tensors[l + "fc1.weight"] = try random([f, d])
            tensors[l + "fc1.bias"] = try random([f])
            tensors[l + "fc2.weight"] = try random([d, f])
            tensors[l + "fc2.bias"] = try random([d])
        }
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"), as: .f16, metadata: ["format": "pt"])
        let config: [String: Any] = [
            "architectures": ["OPTForCausalLM"], "model_type": "opt", "activation_function": "relu",
            "hidden_size": d, "word_embed_proj_dim": c.wordEmbedProjDim, "ffn_dim": f, "num_hidden_layers": c.numHiddenLayers,
            "num_attention_heads": c.numAttentionHeads, "max_position_embeddings": c.maxPositionEmbeddings,
            "vocab_size": c.vocabSize, "do_layer_norm_before": true, "enable_bias": true, "dropout": 0.0,
            "attention_dropout": 0.0, "layerdrop": 0.0, "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1,
            "tie_word_embeddings": true, "torch_dtype": "float32",
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: dir.appendingPathComponent("config.json"))
    }

}

