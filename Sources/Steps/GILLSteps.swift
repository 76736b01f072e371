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

    static func images(_ v: Value?, services: StepServices) throws -> [Image] {
        guard let v else { return [] }
        switch v {
        case .image: return [try services.rgbImage(v, input: "images")]
        case .list(let l): return try l.flatMap { try images($0, services: services) }
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
        /// GILL's layout (its evaluation scripts) unless a workflow asks for the earlier one.
        var layout: GILLContextLayout = .gill
    }

    /// The item's context as GILL segments: a story's captions (and, for `captions+images`, the
    /// images before them), or a dialogue's caption and first rounds.
    static func segments(_ item: StepItem, reading: Reading, services: StepServices) throws -> [GILLSegment] {
        let captions = texts(item.inputs["context"])
        guard !captions.isEmpty else { throw StepError("input context has no text (\(item.inputs["context"]?.summary ?? "missing"))") }
        if item.entry.kind == .dialogue {
            if item.inputs["rounds"] == nil, !item.entry.rounds.isEmpty, reading.maxRounds > 0, reading.mode != .lastCaption {
                throw StepError("\(item.entry.id) is a dialogue: bind inputs: {rounds: rounds} to read its first \(reading.maxRounds) rounds (or set rounds: 0)")
            }
            return GILLContext.dialogue(caption: captions[0], rounds: try rounds(item.inputs["rounds"]),
                                        maxRounds: reading.maxRounds, mode: reading.mode, layout: reading.layout)
        }
        let imgs = reading.mode == .captionsAndImages ? try images(item.inputs["images"], services: services) : []
        return GILLContext.story(captions: captions, images: imgs, mode: reading.mode, layout: reading.layout)
    }

    static let contextHelp = "what GILL reads of a story: the last caption, all captions, or captions with the images before them (GILL's VIST settings)"
    static let roundsHelp = "dialogues: the first N question-answer rounds (GILL's VisDial setting; the caption alone when 0)"
    static let layoutHelp = "gill: GILL's evaluation layout (BOS once, cap1, img1, …, cap5 with images squashed to 224×224; a dialogue's rounds as Q: …?/A: … lines); legacy: Storyloom's earlier one (captions joined by spaces, each image before its caption; caption + Q: … A: … on one line)"

    static let contextInputs = [
        InputSpec("context", doc: "a text or list of texts: a story's captions (e.g. texts; the last describes the image to produce) or a dialogue's caption"),
        InputSpec("images", required: false, doc: "images of the earlier panels, each read before its caption (context: captions+images)"),
        InputSpec("rounds", required: false, doc: "a dialogue's rounds column (list of [question, answer])"),
    ]
}

/// The params of the GILL steps that read a context and nothing more (`gill-embed`, `decide`).
public struct ContextParams: StepParams {
    @Param(help: GILLInputs.contextHelp) public var context = GILLContextMode.captions
    @Param(help: GILLInputs.roundsHelp, min: 0, max: 100) public var rounds = 10
    @Param(help: GILLInputs.layoutHelp) public var layout = GILLContextLayout.gill
    public init() {}

    var reading: GILLInputs.Reading { .init(mode: context, maxRounds: rounds, layout: layout) }
}

extension GILLContextMode: ParamChoice {}
extension GILLContextLayout: ParamChoice {}

