import Foundation
import Imaging
import Models
import Tensor
import Workflow

/// `gill-story`: GILL continues a story (or a dialogue) with interleaved text and images —
/// `GILL.generate_for_images_and_texts` (see `GILLModel.story`): it reads the first `panels` panels as
/// GILL's layout (each caption then its image, squashed to 224×224; a dialogue's rounds as `Q: …?` /
/// `A: …` lines), decodes, and at each `[IMG0]` retrieves from `pool` and generates through the GILL
/// folder's Stable Diffusion decoder; the decision head picks which one the story shows.
public enum GILLStoryStep {
    public static let kind = StepKind(
        name: "gill-story", version: 1,
        summary: "GILL's interleaved generation: continue a story's first panels with text, and retrieved or generated images where GILL writes [IMG].",
        scope: .entry,
        params: Params.self,
        inputs: [
            InputSpec("context", doc: "the story's captions (e.g. texts; the first `panels` are read) or a dialogue's caption"),
            InputSpec("images", required: false, doc: "the story's panel images (e.g. images), each read after its caption (context: captions+images)"),
            InputSpec("rounds", required: false, doc: "a dialogue's rounds column (list of [question, answer])"),
            InputSpec("pool", required: false, aggregate: true,
                      doc: "GILL retrieval embeddings to retrieve from (e.g. gill-embed's image_embedding of every panel); without it GILL only generates"),
        ],
        outputs: ["sequence", "text", "image", "image_count", "p_generate"],
        stochastic: true, modelKinds: ["gill"], defaultBatchSize: 1, scopeSelectable: true,
        scoreOutputs: ["image_count", "p_generate"],
        makeRunner: { params, config in try Runner(params: params, config: config) })

    public enum Produce: String, ParamChoice {
        /// GILL's code: retrieve and generate at every [IMG]; the decision picks what is shown.
        case both
        /// Run Stable Diffusion only where the decision is to generate.
        case decided
    }

    public struct Params: StepParams {
        @Param(help: "what GILL reads of each of the first panels: the last caption, the captions, or captions each followed by its image (GILL's layout)")
        public var context = GILLContextMode.captionsAndImages
        @Param(help: "how many of the story's first panels GILL reads (0: every bound caption)", min: 0, max: 100) public var panels = 4
        @Param(help: GILLInputs.roundsHelp, min: 0, max: 100) public var rounds = 10
        @Param(help: "decode steps (GILL's num_words; an [IMG] block is one)", min: 1, max: 512) public var numWords = 32
        @Param(help: "steps before which no [IMG] may be produced (GILL's min_word_tokens)", min: 0, max: 512) public var minWordTokens = 0
        @Param(help: "above 1: the [IMG0] logit becomes |logit| × this (GILL's ret_scale_factor)", min: 0, max: 1e6) public var retScaleFactor = 1.0
        @Param(help: "above 1: then × this as well (GILL's gen_scale_factor; its evaluation uses 1e5 to force an image)", min: 0, max: 1e6)
        public var genScaleFactor = 1.0
        @Param(help: "how many [IMG] blocks become images (GILL's max_num_rets)", min: 1, max: 16) public var maxNumRets = 1
        @Param(help: "0: greedy (GILL's default); above 0: sampling at this temperature", min: 0, max: 10) public var temperature = 0.0
        @Param(help: "nucleus mass when sampling (GILL refuses top_p < 1 when greedy)", min: 0, max: 1) public var topP = 1.0
        @Param(help: "skip pool items of the story's own panels (its later panels are what GILL should not be handed)")
        public var excludeSameEntry = true
        @Param(help: "both: retrieve and generate at every [IMG] as GILL's code does; decided: run Stable Diffusion only where the decision is to generate")
        public var produce = Produce.both
        @Param(help: "denoising steps (GILL: 50)", min: 1, max: 1000) public var steps = 50
        @Param(help: "classifier-free guidance scale (GILL: 7.5; ≤ 1 disables it)", min: 0, max: 50) public var guidance = 7.5
        @Param(help: "ddim, pndm (SD v1.5's default, GILL's), euler or dpm++2m") public var scheduler = SchedulerKind.pndm
        @Param(help: "base seed; each item's seed derives from it and the item id (sampling and noise)", min: 0) public var seed = 0
        @Param(help: "image width in pixels (0: the decoder's default)", min: 0, max: 4096) public var width = 0
        @Param(help: "image height in pixels (0: the decoder's default)", min: 0, max: 4096) public var height = 0
        public init() {}
    }

    struct Runner: StepRunner {
        let generator: GILLImageGenerator
        let params: Params
        let story: GILLStoryOptions
        let generation: GenerationOptions
        let panelImages: [String: URL]

