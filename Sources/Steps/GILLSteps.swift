import Foundation
import Imaging
import Models
import Tensor
import Workflow

/// Shared input handling of the GILL steps: context texts (a text or a list of texts, e.g. the
/// story's captions), optional context images and dialogue rounds, as an interleaved GILL input.
enum GILLInputs {
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

    /// The `rounds` column: a list of `[question, answer]` lists.
    static func rounds(_ v: Value?) throws -> [(question: String, answer: String)] {
        guard let list = v?.list else { return [] }
        return try list.enumerated().map { i, r in
            let qa = texts(r)
            guard qa.count == 2 else { throw StepError("input rounds: round \(i + 1) is not a [question, answer] pair (\(r.summary))") }
            return (qa[0], qa[1])
        }
    }

    /// How a configured GILL step reads its context.
    struct Reading: Sendable {
        var mode: GILLContextMode
        var maxRounds: Int

        init(_ config: StepConfiguration) throws {
            guard let mode = GILLContextMode(rawValue: config.string("context") ?? "captions") else {
                throw StepError("context must be one of \(GILLContextMode.allCases.map(\.rawValue).joined(separator: ", ")), got \(config.string("context") ?? "")")
            }
            self.mode = mode
            maxRounds = config.int("rounds") ?? 10
        }
    }

    /// The item's context as GILL segments: a story's captions (and, for `captions+images`, the
    /// images before them), or a dialogue's caption and first rounds.
    static func segments(_ item: StepItem, reading: Reading, context: StepContext) throws -> [GILLSegment] {
        let captions = texts(item.inputs["context"])
        guard !captions.isEmpty else { throw StepError("input context has no text (\(item.inputs["context"]?.summary ?? "missing"))") }
        if item.entry.kind == .dialogue {
            if item.inputs["rounds"] == nil, !item.entry.rounds.isEmpty, reading.maxRounds > 0, reading.mode != .lastCaption {
                throw StepError("\(item.entry.id) is a dialogue: bind inputs: {rounds: rounds} to read its first \(reading.maxRounds) rounds (or set rounds: 0)")
            }
            return GILLContext.dialogue(caption: captions[0], rounds: try rounds(item.inputs["rounds"]),
                                        maxRounds: reading.maxRounds, mode: reading.mode, layout: .legacy)
        }
        let imgs = reading.mode == .captionsAndImages ? try images(item.inputs["images"], context: context) : []
        return GILLContext.story(captions: captions, images: imgs, mode: reading.mode, layout: .legacy)
    }

    static func sampling(_ config: StepConfiguration) -> Sampling {
        config.string("sampling") == "top-p"
            ? .topP(Float(config.double("top_p") ?? 0.9), temperature: Float(config.double("temperature") ?? 1))
            : .greedy
    }

    static let contextParams = [
        ParamSpec("context", .choice(GILLContextMode.allCases.map(\.rawValue)), default: .string("captions"),
                  doc: "what GILL reads of a story: the last caption, all captions, or captions with the images before them (GILL's VIST settings)"),
        ParamSpec("rounds", .int(min: 0, max: 100), default: .number(10),
                  doc: "dialogues: the caption and the first N question-answer rounds (GILL's VisDial setting)"),
    ]
    static let contextInputs = [
        InputSpec("context", doc: "a text or list of texts: a story's captions (e.g. texts; the last describes the image to produce) or a dialogue's caption"),
        InputSpec("images", required: false, doc: "images of the earlier panels, each read before its caption (context: captions+images)"),
        InputSpec("rounds", required: false, doc: "a dialogue's rounds column (list of [question, answer])"),
    ]
}

/// `caption`: an image (optionally after story context) → text through GILL's LLM with the visual prefix.
public enum GILLCaptionStep {
    public static let kind = StepKind(
        name: "caption", version: 2,
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
            Runner(model: try SharedModels.gill.get(config.model), prompt: config.string("prompt") ?? "{context}",
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
                    let embs = try model.embed(GILLPrompt.segments([.image(image)] + (text.isEmpty ? [] : [.text(text)])), addBOS: false)
                    let eos = model.tokenizer.eosTokenID
                    // A caption is text: [IMG] tokens are banned outright here.
                    let options = TextGenerationOptions(maxNewTokens: maxTokens, sampling: sampling, seed: item.seed,
                                                    stopTokens: [eos, model.newlineTokenID ?? eos],
                                                    bannedTokens: Set(model.imageTokenIDs))
                    let ids = try model.llm.generate(promptEmbeddings: embs, options: options)
                    let caption = GILLPrompt.truncateCaption(model.tokenizer.decode(ids)).trimmingCharacters(in: .whitespacesAndNewlines)
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
        name: "gill-embed", version: 2,
        summary: "GILL retrieval embeddings: images through visual_fc, contexts through the [IMG0] hidden state.",
        scope: .panel,
        params: GILLInputs.contextParams,
        inputs: [InputSpec("image", required: false, doc: "an image to embed")]
            + GILLInputs.contextInputs.map { var i = $0; i.required = false; return i },
        outputs: ["image_embedding", "text_embedding"], modelKinds: ["gill"], defaultBatchSize: 8, scopeSelectable: true,
        makeRunner: { config in
            Runner(model: try SharedModels.gill.get(config.model), reading: try GILLInputs.Reading(config))
        })

    struct Runner: StepRunner {
        let model: GILLModel, reading: GILLInputs.Reading

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
                        let embs = try model.embed(try GILLInputs.segments(item, reading: reading, context: context))
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
        name: "decide", version: 2,
        summary: "GILL's decision head: whether to retrieve or generate the next image, with its probability.",
        scope: .entry,
        params: GILLInputs.contextParams,
        inputs: GILLInputs.contextInputs,
        outputs: ["decision", "p_generate"], modelKinds: ["gill"], defaultBatchSize: 8, scopeSelectable: true,
        scoreOutputs: ["p_generate"],
        makeRunner: { config in
            Runner(model: try SharedModels.gill.get(config.model), reading: try GILLInputs.Reading(config))
        })

    struct Runner: StepRunner {
        let model: GILLModel, reading: GILLInputs.Reading

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            var out: [ItemOutcome] = []
            for item in items {
                if context.isCancelled() { throw CancellationError() }
                do {
                    let embs = try model.embed(try GILLInputs.segments(item, reading: reading, context: context))
                    let o = try model.imageOutputs(context: embs)
                    guard let g = o.pGenerate, let r = o.pRetrieve else { throw StepError("\(model.folder.path) has no decision head (decision.1.* weights)") }
                    let generate = g > r
                    out.append(.success(["decision": .choice(generate ? "generate" : "retrieve", probability: Double(generate ? g : r)),
                                         "p_generate": .number(Double(g))]))
                } catch { out.append(.failure("\(error)")) }
            }
            return out
        }
    }
}

