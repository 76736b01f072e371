import Foundation
import Tensor

/// Validates a model folder without running (or fully loading) it: which kind it is, every
/// tensor the code needs by name and shape against what the files hold (with their dtypes),
/// missing / misshapen / unused tensors, and the memory its weights take as Storyloom holds them
/// (F16/BF16 matrices as stored, or everything widened to float32). Kinds: a transformers CLIP or
/// OPT folder, a diffusers Stable Diffusion folder, a GILL folder (`model_args.json` or `config.json`, its `opt/`, `clip/` and optional decoder).
///
/// OPT's, CLIP's and GILL's needs are listed from their configs (`tensorSpec`s, kept equal to the
/// loaders by tests on the fixtures); the UNet's and VAE's come from their real constructors run
/// over placeholder tensors that are allocated but never written.
public struct ModelCheck: Sendable {
    public enum Kind: String, Sendable {
        case clip, stableDiffusion = "stable-diffusion", opt, gill
    }

    public enum Status: String, Sendable {
        case ok, missing, wrongShape = "wrong shape", unused, ignored
    }

    /// One tensor: what the code needs and what the files hold.
    public struct Row: Sendable {
        public var name: String
        public var expected: [Int]?
        public var found: [Int]?
        public var dtype: String?
        public var status: Status
    }

    /// One weights component (a model folder, or GILL's own weights).
    public struct Part: Sendable {
        public var name: String
        public var location: String
        public var files: [String] = []
        public var rows: [Row] = []
        /// Why the part could not be checked tensor by tensor (config errors, unreadable files).
        public var errors: [String] = []
        /// Facts worth knowing that are not errors.
        public var notes: [String] = []

        public func rows(_ s: Status) -> [Row] { rows.filter { $0.status == s } }
        /// Elements of the tensors the code takes.
        public var parameters: Int { rows.filter { $0.expected != nil }.reduce(0) { $0 + ($1.expected ?? []).reduce(1, *) } }
        /// Bytes as loaded with `WeightPrecision.stored`: F16/BF16 matrices and kernels (rank ≥ 2)
        /// at 2 bytes, everything else at 4 (approximate: a few small matrices, such as position
        /// embeddings, are widened anyway).
        public var storedBytes: Int {
            rows.filter { $0.expected != nil }.reduce(0) { total, r in
                let n = (r.expected ?? []).reduce(1, *)
                let half = (r.expected?.count ?? 0) >= 2 && (r.dtype == "F16" || r.dtype == "BF16")
                return total + n * (half ? 2 : 4)
            }
        }
        public var ok: Bool { errors.isEmpty && rows(.missing).isEmpty && rows(.wrongShape).isEmpty }
    }

    public var folder: URL
    public var kind: Kind?
    public var parts: [Part] = []
    /// Folder-level errors (unknown kind, missing components).
    public var errors: [String] = []

    public var ok: Bool { kind != nil && errors.isEmpty && parts.allSatisfy(\.ok) }
    /// Bytes of the weights the code keeps, as float32 (loaded with `.float32`).
    public var memoryBytes: Int { parts.reduce(0) { $0 + 4 * $1.parameters } }
    /// About the bytes the weights take loaded with `.stored` (the default): see `Part.storedBytes`.
    public var storedMemoryBytes: Int { parts.reduce(0) { $0 + $1.storedBytes } }

    /// What kind of model folder `folder` is, from its files.
    public static func kind(of folder: URL) -> Kind? {
        let fm = FileManager.default
        func has(_ name: String) -> Bool { fm.fileExists(atPath: folder.appendingPathComponent(name).path) }
        if has("model_index.json") { return .stableDiffusion }
        if has("model_args.json") || has("gill.safetensors") || has("pretrained_ckpt.pth.tar") { return .gill }
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("config.json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        if object["n_visual_tokens"] != nil || object["gen_token_idx"] != nil { return .gill }
        switch object["model_type"] as? String {
        case "opt": return .opt
        case "clip", "clip_vision_model", "clip_text_model": return .clip
        default: return nil
        }
    }

    /// Checks `folder`; problems are collected in the result, never thrown.
    public static func run(_ folder: URL) -> ModelCheck {
        var check = ModelCheck(folder: folder)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            check.errors.append("\(folder.path): not a folder")
            return check
        }
        guard let kind = kind(of: folder) else {
            check.errors.append("\(folder.path): not a model folder Storyloom knows (no model_index.json, model_args.json, gill.safetensors, or config.json with model_type opt / clip)")
            return check
        }
        check.kind = kind
        switch kind {
        case .opt: check.parts = [opt(folder, name: "opt")]
        case .clip: check.parts = [clip(folder, name: "clip")]
        case .stableDiffusion: check.parts = stableDiffusion(folder, prefix: "")
        case .gill: check.parts = gill(folder, errors: &check.errors)
        }
        return check
    }