        init(params: Params, config: StepConfiguration) throws {
            generator = try SharedModels.gillGenerators.get(config.model)
            self.params = params
            var o = GILLStoryOptions()
            o.numWords = params.numWords
            o.minWordTokens = params.minWordTokens
            o.retScaleFactor = Float(params.retScaleFactor)
            o.genScaleFactor = Float(params.genScaleFactor)
            o.maxNumRets = params.maxNumRets
            o.temperature = Float(params.temperature)
            o.topP = Float(params.topP)
            guard o.temperature > 0 || o.topP >= 1 else {
                throw StepError("top_p \(params.topP) needs temperature > 0 (GILL refuses top_p with greedy decoding)")
            }
            story = o
            generation = GenerationOptions(steps: params.steps, guidance: Float(params.guidance), scheduler: params.scheduler, seed: 0,
                                           width: params.width > 0 ? params.width : nil, height: params.height > 0 ? params.height : nil)
            panelImages = RetrieveStep.panelImages(config.collection)
        }

        /// The context as GILL's prompt list: the first `panels` captions, each followed by its image.
        func segments(_ item: StepItem, services: StepServices) throws -> [GILLSegment] {
            var captions = GILLInputs.texts(item.inputs["context"])
            guard !captions.isEmpty else { throw StepError("input context has no text (\(item.inputs["context"]?.summary ?? "missing"))") }
            if item.entry.kind == .dialogue {
                if item.inputs["rounds"] == nil, !item.entry.rounds.isEmpty, params.rounds > 0, params.context != .lastCaption {
                    throw StepError("\(item.entry.id) is a dialogue: bind inputs: {rounds: rounds} to read its first \(params.rounds) rounds (or set rounds: 0)")
                }
                return GILLContext.dialogue(caption: captions[0], rounds: try GILLInputs.rounds(item.inputs["rounds"]),
                                            maxRounds: params.rounds, mode: params.context, layout: .gill)
            }
            if params.panels > 0 { captions = Array(captions.prefix(params.panels)) }
            switch params.context {
            case .lastCaption: return GILLPrompt.segments([.text(captions[captions.count - 1])])
            case .captions: return GILLPrompt.segments(captions.map { .text($0) })
            case .captionsAndImages:
                let images = try GILLInputs.images(item.inputs["images"], services: services)
                // One image per caption, or one fewer: GILL's VIST evaluation leaves the last caption without one.
                guard images.count >= captions.count - 1 else {
                    throw StepError("input images has \(images.count) image(s) for \(captions.count) caption(s): context captions+images reads each caption's image (the last one may have none)")
                }
                var pieces: [GILLSegment] = []
                for (i, c) in captions.enumerated() {
                    pieces.append(.text(c))
                    if i < images.count { pieces.append(.image(GILLPrompt.squashed(images[i]))) }
                }
                return GILLPrompt.segments(pieces)
            }
        }

        /// One item's decoded story, waiting for its generated images.
        struct Told {
            var out: Outputs
            var sequence: [Value]
            /// The [IMG] blocks that run Stable Diffusion: where their record is in `sequence`, the
            /// block, and its image's seed.
            var pending: [(at: Int, block: GILLStoryImage, seed: UInt64)]
        }

        /// Each item's text is decoded first (GILL's images do not feed back into its text); then the
        /// r-th generated image of every item in the executor batch (`batch_size`) is denoised together,
        /// one UNet call per step, each from its own seed. With one item per batch (the default) every
        /// image is generated alone, as before. An item that fails, fails alone (a failed batched call
        /// fails the items in it). Progress counts image-UNet calls.
        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            let pool = items.first?.pools["pool"] ?? []
            var vectors: [[Float]] = []
            for p in pool {
                guard let v = p.value.vector, v.count == generator.gill.config.retEmbDim else {
                    throw StepError("input pool: \(p.id) is not a \(generator.gill.config.retEmbDim)-d GILL retrieval embedding (\(p.value.summary)); bind gill-embed's image_embedding")
                }
                vectors.append(v)
            }
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            var told = [Told?](repeating: nil, count: items.count)
            for (i, item) in items.enumerated() {
                if services.isCancelled() { throw CancellationError() }
                do { told[i] = try tell(item, pool: pool.map(\.id), vectors: vectors, services: services) }
                catch is CancellationError { throw CancellationError() }
                catch { outcomes[i] = .failure("\(error)") }
            }
            let calls = generation.scheduler == .pndm ? generation.steps + 1 : generation.steps
            let total = told.reduce(0) { $0 + ($1?.pending.count ?? 0) } * calls
            var done = 0
            let rounds = told.map { $0?.pending.count ?? 0 }.max() ?? 0
            for round in 0..<rounds {
                let members = told.indices.filter { told[$0] != nil && told[$0]!.pending.count > round }
                guard !members.isEmpty else { continue }
                let requests = members.map { told[$0]!.pending[round] }
                do {
                    let start = done, together = members.count
                    let pixels = try generator.generate(promptEmbeddings: requests.map(\.block.outputs.promptEmbeddings),
                                                        seeds: requests.map(\.seed), options: generation,
                                                        progress: { step, _ in services.progress(start + step * together, total) },
                                                        isCancelled: services.isCancelled)
                    for (k, slot) in members.enumerated() {
                        do {
                            let picture = try StableDiffusionPipeline.images(pixels[k])[0]
                            let at = requests[k].at
                            guard case .record(var r) = told[slot]!.sequence[at] else { preconditionFailure("not a record") }
                            try addGenerated(picture, to: &r, block: requests[k].block, services: services)
                            told[slot]!.sequence[at] = .record(r)
                        } catch {
                            outcomes[slot] = .failure("\(error)")
                            told[slot] = nil
                        }
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    for slot in members { outcomes[slot] = .failure("\(error)"); told[slot] = nil }
                }
                done += calls * members.count
            }
            for (i, t) in told.enumerated() {
                guard var out = t?.out, let sequence = t?.sequence else { continue }
                for case .record(let record) in sequence {
                    if out["image"] == nil, let shown = record["image"] { out["image"] = shown }
                    if out["p_generate"] == nil, let g = record["p_generate"] { out["p_generate"] = g }
                }
                out["sequence"] = .list(sequence)
                outcomes[i] = .success(out)
            }
            return outcomes.map { $0 ?? .failure("no result") }
        }

