import Foundation
import Imaging
import Models
import Tensor
import Workflow

/// Loaded GILL models shared by the steps of a run.
final class GILLModelCache: @unchecked Sendable {
    static let shared = GILLModelCache()
    private let lock = NSLock()
    private var models: [String: GILLModel] = [:]

    func model(_ model: ResolvedModel?) throws -> GILLModel {
        guard let model else { throw StepError("this step needs model: naming a GILL folder (kind gill)") }
        let key = model.folder.path + "#" + model.digest
        if let m = lock.withLock({ models[key] }) { return m }
        let loaded = try GILLModel.load(from: model.folder)
        lock.withLock { models[key] = loaded }
        return loaded
    }
}

/// Shared input handling of the GILL steps: context texts (a text or a list of texts, e.g. the
/// story's captions or dialogue rounds) and optional context images, as an interleaved GILL input.
enum GILLInputs {
    static let contextModes = ["last-caption", "captions", "captions+images"]

    static func texts(_ v: Value?) -> [String] {
        guard let v else { return [] }
        switch v {
        case .text(let s): return [s]
        case .list(let l): return l.flatMap { texts($0) }
        default: return []
        }
    }

    static func images(_ v: Value?, context: StepContext) throws -> [Image] {
        guard let v else { return [] }
        switch v {
        case .image(let r): return [try Image.load(contentsOf: context.imageURL(r)).converted(toChannels: 3)]
        case .list(let l): return try l.flatMap { try images($0, context: context) }
        default: return []
        }
    }

    /// Captions (and, for `captions+images`, the image that precedes each caption) → segments.
    static func segments(_ item: StepItem, mode: String, context: StepContext) throws -> [GILLSegment] {
        var captions = texts(item.inputs["context"])
        guard !captions.isEmpty else { throw StepError("input context has no text (\(item.inputs["context"]?.summary ?? "missing"))") }
        if mode == "last-caption" { captions = [captions[captions.count - 1]] }
        let imgs = mode == "captions+images" ? try images(item.inputs["images"], context: context) : []
        var out: [GILLSegment] = []
        for (i, c) in captions.enumerated() {
            if i < imgs.count { out.append(.image(imgs[i])) }
            out.append(.text((i == 0 ? "" : " ") + c))
        }
        return out
    }

    static func sampling(_ config: StepConfiguration) -> Sampling {
        config.string("sampling") == "top-p"
            ? .topP(Float(config.double("top_p") ?? 0.9), temperature: Float(config.double("temperature") ?? 1))
            : .greedy
    }

    static let contextParam = ParamSpec("context", .choice(contextModes), default: .string("captions"),
                                        doc: "what GILL reads: the last caption, all captions, or captions with the images before them")
    static let contextInputs = [InputSpec("context", doc: "a text or list of texts (e.g. captions, dialogue rounds)"),
                                InputSpec("images", required: false, doc: "images interleaved before the captions (context: captions+images)")]
}

/// `caption`: an image (optionally after story context) → text through GILL's LLM with the visual prefix.
public enum GILLCaptionStep {
    public static let kind = StepKind(
        name: "caption", version: 1,
        summary: "Caption an image with GILL: visual prefix (CLIP pooler → visual tokens) then OPT decoding.",
        scope: .panel,
        params: [
            ParamSpec("prompt", .string, default: .string("{context}"), doc: "text after the image; {context} is replaced by the context text"),
            ParamSpec("max_tokens", .int(min: 1, max: 256), default: .number(24), doc: "most tokens to generate"),
            ParamSpec("sampling", .choice(["greedy", "top-p"]), default: .string("greedy"), doc: "decoding"),
            ParamSpec("top_p", .double(min: 0, max: 1), default: .number(0.9), doc: "nucleus mass for top-p"),
            ParamSpec("temperature", .double(min: 0, max: 10), default: .number(1), doc: "softmax temperature for top-p"),
        ],
        inputs: [InputSpec("image", doc: "the image to caption"),
                 InputSpec("context", required: false, doc: "preceding story text (a text or list)")],
        outputs: ["caption"], stochastic: true, modelKinds: ["gill"], defaultBatchSize: 4,
        makeRunner: { config in
            Runner(model: try GILLModelCache.shared.model(config.model), prompt: config.string("prompt") ?? "{context}",
                   maxTokens: config.int("max_tokens") ?? 24, sampling: GILLInputs.sampling(config))
        })

    struct Runner: StepRunner {
        let model: GILLModel, prompt: String, maxTokens: Int, sampling: Sampling

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            var out: [ItemOutcome] = []
            for item in items {
                if context.isCancelled() { throw CancellationError() }
                do {
                    guard let ref = item.inputs["image"]?.image else { throw StepError("input image is not an image") }
                    let image = try Image.load(contentsOf: context.imageURL(ref)).converted(toChannels: 3)
                    let text = prompt.replacingOccurrences(of: "{context}", with: GILLInputs.texts(item.inputs["context"]).joined(separator: " "))
                    let embs = try model.embed([.image(image)] + (text.isEmpty ? [] : [.text(text)]))
                    let eos = model.tokenizer.eosTokenID
                    // A caption is text: [IMG] tokens are banned outright here.
                    let options = TextGenerationOptions(maxNewTokens: maxTokens, sampling: sampling, seed: item.seed,
                                                    stopTokens: [eos, model.tokenizer.id(of: "\n") ?? eos],
                                                    bannedTokens: Set(model.imageTokenIDs))
                    let ids = try model.llm.generate(promptEmbeddings: embs, options: options)
                    let caption = model.tokenizer.decode(ids).trimmingCharacters(in: .whitespacesAndNewlines)
                    out.append(.success(["caption": .text(caption)]))
                } catch { out.append(.failure("\(error)")) }
            }
            return out
        }
    }
}