    // MARK: comparing

    /// Rows for `spec` against `checkpoint`; tensors outside it are `unused` unless `ignored` says so.
    static func compare(_ spec: [(String, [Int])], _ checkpoint: Checkpoint, rename: (String) -> String = { $0 },
                        ignored: (String) -> Bool = { _ in false }) -> [Row] {
        var stored: [String: String] = [:]
        for n in checkpoint.names { stored[rename(n)] = n }
        var rows: [Row] = []
        var seen = Set<String>()
        for (name, shape) in spec where !seen.contains(name) {
            seen.insert(name)
            guard let s = stored[name], let e = checkpoint.info(s) else {
                rows.append(Row(name: name, expected: shape, found: nil, dtype: nil, status: .missing))
                continue
            }
            rows.append(Row(name: name, expected: shape, found: e.shape, dtype: e.dtype, status: e.shape == shape ? .ok : .wrongShape))
        }
        for (name, s) in stored.sorted(by: { $0.key < $1.key }) where !seen.contains(name) {
            let e = checkpoint.info(s)
            rows.append(Row(name: name, expected: nil, found: e?.shape, dtype: e?.dtype, status: ignored(name) ? .ignored : .unused))
        }
        return rows
    }

    // MARK: kinds

    static func opt(_ folder: URL, name: String) -> Part {
        var part = Part(name: name, location: folder.path)
        do {
            let config = try OPTConfig.load(from: folder.appendingPathComponent("config.json"))
            let checkpoint = try Checkpoint(url: folder)
            part.files = checkpoint.urls.map(\.lastPathComponent)
            let prefix = checkpoint.contains("decoder.embed_tokens.weight") ? "decoder." : "model.decoder."
            part.rows = compare(OPTModel.tensorSpec(config: config, prefix: prefix), checkpoint,
                                ignored: { config.tieWordEmbeddings && $0 == "lm_head.weight" })
        } catch { part.errors.append("\(error)") }
        return part
    }

    static func clip(_ folder: URL, name: String) -> Part {
        var part = Part(name: name, location: folder.path)
        do {
            let config = try CLIPConfig.load(from: folder.appendingPathComponent("config.json"))
            let checkpoint = try Checkpoint(url: folder)
            part.files = checkpoint.urls.map(\.lastPathComponent)
            part.rows = compare(CLIPModel.tensorSpec(config: config, checkpoint: checkpoint), checkpoint,
                                ignored: { $0.hasSuffix("embeddings.position_ids") })
            if config.vision != nil, !FileManager.default.fileExists(atPath: folder.appendingPathComponent("preprocessor_config.json").path) {
                part.notes.append("no preprocessor_config.json: CLIP's defaults for image_size \(config.vision!.imageSize) are used")
            }
        } catch { part.errors.append("\(error)") }
        return part
    }

    /// Records what the SD constructors ask for, checked against the checkpoint's header, and
    /// hands them tensors whose storage is allocated but never written (untouched pages cost no memory).
    final class DrySource: WeightSource {
        let checkpoint: Checkpoint
        var asked: [(String, [Int])] = []
        init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }

        func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
            asked.append((name, shape))
            let n = shape.reduce(1, *)
            return try Tensor(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { _, count in count = n })
        }
        func has(_ name: String) -> Bool { checkpoint.contains(name) }
        func shape(of name: String) -> [Int]? { checkpoint.info(name)?.shape }
    }

    static func stableDiffusion(_ folder: URL, prefix: String) -> [Part] {
        var parts: [Part] = []
        func dry(_ component: String, _ build: (URL, DrySource) throws -> Void, ignored: @escaping (String) -> Bool = { _ in false }) {
            let url = folder.appendingPathComponent(component)
            var part = Part(name: prefix + component, location: url.path)
            do {
                let checkpoint = try diffusersWeights(in: url)
                part.files = checkpoint.urls.map(\.lastPathComponent)
                let source = DrySource(checkpoint)
                try build(url, source)
                part.rows = compare(source.asked, checkpoint, ignored: ignored)
            } catch { part.errors.append("\(error)") }
            parts.append(part)
        }
        dry("unet") { url, source in
            _ = try UNet2DConditionModel(config: try UNetConfig(url: url.appendingPathComponent("config.json")), reader: source)
        }
        // The pipeline decodes only: the VAE encoder is left on disk, as `AutoencoderKL.load(decoderOnly:)` does.
        dry("vae", { url, source in
            _ = try AutoencoderKL(config: try VAEConfig(url: url.appendingPathComponent("config.json")), reader: source, decoderOnly: true)
        }, ignored: { $0.hasPrefix("encoder.") || $0.hasPrefix("quant_conv.") })
        let text = folder.appendingPathComponent("text_encoder")
        if FileManager.default.fileExists(atPath: text.path) {
            parts.append(clip(text, name: prefix + "text_encoder"))
        } else {
            var part = Part(name: prefix + "text_encoder", location: text.path)
            part.notes.append("absent: prompt embeddings must come from elsewhere (GILL), and guidance needs the empty prompt's")
            parts.append(part)
        }
        return parts
    }

    static func gill(_ folder: URL, errors: inout [String]) -> [Part] {
        var parts: [Part] = []
        var part = Part(name: "gill", location: folder.path)
        let config: GILLConfig
        do {
            let url = try GILLConfig.file(in: folder)
            config = try GILLConfig.load(from: url)
            part.notes.append("config: \(url.lastPathComponent); decision classes \(config.decisionClasses.map(\.rawValue))")
        } catch {
            errors.append("\(error)")
            return parts
        }
        let optPart = opt(folder.appendingPathComponent("opt"), name: "gill/opt")
        let clipPart = clip(folder.appendingPathComponent("clip"), name: "gill/clip")
        parts += [optPart, clipPart]
        do {
            let optConfig = try OPTConfig.load(from: folder.appendingPathComponent("opt/config.json"))
            let clipConfig = try CLIPConfig.load(from: folder.appendingPathComponent("clip/config.json"))
            guard let vision = clipConfig.vision else { throw ModelError("\(folder.path)/clip has no vision tower") }
            let e = config.llmEmbedDim ?? optConfig.wordEmbedProjDim, c = config.clipDim ?? vision.hiddenSize
            if e != optConfig.wordEmbedProjDim { part.errors.append("llm_embed_dim \(e) but opt/ has word_embed_proj_dim \(optConfig.wordEmbedProjDim)") }
            if c != vision.hiddenSize { part.errors.append("clip_dim \(c) but clip/ has hidden_size \(vision.hiddenSize)") }
            var tokenizer = try GPT2Tokenizer(folder: folder.appendingPathComponent("opt"))
            tokenizer.addTokens([config.imageToken], special: true)
            let added = tokenizer.addTokens((0..<config.numTokens).map { "[IMG\($0)]" })
            if added != config.genTokenIdx {
                part.errors.append("gen_token_idx \(config.genTokenIdx) differs from the tokenizer's [IMG] ids \(added)")
            }
            if let last = config.genTokenIdx.max(), last >= optConfig.vocabSize {
                part.notes.append("[IMG] ids up to \(last) grow OPT's \(optConfig.vocabSize)-row embeddings to \(last + 1)")
            }
            let weights = try GILLWeights(folder: folder)
            part.files = weights.files.map(\.lastPathComponent)
            let mapper = try config.mapper ?? GILLMapper.sizes(from: weights, prefix: "gen_text_hidden_fcs.0.")
            if config.mapper == nil { part.notes.append("mapper sizes from the weights: \(mapper.dim) wide, \(mapper.layers)+\(mapper.layers) layers, FFN \(mapper.ffn), \(mapper.heads) heads") }
            let spec = GILLModel.tensorSpec(config: config, mapper: mapper, llmDim: e, clipDim: c,
                                            decision: weights.contains("decision.1.weight"))
            if !weights.contains("decision.1.weight") { part.notes.append("no decision head: decide and p(generate) are unavailable") }
            var rows: [Row] = []
            for s in spec {
                guard let (entry, _) = weights.entry(s.name) else {
                    rows.append(Row(name: s.name, expected: s.shape, found: nil, dtype: nil, status: .missing))
                    continue
                }
                rows.append(Row(name: s.name, expected: s.shape, found: entry.shape, dtype: entry.dtype, status: entry.shape == s.shape ? .ok : .wrongShape))
            }
            let needed = Set(spec.map(\.name))
            for name in weights.names where !needed.contains(name) {
                let entry = weights.entry(name)?.entry
                rows.append(Row(name: name, expected: nil, found: entry?.shape, dtype: entry?.dtype, status: .unused))
            }
            part.rows = rows
        } catch { part.errors.append("\(error)") }
        let decoder = GILLImageGenerator.decoderFolder(of: folder, config: config)
        if decoder == nil { part.notes.append("no image decoder (sd/ or config decoder): generation unavailable") }
        parts.append(part)
        if let decoder { parts += stableDiffusion(decoder, prefix: "gill/decoder/") }
        return parts
    }

    // MARK: report

    /// A plain-text report; `tensors` lists every tensor, else only the problems.
    public func report(tensors: Bool = false) -> String {
        var lines = ["\(folder.path): \(kind.map { "\($0.rawValue) folder" } ?? "unknown")"]
        lines += errors.map { "  error: \($0)" }
        func shape(_ s: [Int]?) -> String { s.map { "[\($0.map(String.init).joined(separator: ", "))]" } ?? "-" }
        for p in parts {
            let dtypes = Dictionary(grouping: p.rows.compactMap(\.dtype), by: { $0 }).map { "\($0.key) ×\($0.value.count)" }.sorted()
            let needed = p.rows.filter { $0.expected != nil }.count
            lines.append("  \(p.name): \(p.location)" + (p.files.isEmpty ? "" : " (\(p.files.joined(separator: ", ")))"))
            if p.errors.isEmpty, !p.rows.isEmpty {
                lines.append("    \(needed) tensors needed, \(needed - p.rows(.missing).count) present; stored as \(dtypes.joined(separator: ", ")); "
                             + "\(p.parameters) parameters, \(Self.bytes(4 * p.parameters)) as float32, ≈\(Self.bytes(p.storedBytes)) as stored")
            }
            lines += p.errors.map { "    error: \($0)" }
            lines += p.notes.map { "    note: \($0)" }
            for status in [Status.missing, .wrongShape, .unused] where !p.rows(status).isEmpty {
                lines.append("    \(status.rawValue) (\(p.rows(status).count)):")
                for r in p.rows(status) {
                    switch status {
                    case .missing: lines.append("      \(r.name) \(shape(r.expected))")
                    case .wrongShape: lines.append("      \(r.name): stored \(shape(r.found)), needs \(shape(r.expected))")
                    default: lines.append("      \(r.name) \(shape(r.found)) \(r.dtype ?? "")")
                    }
                }
            }
            if tensors {
                for r in p.rows { lines.append("      \(r.status.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(r.name) \(shape(r.found ?? r.expected)) \(r.dtype ?? "")") }
            }
        }
        lines.append("  memory: ≈\(Self.bytes(storedMemoryBytes)) of weights as stored (the default; F16/BF16 matrices at 2 bytes), \(Self.bytes(memoryBytes)) widened to float32")
        let problems = errors.count + parts.reduce(0) { $0 + $1.errors.count + $1.rows(.missing).count + $1.rows(.wrongShape).count }
        lines.append(ok ? "OK" : "\(problems) problem(s)")
        return lines.joined(separator: "\n")
    }

    static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var v = Double(n), u = 0
        while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }
}

