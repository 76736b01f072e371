import Foundation
import Tensor

/// GILL's own weights by Storyloom name — GILL's state-dict names without `model.` — read lazily
/// from `gill.safetensors`, or from GILL's released `pretrained_ckpt.pth.tar` (names as GILL's
/// `load_gill` reads them: every `module.` removed, then the `model.` of its wrapper) plus
/// `decision_model.pth.tar` (its `1.*` become `decision.1.*`).
final class GILLWeights {
    /// The weights files, for messages and digests.
    let files: [URL]
    private let location: [String: (checkpoint: Checkpoint, stored: String)]
    /// Shapes of the names taken: what the model asked for.
    private(set) var taken: [String: [Int]] = [:]
    /// How `takeWeight` keeps bf16/f16 matrices (GILL's released checkpoint is bf16).
    let precision: WeightPrecision

    /// The file GILL weights are read from in `folder`: `gill.safetensors`, else `pretrained_ckpt.pth.tar`.
    static func mainFile(in folder: URL) throws -> URL {
        for name in ["gill.safetensors", "pretrained_ckpt.pth.tar"] {
            let url = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw ModelError("\(folder.path): no gill.safetensors or pretrained_ckpt.pth.tar (GILL's weights)")
    }

    init(folder: URL, precision: WeightPrecision = .stored) throws {
        self.precision = precision
        let main = try Self.mainFile(in: folder)
        var location: [String: (checkpoint: Checkpoint, stored: String)] = [:]
        var files = [main]
        func add(_ checkpoint: Checkpoint, rename: (String) -> String) throws {
            for stored in checkpoint.names {
                let name = rename(stored)
                if let other = location[name] {
                    throw ModelError("\(checkpoint.location.path): tensors '\(other.stored)' and '\(stored)' both read as '\(name)'")
                }
                location[name] = (checkpoint, stored)
            }
        }
        let checkpoint = try Checkpoint(url: main)
        if main.pathExtension == "safetensors" {
            try add(checkpoint) { $0 }
        } else {
            try add(checkpoint) { Self.releasedName($0) }
            let decision = folder.appendingPathComponent("decision_model.pth.tar")
            if FileManager.default.fileExists(atPath: decision.path) {
                files.append(decision)
                try add(try Checkpoint(url: decision)) { "decision." + $0.replacingOccurrences(of: "module.", with: "") }
            }
        }
        self.files = files
        self.location = location
    }

    /// A released name as Storyloom's: `module.` dropped wherever it is (DataParallel), then `model.`.
    static func releasedName(_ stored: String) -> String {
        let name = stored.replacingOccurrences(of: "module.", with: "")
        return name.hasPrefix("model.") ? String(name.dropFirst("model.".count)) : name
    }

    var names: [String] { location.keys.sorted() }
    func contains(_ name: String) -> Bool { location[name] != nil }

    /// Where `name` is stored, with its stored name, shape and dtype.
    func entry(_ name: String) -> (entry: CheckpointEntry, stored: String)? {
        guard let l = location[name], let e = l.checkpoint.info(l.stored) else { return nil }
        return (e, l.stored)
    }

    /// Reads `name`, which must have exactly `shape` (as GILL stores it), as float32.
    func take(_ name: String, shape: [Int]) throws -> Tensor {
        try location[name]!.checkpoint.tensor(named: check(name, shape: shape))
    }

    /// Reads the weight matrix `name` (exactly `shape`) in `precision`.
    func takeWeight(_ name: String, shape: [Int]) throws -> Weight {
        try location[name]!.checkpoint.weight(named: check(name, shape: shape), precision: precision)
    }

    /// Checks `name` exists with `shape`, records it as taken and returns its stored name.
    private func check(_ name: String, shape: [Int]) throws -> String {
        guard let (e, stored) = entry(name) else {
            throw ModelError("\(files[0].path): tensor '\(name)' is required but missing")
        }
        guard e.shape == shape else {
            throw ModelError("\(e.url.path): tensor '\(stored)' has shape \(e.shape), but the GILL config implies \(shape)")
        }
        taken[name] = shape
        return stored
    }

    var unused: [String] { names.filter { taken[$0] == nil } }

    /// Checks every tensor of `spec` before any is read: all missing names in one error, then
    /// all shape mismatches; returns the names `spec` does not use.
    func validate(_ spec: [GILLTensorSpec]) throws -> [String] {
        let missing = spec.filter { location[$0.name] == nil }.map(\.name)
        guard missing.isEmpty else {
            throw ModelError("\(files.map(\.path).joined(separator: " + ")): \(missing.count) tensor(s) GILL needs are missing: \(missing.joined(separator: ", "))")
        }
        let wrong = spec.compactMap { s -> String? in
            guard let (e, stored) = entry(s.name), e.shape != s.shape else { return nil }
            return "'\(stored)' has shape \(e.shape), expected \(s.shape)"
        }
        guard wrong.isEmpty else {
            throw ModelError("\(files.map(\.path).joined(separator: " + ")): \(wrong.count) tensor(s) do not fit the GILL config: \(wrong.joined(separator: "; "))")
        }
        let needed = Set(spec.map(\.name))
        return names.filter { !needed.contains($0) }
    }
}

/// A tensor GILL's code needs: its Storyloom name (GILL's without `model.`) and shape as GILL stores it.
public struct GILLTensorSpec: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
}