/// `gill-embed`: GILL retrieval embeddings (L2-normalised) — of an image (`visual_fc`) or of a
/// context through the `[IMG0]` token (`ret_text_hidden_fcs`) — for the `retrieve` step to rank.
public enum GILLEmbedStep {
    public static let kind = StepKind(
        name: "gill-embed", version: 1,
        summary: "GILL retrieval embeddings: images through visual_fc, contexts through the [IMG0] hidden state.",
        scope: .panel,
        params: [GILLInputs.contextParam],
        inputs: [InputSpec("image", required: false, doc: "an image to embed"),
                 InputSpec("context", required: false, doc: "a text or list of texts to embed through [IMG0]"),
                 InputSpec("images", required: false, doc: "context images (context: captions+images)")],
        outputs: ["image_embedding", "text_embedding"], modelKinds: ["gill"], defaultBatchSize: 8, scopeSelectable: true,
        makeRunner: { config in
            Runner(model: try GILLModelCache.shared.model(config.model), mode: config.string("context") ?? "captions")
        })

    struct Runner: StepRunner {
        let model: GILLModel, mode: String

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            var out: [ItemOutcome] = []
            for item in items {
                if context.isCancelled() { throw CancellationError() }
                do {
                    var o: Outputs = [:]
                    if let ref = item.inputs["image"] {
                        guard let r = ref.image else { throw StepError("input image is not an image") }
                        let img = try Image.load(contentsOf: context.imageURL(r)).converted(toChannels: 3)
                        o["image_embedding"] = .vector(CLIPText.normalized(try model.imageRetrievalEmbeddings([img])[0]))
                    }
                    if item.inputs["context"] != nil {
                        let embs = try model.embed(try GILLInputs.segments(item, mode: mode, context: context))
                        o["text_embedding"] = .vector(CLIPText.normalized(try model.imageOutputs(context: embs).retrievalEmbedding))
                    }
                    guard !o.isEmpty else { throw StepError("gill-embed needs an image or a context input") }
                    out.append(.success(o))
                } catch { out.append(.failure("\(error)")) }
            }
            return out
        }
    }
}

/// `decide`: GILL's decision head on the `[IMG0]` state after the context: retrieve or generate.
public enum GILLDecideStep {
    public static let kind = StepKind(
        name: "decide", version: 1,
        summary: "GILL's decision head: whether to retrieve or generate the next image, with its probability.",
        scope: .entry,
        params: [GILLInputs.contextParam],
        inputs: GILLInputs.contextInputs,
        outputs: ["decision", "p_generate"], modelKinds: ["gill"], defaultBatchSize: 8, scopeSelectable: true,
        scoreOutputs: ["p_generate"],
        makeRunner: { config in
            Runner(model: try GILLModelCache.shared.model(config.model), mode: config.string("context") ?? "captions")
        })

    struct Runner: StepRunner {
        let model: GILLModel, mode: String

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            var out: [ItemOutcome] = []
            for item in items {
                if context.isCancelled() { throw CancellationError() }
                do {
                    let embs = try model.embed(try GILLInputs.segments(item, mode: mode, context: context))
                    let d = try model.imageOutputs(context: embs).decision
                    guard d.count == 2 else { throw StepError("\(model.folder.path) has no decision head (decision.1.* weights)") }
                    let generate = d[1] > d[0]
                    out.append(.success(["decision": .choice(generate ? "generate" : "retrieve", probability: Double(generate ? d[1] : d[0])),
                                         "p_generate": .number(Double(d[1]))]))
                } catch { out.append(.failure("\(error)")) }
            }
            return out
        }
    }
}

/// `gill-generate`: GILL's image-generation conditioning for a context — the GILLMapper's 77×768
/// `prompt_embeds`, output flattened as a vector (row-major) until the Stable Diffusion pipeline
/// takes them directly.
public enum GILLGenerateStep {
    public static let kind = StepKind(
        name: "gill-generate", version: 1,
        summary: "GILL's prompt embeddings (GILLMapper output, 77×768 flattened) for a context, to condition Stable Diffusion.",
        scope: .entry,
        params: [GILLInputs.contextParam],
        inputs: GILLInputs.contextInputs,
        outputs: ["prompt_embeds"], modelKinds: ["gill"], defaultBatchSize: 4, scopeSelectable: true,
        makeRunner: { config in
            Runner(model: try GILLModelCache.shared.model(config.model), mode: config.string("context") ?? "captions")
        })

    struct Runner: StepRunner {
        let model: GILLModel, mode: String

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            var out: [ItemOutcome] = []
            for item in items {
                if context.isCancelled() { throw CancellationError() }
                do {
                    let embs = try model.embed(try GILLInputs.segments(item, mode: mode, context: context))
                    out.append(.success(["prompt_embeds": .vector(try model.imageOutputs(context: embs).promptEmbeddings.data)]))
                } catch { out.append(.failure("\(error)")) }
            }
            return out
        }
    }
}