extension OPTModel {
    /// Every tensor `load(from:)` takes for `config`, under `prefix` (`model.decoder.` or
    /// `decoder.`), plus `lm_head.weight` when the embeddings are not tied.
    public static func tensorSpec(config c: OPTConfig, prefix p: String) -> [(String, [Int])] {
        let e = c.wordEmbedProjDim, d = c.hiddenSize, f = c.ffnDim
        var out: [(String, [Int])] = [(p + "embed_tokens.weight", [c.vocabSize, e]),
                                      (p + "embed_positions.weight", [c.maxPositionEmbeddings + positionOffset, d])]
        if c.hasProjections { out += [(p + "project_in.weight", [d, e]), (p + "project_out.weight", [e, d])] }
        for i in 0..<c.numHiddenLayers {
            let l = p + "layers.\(i)."
            for (name, o, n) in [("self_attn.q_proj", d, d), ("self_attn.k_proj", d, d), ("self_attn.v_proj", d, d),
                                 ("self_attn.out_proj", d, d), ("fc1", f, d), ("fc2", d, f)] {
                out.append((l + name + ".weight", [o, n]))
                if c.enableBias { out.append((l + name + ".bias", [o])) }
            }
            out += [(l + "self_attn_layer_norm.weight", [d]), (l + "self_attn_layer_norm.bias", [d]),
                    (l + "final_layer_norm.weight", [d]), (l + "final_layer_norm.bias", [d])]
        }
        if c.hasFinalLayerNorm { out += [(p + "final_layer_norm.weight", [d]), (p + "final_layer_norm.bias", [d])] }
        if !c.tieWordEmbeddings { out.append(("lm_head.weight", [c.vocabSize, e])) }
        return out
    }
}