extension GILLModel {
    /// Every tensor the loader reads for `config` with an LLM of width `llmDim` and a CLIP vision
    /// tower of width `clipDim` (and the decision head when `decision`), in GILL's names.
    public static func tensorSpec(config c: GILLConfig, mapper m: GILLConfig.Mapper, llmDim e: Int, clipDim v: Int,
                                  decision: Bool) -> [GILLTensorSpec] {
        var out: [GILLTensorSpec] = []
        func add(_ name: String, _ shape: [Int]) { out.append(GILLTensorSpec(name: name, shape: shape)) }
        func linear(_ name: String, _ o: Int, _ i: Int) { add(name + ".weight", [o, i]); add(name + ".bias", [o]) }
        func norm(_ name: String, _ d: Int) { add(name + ".weight", [d]); add(name + ".bias", [d]) }
        func attention(_ p: String, _ d: Int) {
            add(p + ".in_proj_weight", [3 * d, d]); add(p + ".in_proj_bias", [3 * d]); linear(p + ".out_proj", d, d)
        }
        linear("visual_embeddings", e * c.nVisualTokens, v)
        linear("visual_fc", c.retEmbDim, v)
        add("logit_scale", [])
        add("input_embeddings.weight", [c.numTokens, e])
        linear("ret_text_hidden_fcs.0.model", c.retEmbDim, e)
        let p = "gen_text_hidden_fcs.0.", d = m.dim, f = m.ffn
        linear(p + "fc", d, e)
        for i in 0..<m.layers {
            let l = p + "tfm.encoder.layers.\(i)."
            attention(l + "self_attn", d); linear(l + "linear1", f, d); linear(l + "linear2", d, f)
            norm(l + "norm1", d); norm(l + "norm2", d)
        }
        norm(p + "tfm.encoder.norm", d)
        for i in 0..<m.layers {
            let l = p + "tfm.decoder.layers.\(i)."
            attention(l + "self_attn", d); attention(l + "multihead_attn", d); linear(l + "linear1", f, d); linear(l + "linear2", d, f)
            norm(l + "norm1", d); norm(l + "norm2", d); norm(l + "norm3", d)
        }
        norm(p + "tfm.decoder.norm", d)
        add(p + "query_embs", [1, c.numClipTokens, d])
        linear(p + "model", c.genEmbDim, d)
        if decision { linear("decision.1", 2, e) }
        return out
    }
}

extension GILLMapper {
    /// The mapper's sizes as its weights' shapes show them (`shape` looks a Storyloom name up);
    /// heads are not visible in shapes (GILL's 4). `file` names the weights in errors.
    public static func sizes(file: String, prefix p: String = "gen_text_hidden_fcs.0.", heads: Int = 4,
                             shape: (String) -> [Int]?) throws -> GILLConfig.Mapper {
        guard let fc = shape(p + "fc.weight"), fc.count == 2 else {
            throw ModelError("\(file): tensor '\(p)fc.weight' (the GILLMapper's input layer) is missing or not a matrix; it gives the mapper's width")
        }
        guard let l1 = shape(p + "tfm.encoder.layers.0.linear1.weight"), l1.count == 2 else {
            throw ModelError("\(file): tensor '\(p)tfm.encoder.layers.0.linear1.weight' is missing or not a matrix; it gives the mapper's FFN width")
        }
        var layers = 0
        while shape(p + "tfm.encoder.layers.\(layers).norm1.weight") != nil { layers += 1 }
        guard fc[0] % heads == 0 else {
            throw ModelError("\(file): mapper width \(fc[0]) (from \(p)fc.weight) is not divisible by \(heads) heads; set mapper in config.json")
        }
        return GILLConfig.Mapper(dim: fc[0], heads: heads, layers: layers, ffn: l1[0])
    }

    static func sizes(from w: GILLWeights, prefix p: String) throws -> GILLConfig.Mapper {
        try sizes(file: w.files[0].path, prefix: p) { w.entry($0)?.entry.shape }
    }
}