/// `caption`: an image (optionally after story context) → text through GILL's LLM with the visual prefix.
public enum GILLCaptionStep {
    public static let kind = StepKind(
        name: "caption", version: 2,
        summary: "Caption an image with GILL: visual prefix (CLIP pooler → visual tokens) then OPT decoding.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("image", doc: "the image to caption"),
                 InputSpec("context", required: false, doc: "preceding story text (a text or list)")],
        outputs: ["caption"], stochastic: true, modelKinds: ["gill"], defaultBatchSize: 4,
        makeRunner: { params, config in
            Runner(model: try SharedModels.gill.get(config.model), prompt: params.prompt, maxTokens: params.maxTokens,
                   sampling: params.sampling == .topP ? .topP(Float(params.topP), temperature: Float(params.temperature)) : .greedy)
        })

    public enum Decoding: String, ParamChoice {
        case greedy
        case topP = "top-p"
    }

    public struct Params: StepParams {
        @Param(help: "text after the image; {context} is replaced by the context text") public var prompt = "{context}"
        @Param(help: "most tokens to generate", min: 1, max: 256) public var maxTokens = 24
        @Param(help: "decoding") public var sampling = Decoding.greedy
        @Param(help: "nucleus mass for top-p", min: 0, max: 1) public var topP = 0.9
        @Param(help: "softmax temperature for top-p", min: 0, max: 10) public var temperature = 1.0
        public init() {}
    }

    struct Runner: StepRunner {
        let model: GILLModel, prompt: String, maxTokens: Int, sampling: Sampling

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            try services.eachItem(items) { _, item in
                let image = try services.rgbImage(item.inputs["image"], input: "image")
                let text = prompt.replacingOccurrences(of: "{context}", with: GILLInputs.texts(item.inputs["context"]).joined(separator: " "))
                let embs = try model.embed(GILLPrompt.segments([.image(image)] + (text.isEmpty ? [] : [.text(text)])), addBOS: false)
                let eos = model.tokenizer.eosTokenID
                // A caption is text: [IMG] tokens are banned outright here.
                let options = TextGenerationOptions(maxNewTokens: maxTokens, sampling: sampling, seed: item.seed,
                                                    stopTokens: [eos, model.newlineTokenID ?? eos],
                                                    bannedTokens: Set(model.imageTokenIDs))
                let ids = try model.llm.generate(promptEmbeddings: embs, options: options)
                let caption = GILLPrompt.truncateCaption(model.tokenizer.decode(ids)).trimmingCharacters(in: .whitespacesAndNewlines)
                return ["caption": .text(caption)]
            }
        }
    }
}

/// `gill-embed`: GILL retrieval embeddings (L2-normalised) — of an image (`visual_fc`) or of a
/// context through the `[IMG0]` token (`ret_text_hidden_fcs`) — for the `retrieve` step to rank.
public enum GILLEmbedStep {
    public static let kind = StepKind(
        name: "gill-embed", version: 3,
        summary: "GILL retrieval embeddings: images through visual_fc, contexts through the [IMG0] hidden state.",
        scope: .panel,
        params: ContextParams.self,
        inputs: [InputSpec("image", required: false, doc: "an image to embed")]
            + GILLInputs.contextInputs.map { var i = $0; i.required = false; return i },
        outputs: ["image_embedding", "text_embedding"], modelKinds: ["gill"], defaultBatchSize: 8, scopeSelectable: true,
        makeRunner: { params, config in Runner(model: try SharedModels.gill.get(config.model), reading: params.reading) })

    struct Runner: StepRunner {
        let model: GILLModel, reading: GILLInputs.Reading

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            try services.eachItem(items) { _, item in
                var o: Outputs = [:]
                if item.inputs["image"] != nil {
                    let img = try services.rgbImage(item.inputs["image"], input: "image")
                    o["image_embedding"] = .vector(CLIPText.normalized(try model.imageRetrievalEmbeddings([img])[0]))
                }
                if item.inputs["context"] != nil {
                    let embs = try model.embed(try GILLInputs.segments(item, reading: reading, services: services))
                    o["text_embedding"] = .vector(CLIPText.normalized(try model.imageOutputs(context: embs).retrievalEmbedding))
                }
                guard !o.isEmpty else { throw StepError("gill-embed needs an image or a context input") }
                return o
            }
        }
    }
}

/// `decide`: GILL's decision head on the `[IMG0]` state after the context: retrieve or generate.
public enum GILLDecideStep {
    public static let kind = StepKind(
        name: "decide", version: 3,
        summary: "GILL's decision head: whether to retrieve or generate the next image, with its probability.",
        scope: .entry,
        params: ContextParams.self,
        inputs: GILLInputs.contextInputs,
        outputs: ["decision", "p_generate", "p_retrieve"], modelKinds: ["gill"], defaultBatchSize: 8, scopeSelectable: true,
        scoreOutputs: ["p_generate", "p_retrieve"],
        makeRunner: { params, config in Runner(model: try SharedModels.gill.get(config.model), reading: params.reading) })

    struct Runner: StepRunner {
        let model: GILLModel, reading: GILLInputs.Reading

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            try services.eachItem(items) { _, item in
                let embs = try model.embed(try GILLInputs.segments(item, reading: reading, services: services))
                let o = try model.imageOutputs(context: embs)
                guard let g = o.pGenerate, let r = o.pRetrieve else { throw StepError("\(model.folder.path) has no decision head (decision.1.* weights)") }
                let generate = g > r
                return ["decision": .choice(generate ? "generate" : "retrieve", probability: Double(generate ? g : r)),
                        "p_generate": .number(Double(g)), "p_retrieve": .number(Double(r))]
            }
        }
    }
}

