import Foundation
import Models
import Tensor

/// `storyloom bench llm`: OPT decoders at OPT-125m and OPT-1.3b shapes with random weights,
/// Storyloom against transformers/PyTorch on the same weights in the same invocation.
///
/// The weights are written once to a temporary `OPTForCausalLM` folder (F16, to halve the file).
/// Each model is timed on a 64-token prefill and on per-token decoding with the KV cache (greedy
/// continuation after that prefill), first widened to float32 on both sides, then — Storyloom
/// only — kept as stored in f16, with the half rows' speed-up over the float32 rows of the same run
/// (`×f32`). Decode rows also report the GB/s of weights streamed per token (every linear plus the
/// tied lm_head; 4 or 2 bytes each), the quantity that bounds decoding on a CPU, and that figure as a
/// share of the memory read bandwidth measured in the same run: before the first model and again after
/// each, the best of these measurements (on a shared virtual machine one measurement alone swung 33–52 GB/s
/// within minutes, and came out below what the decode itself streamed).
///
/// `large` adds an OPT-6.7B-shaped row in bf16 beside PyTorch in bf16: random weights generated
/// in memory on each side (nothing written to disk; the two sides' values differ, so only times and
/// peak memory are compared), Storyloom's side first and freed before PyTorch's starts, with the
/// peak RSS of each side. It needs about 14 GB free and takes minutes.
///
/// Storyloom runs first and frees its model before the reference starts, so the two never hold
/// the weights at once.
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
    public static func run(threads: Int, quick: Bool, large: Bool = false) throws -> BenchReport {
        Threads.set(threads)
        let reps = quick ? 2 : 3
        let decodeTokens = quick ? 16 : 32
        var report = BenchReport()
        report.notes.append("threads=\(Threads.count) \(openBLASEnvironmentNote()) prefill=\(promptLength) tokens, decode=\(decodeTokens) tokens, reps=\(reps) (best of)")
        let python = PyTorchReference.python(for: "bench_llm_reference.py")
        if python == nil {
            report.notes.append("PyTorch reference not run: no Python found (set STORYLOOM_PYTHON or run from the repository root with .venv/bin/python) or Tools/bench_llm_reference.py is missing")
        }
        // Decoding reads every weight once per token, so its bound is the memory's read bandwidth: measured
        // here, in the same run and at the same threads, so that each decode row can say how close it gets.
        // Measured again after each model, the best kept, and the decode rows' shares filled in at the end.
        var bandwidth = memoryReadBandwidth(reps: reps)
        var bandwidthMeasurements = [bandwidth.gbPerSecond]
        let bandwidthRow = report.rows.count
        report.rows.append(BenchRow(name: "memory read bandwidth", storyloom_s: bandwidth.seconds, reference_s: nil, extra: [:]))
        var decodeRows: [(row: Int, gbPerSecond: Double)] = []
        for spec in specs() {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-llmbench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try writeRandomOPT(spec.config, to: dir)
            let prompt = promptIDs(vocab: spec.config.vocabSize)
            let ours = try measure(prompt: prompt, decodeTokens: decodeTokens, reps: reps) {
                try OPTModel.load(from: dir, precision: .float32)
            }
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
                report.notes.append("\(spec.name): max |Δ| of the prefill's last-position logits vs PyTorch = \(finite.max().map { String(format: "%.2e", $0) } ?? "—")"
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
            decodeRows.append((report.rows.count, ours.weightBytes / ours.decode / 1e9))
            report.rows.append(BenchRow(name: "\(spec.name) decode (per token, cache)", storyloom_s: ours.decode,
                                        reference_s: refDecode, extra: decodeExtra))
            if let reference {
                report.notes.append("\(spec.name) reference: torch \(reference["torch"] ?? "?"), transformers \(reference["transformers"] ?? "?"), torch threads \(reference["threads"] ?? "?")")
            }
            // The same F16 file kept as stored: the half-precision path against the float32 rows above.
            let half = try measure(prompt: prompt, decodeTokens: decodeTokens, reps: reps) {
                try OPTModel.load(from: dir, precision: .stored)
            }
            report.rows.append(BenchRow(name: "\(spec.name) f16 weights prefill \(promptLength)", storyloom_s: half.prefill, reference_s: nil,
                                        extra: ["tok/s": Double(promptLength) / half.prefill, "×f32": ours.prefill / half.prefill,
                                                "GFLOP/s": 2 * half.parameters * Double(promptLength) / half.prefill / 1e9]))
            decodeRows.append((report.rows.count, half.weightBytes / half.decode / 1e9))
            report.rows.append(BenchRow(name: "\(spec.name) f16 weights decode (per token, cache)", storyloom_s: half.decode, reference_s: nil,
                                        extra: ["tok/s": 1 / half.decode, "×f32": ours.decode / half.decode,
                                                "GB/s": half.weightBytes / half.decode / 1e9]))
            // Random weights at OPT-1.3b's width overflow float32 in the last logits on both paths; compared
            // where both are finite, as the PyTorch note does.
            let pairs = zip(half.lastLogits, ours.lastLogits)
            let halfDelta = pairs.filter { $0.0.isFinite && $0.1.isFinite }.map { abs($0 - $1) }.max()
            let nonFinite = pairs.filter { !$0.0.isFinite || !$0.1.isFinite }.count
            report.notes.append("\(spec.name): f16 weights as stored vs widened: max |Δ| of last-position logits "
                + (halfDelta.map { String(format: "%.2e", $0) } ?? "—")
                + (nonFinite > 0 ? " (\(nonFinite) of \(ours.lastLogits.count) non-finite on either side, left out)" : "")
                + ", greedy ids \(half.decodedIDs == ours.decodedIDs ? "match" : "differ")")
            let again = memoryReadBandwidth(reps: reps)
            bandwidthMeasurements.append(again.gbPerSecond)
            if again.gbPerSecond > bandwidth.gbPerSecond { bandwidth = again }
        }
        report.rows[bandwidthRow] = BenchRow(
            name: "memory read bandwidth (\(bandwidth.bytes >> 20) MiB summed, best of \(bandwidthMeasurements.count) in this run)",
            storyloom_s: bandwidth.seconds, reference_s: nil, extra: ["GB/s": bandwidth.gbPerSecond])
        for (row, gbPerSecond) in decodeRows {
            report.rows[row].extra["% mem BW"] = 100 * gbPerSecond / bandwidth.gbPerSecond
        }
        report.notes.append("memory read bandwidth measured before the first model and after each: "
            + bandwidthMeasurements.map { String(format: "%.1f", $0) }.joined(separator: ", ") + " GB/s; the decode rows' % mem BW is against the best")
        if large {
            try largeRows(into: &report, python: python, quick: quick)
        }
        report.notes.append("ratio = reference_s / storyloom_s (above 1: Storyloom faster); ×f32 = Storyloom's float32 row / its half-precision row in this run; GB/s = weights of every linear and the lm_head (4 bytes as f32, 2 as f16/bf16) streamed once per decoded token; % mem BW = that against the memory read bandwidth row (the best of its measurements in this run); GFLOP/s counts 2 per weight per token; half kernels \(Weight.vectorizedHalfKernels ? "AVX2+F16C" : "scalar")")
        return report
    }

    /// Read bandwidth of main memory: a 1 GiB buffer (far beyond any cache) summed in `Threads.count`
    /// contiguous parts, 16 floats per step; best of `reps` after one pass that faults the pages in.
    static func memoryReadBandwidth(reps: Int) -> (bytes: Int, seconds: Double, gbPerSecond: Double) {
        let count = 1 << 28
        let buffer = [Float](repeating: 1, count: count)
        let parts = max(1, Threads.count)
        let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: parts)
        defer { sums.deallocate() }
        var best = Double.infinity
        buffer.withUnsafeBufferPointer { bp in
            let base = UnsafeRawPointer(bp.baseAddress!)
            for rep in 0...reps {
                let start = DispatchTime.now().uptimeNanoseconds
                Threads.parallelFor(parts) { part in
                    let lo = count / parts * part, hi = part == parts - 1 ? count : count / parts * (part + 1)
                    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
                    var i = lo
                    while i + 32 <= hi {
                        acc0 += base.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        acc1 += base.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
                        i += 32
                    }
                    while i < hi { acc0[0] += bp[i]; i += 1 }
                    sums[part] = (acc0 + acc1).sum()
                }
                if rep > 0 { best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
        }
        // The sum is checked so that the reads cannot be optimised away.
        precondition(sums.reduce(0, +) > 0, "memory bandwidth: the buffer summed to zero")
        let bytes = count * MemoryLayout<Float>.size
        return (bytes, best, Double(bytes) / best / 1e9)
    }

    struct Measurement {
        var prefill: Double
        var decode: Double
        var lastLogits: [Float]
        var decodedIDs: [Int]
        /// Weights read per decoded token, bytes (at their stored size).
        var weightBytes: Double
        /// Multiply-add weights per token (linears and lm_head).
        var parameters: Double
    }

    /// Storyloom's side on the model `load` gives; the model is released when this returns.
    static func measure(prompt: [Int], decodeTokens: Int, reps: Int, load: () throws -> OPTModel) throws -> Measurement {
        let model = try load()
        let c = model.config
        let bytesPerWeight = Double(model.embedTokens.dtype.byteSize)
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
                           weightBytes: bytesPerWeight * parameters, parameters: parameters)
    }

    /// OPT-6.7B's shape (facebook/opt-6.7b's config).
    static func opt67bConfig() -> OPTConfig {
        var c = OPTConfig()
        c.vocabSize = 50272; c.hiddenSize = 4096; c.wordEmbedProjDim = 4096; c.numHiddenLayers = 32
        c.ffnDim = 16384; c.numAttentionHeads = 32; c.maxPositionEmbeddings = 2048
        return c
    }

    /// Prompt length of the OPT-6.7B rows (its prefill is ~0.9 TFLOP at 64 tokens; 16 keep the row to minutes).
    static let largePromptLength = 16

    /// The OPT-6.7B bf16 rows: Storyloom then PyTorch, each generating its random bf16 weights in memory.
    static func largeRows(into report: inout BenchReport, python: URL?, quick: Bool) throws {
        let c = opt67bConfig()
        let decodeTokens = quick ? 4 : 8
        let prompt = Array(promptIDs(vocab: c.vocabSize).prefix(largePromptLength))
        let resetWorked = PeakMemory.reset()
        let ours = try measure(prompt: prompt, decodeTokens: decodeTokens, reps: 1) {
            try OPTModel.random(config: c, dtype: .bf16)
        }
        let peak = PeakMemory.peakBytes()
        var reference: [String: Any]?
        if let python {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-llmbench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            let config: [String: Any] = [
                "vocab_size": c.vocabSize, "hidden_size": c.hiddenSize, "word_embed_proj_dim": c.wordEmbedProjDim,
                "ffn_dim": c.ffnDim, "num_hidden_layers": c.numHiddenLayers, "num_attention_heads": c.numAttentionHeads,
                "max_position_embeddings": c.maxPositionEmbeddings, "do_layer_norm_before": true, "enable_bias": true,
                "dropout": 0.0, "attention_dropout": 0.0, "layerdrop": 0.0, "activation_function": "relu",
                "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1, "tie_word_embeddings": true,
            ]
            let json = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
            reference = try PyTorchReference.run("bench_llm_reference.py", python: python, arguments: [
                "--random-config", json, "--dtype", "bfloat16", "--threads", "\(Threads.count)", "--reps", "1",
                "--prompt", prompt.map(String.init).joined(separator: ","), "--decode", "\(decodeTokens)"], scratch: scratch)
        }
        let refPeak = reference?["peak_rss_bytes"] as? Double ?? (reference?["peak_rss_bytes"] as? Int).map(Double.init)
        var prefillExtra: [String: Double] = ["tok/s": Double(prompt.count) / ours.prefill,
                                              "GFLOP/s": 2 * ours.parameters * Double(prompt.count) / ours.prefill / 1e9]
        var decodeExtra: [String: Double] = ["tok/s": 1 / ours.decode, "GB/s": ours.weightBytes / ours.decode / 1e9]
        if let peak { prefillExtra["peak RSS GB"] = peak / 1e9; decodeExtra["peak RSS GB"] = peak / 1e9 }
        if let refPeak { prefillExtra["ref peak RSS GB"] = refPeak / 1e9; decodeExtra["ref peak RSS GB"] = refPeak / 1e9 }
        let refPrefill = reference?["prefill_seconds"] as? Double
        let refDecode = reference?["decode_seconds_per_token"] as? Double
        if let refDecode { decodeExtra["ref GB/s"] = ours.weightBytes / refDecode / 1e9 }
        report.rows.append(BenchRow(name: "OPT-6.7B bf16 prefill \(prompt.count)", storyloom_s: ours.prefill, reference_s: refPrefill, extra: prefillExtra))
        report.rows.append(BenchRow(name: "OPT-6.7B bf16 decode (per token, cache)", storyloom_s: ours.decode, reference_s: refDecode, extra: decodeExtra))
        report.notes.append("OPT-6.7B bf16: random weights generated in memory on each side (different values; times and memory only), \(decodeTokens) decoded tokens, one repetition; peak RSS = VmHWM of Storyloom's process \(resetWorked ? "reset before the row" : "since start (reset not possible)") and ru_maxrss of the PyTorch process; bf16 weights = \(String(format: "%.1f", ours.weightBytes / 1e9)) GB")
        if let reference {
            report.notes.append("OPT-6.7B reference: torch \(reference["torch"] ?? "?"), transformers \(reference["transformers"] ?? "?"), torch threads \(reference["threads"] ?? "?"), dtype \(reference["dtype"] ?? "?")")
        }
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