extension CLIPModel {
    /// Every tensor `load(from:)` takes for `config` (prefixes and optional projections decided
    /// from `checkpoint` as the loader decides them).
    public static func tensorSpec(config: CLIPConfig, checkpoint: Checkpoint) -> [(String, [Int])] {
        func layers(_ p: String, _ n: Int, d: Int, ff: Int) -> [(String, [Int])] {
            (0..<n).flatMap { i in CLIPEncoderLayer.parameterTable(d: d, ff: ff).map { ("\(p)encoder.layers.\(i).\($0.name)", $0.shape) } }
        }
        func vision(_ c: CLIPVisionConfig, _ p: String, projection: Int?) -> [(String, [Int])] {
            let d = c.hiddenSize
            return [(p + "embeddings.class_embedding", [d]), (p + "embeddings.patch_embedding.weight", [d, c.numChannels, c.patchSize, c.patchSize]),
                    (p + "embeddings.position_embedding.weight", [c.sequenceLength, d]),
                    (p + "pre_layrnorm.weight", [d]), (p + "pre_layrnorm.bias", [d])]
                + layers(p, c.numHiddenLayers, d: d, ff: c.intermediateSize)
                + [(p + "post_layernorm.weight", [d]), (p + "post_layernorm.bias", [d])]
                + (projection.map { [("visual_projection.weight", [$0, d])] } ?? [])
        }
        func text(_ c: CLIPTextConfig, _ p: String, projection: Int?) -> [(String, [Int])] {
            let d = c.hiddenSize
            return [(p + "embeddings.token_embedding.weight", [c.vocabSize, d]), (p + "embeddings.position_embedding.weight", [c.maxPositionEmbeddings, d])]
                + layers(p, c.numHiddenLayers, d: d, ff: c.intermediateSize)
                + [(p + "final_layer_norm.weight", [d]), (p + "final_layer_norm.bias", [d])]
                + (projection.map { [("text_projection.weight", [$0, d])] } ?? [])
        }
        switch config.modelType {
        case "clip":
            return vision(config.vision!, "vision_model.", projection: config.projectionDim)
                + text(config.text!, "text_model.", projection: config.projectionDim) + [("logit_scale", [])]
        case "clip_vision_model":
            let bare = !checkpoint.contains("vision_model.embeddings.class_embedding") && checkpoint.contains("embeddings.class_embedding")
            let projected = checkpoint.contains("visual_projection.weight")
            return vision(config.vision!, bare ? "" : "vision_model.", projection: projected ? config.vision!.projectionDim : nil)
        default:
            let bare = !checkpoint.contains("text_model.embeddings.token_embedding.weight") && checkpoint.contains("embeddings.token_embedding.weight")
            let projected = checkpoint.contains("text_projection.weight")
            return text(config.text!, bare ? "" : "text_model.", projection: projected ? config.text!.projectionDim : nil)
        }
    }
}