        /// Decodes one item's story: its text pieces and [IMG] block records (without generated images).
        func tell(_ item: StepItem, pool allIDs: [String], vectors: [[Float]], services: StepServices) throws -> Told {
            let gill = generator.gill
            let prompt = try gill.embed(try segments(item, services: services))
            var options = story
            options.seed = item.seed
            var ids = allIDs, rows = vectors
            if params.excludeSameEntry {
                let own = item.entry.id + "#"
                let keep = ids.indices.filter { !ids[$0].hasPrefix(own) && ids[$0] != item.entry.id }
                ids = keep.map { ids[$0] }
                rows = keep.map { rows[$0] }
            }
            let result = try gill.story(prompt: prompt, options: options, pool: rows.isEmpty ? nil : rows)
            var told = Told(out: ["text": .text(result.text)], sequence: [], pending: [])
            var shownCount = 0
            for piece in result.pieces {
                switch piece {
                case .text(let t):
                    told.sequence.append(.text(t))
                case .image(let block):
                    let (record, generate) = try image(block, pool: ids, services: services)
                    // Each image of a story its own noise: the item's seed, then the next ones.
                    if generate { told.pending.append((told.sequence.count, block, item.seed &+ UInt64(shownCount))) }
                    told.sequence.append(.record(record))
                    shownCount += 1
                }
            }
            told.out["image_count"] = .number(Double(shownCount))
            return told
        }

        /// One [IMG] block as a record: the retrieved candidates (the top one copied into the media
        /// store), the decision and, when it retrieves, the image it shows; and whether Stable Diffusion
        /// runs for it (`addGenerated` completes the record then).
        func image(_ block: GILLStoryImage, pool: [String], services: StepServices) throws -> ([String: Value], Bool) {
            var r: [String: Value] = [:]
            if let g = block.outputs.pGenerate, let p = block.outputs.pRetrieve {
                r["p_generate"] = .number(Double(g))
                r["p_retrieve"] = .number(Double(p))
            }
            let generate = block.decision == .gen
            let probability = block.decidedByHead ? block.outputs.probability(block.decision).map(Double.init) ?? 1 : 1
            r["decision"] = .choice(generate ? "generate" : "retrieve", probability: probability)
            if !block.retrieved.isEmpty {
                r["retrieved"] = .ranked(block.retrieved.map { Candidate(id: pool[$0.index], score: Double($0.score)) })
                if let url = panelImages[pool[block.retrieved[0].index]] {
                    let ext = url.pathExtension.lowercased()
                    r["retrieved_image"] = .image(ImageRef(hash: try services.media.put(try Data(contentsOf: url), ext: ext), ext: ext))
                }
            }
            if !generate, let shown = r["retrieved_image"] { r["image"] = shown }
            return (r, generate || params.produce == .both)
        }

        /// The generated image into a block's record, with its score, and as the shown image when the
        /// decision is to generate.
        func addGenerated(_ picture: Image, to r: inout [String: Value], block: GILLStoryImage, services: StepServices) throws {
            r["generated"] = .image(ImageRef(hash: try services.media.put(try PNGCodec.encode(picture), ext: "png"), ext: "png"))
            // GILL scores a generated image against the block only when it has a pool.
            if !block.retrieved.isEmpty {
                r["generated_score"] = .number(Double(try generator.gill.generatedImageScore(picture.converted(toChannels: 3), retrievalEmbedding: block.outputs.retrievalEmbedding)))
            }
            if block.decision == .gen { r["image"] = r["generated"] }
        }
    }
}
