import Foundation
import Imaging
import Tensor

/// GILL's controls of interleaved generation (`GILL.generate_for_images_and_texts`), with its defaults.
public struct GILLStoryOptions: Sendable, Equatable {
    /// Decode steps (GILL's `num_words`; an [IMG] block is one step).
    public var numWords = 32
    /// Steps before which no [IMG] token may be produced (GILL compares the step index, not words).
    public var minWordTokens = 0
    /// Above 1, the `[IMG0]` logit becomes `|logit| × factor` (GILL's `ret_scale_factor`).
    public var retScaleFactor: Float = 1
    /// Above 1, applied after `retScaleFactor` to the same logit (GILL shares the [IMG] tokens).
    public var genScaleFactor: Float = 1
    /// 0 is greedy (GILL's default); above 0, softmax sampling at this temperature.
    public var temperature: Float = 0
    /// Nucleus mass with temperature > 0 (GILL refuses top_p < 1 when greedy).
    public var topP: Float = 1
    /// How many [IMG] blocks are turned into images (GILL's `max_num_rets`).
    public var maxNumRets = 1
    /// Seed of the sampler (unused when greedy).
    public var seed: UInt64 = 0

    public init() {}
}

/// One retrieved pool row: its index in the pool and GILL's score (cosine × exp(logit_scale), minus 1000
/// for rows an earlier [IMG] block already showed).
public struct GILLRetrieved: Sendable, Equatable {
    public var index: Int
    public var score: Float
}

/// What GILL derived at one [IMG] block of a story.
public struct GILLStoryImage: Sendable {
    /// Position of `[IMG0]` in the generated tokens.
    public var position: Int
    public var outputs: GILLImageOutputs
    /// Pool rows, best first (empty without a pool).
    public var retrieved: [GILLRetrieved]
    /// What GILL shows: the decision head's argmax when there is a pool and a head; `gen` otherwise
    /// (GILL generates when it has nothing to retrieve from).
    public var decision: GILLDecision
    /// Whether the decision head made the decision.
    public var decidedByHead: Bool
}

/// A piece of GILL's interleaved output.
public enum GILLStoryPiece: Sendable {
    case text(String)
    case image(GILLStoryImage)
}

/// The result of `GILLModel.story`.
public struct GILLStory: Sendable {
    /// Every id decoded, [IMG] blocks included, before the newline cut.
    public var generatedTokens: [Int]
    /// `generatedTokens` cut at the first newline (when it is not the first token), as GILL cuts them.
    public var tokens: [Int]
    /// GILL's return list: text, image, text, image, … (see `GILLModel.story`).
    public var pieces: [GILLStoryPiece]
    /// The text of `tokens` with the [IMG] tokens left out (including what follows the last shown image,
    /// which GILL's return list drops).
    public var text: String
}

extension GILLModel {
    /// GILL's `generate_for_images_and_texts` after `prompt` (input embeddings): decoding with GILL's
    /// logit rules (`[IMG1..7]` banned; every [IMG] banned before step `minWordTokens`; the `[IMG0]`
    /// logit scaled as `|l| × factor` for factors above 1; greedy at temperature 0), `[IMG1..7]` appended
    /// after `[IMG0]`; no stop at EOS. Then, as GILL: the tokens cut at the first newline unless it is the
    /// first token; without an [IMG] the truncated caption alone; otherwise for each of the first
    /// `maxNumRets` blocks, the text before it (through `truncateCaption`) and the block, whose
    /// retrieval embedding ranks `pool` (vectors as GILL's `emb_matrix` rows: normalised, ×
    /// exp(logit_scale)) after rows shown earlier lose 1000, keeping the top 3 — GILL's stop check
    /// `len(image_outputs) == max_num_rets` compares its three-key dict, so only `maxNumRets == 3` keeps
    /// just the first. Two departures, both where GILL's code cannot be followed: a block decoded at the
    /// last step gets its hidden states computed (GILL's code has none for it and fails), and the text
    /// after a block starts after `[IMG7]` (GILL's `last_ret_idx = ret_idx + 1` puts the literal
    /// `[IMG1]…[IMG7]` at the front of its next text piece).
    public func story(prompt: Tensor, options: GILLStoryOptions, pool: [[Float]]? = nil) throws -> GILLStory {
        guard options.temperature > 0 || options.topP >= 1 else {
            throw ModelError("top_p \(options.topP) needs temperature > 0: GILL refuses top_p with greedy decoding (temperature 0)")
        }
        let img = imageTokenIDs
        let sampling: Sampling = options.temperature > 0 ? .topP(options.topP, temperature: options.temperature) : .greedy
        var sampler = TokenSampler(sampling, seed: options.seed)
        var state = llm.makeState()
        var out = try llm.forward(inputEmbeddings: prompt, state: &state, lastLogitsOnly: true)
        var tokens: [Int] = []
        var blocks: [Int: GILLImageOutputs] = [:]
        var cut: Int?
        var newlineSeen = false
        let newline = newlineTokenID
        for step in 0..<options.numWords {
            var logits = out.logits.row(out.logits.rowCount - 1)
            for id in img.dropFirst() { logits[id] = -.infinity }
            if step < options.minWordTokens {
                logits[img[0]] = -.infinity
            } else {
                if options.retScaleFactor > 1 { logits[img[0]] = abs(logits[img[0]]) * options.retScaleFactor }
                if options.genScaleFactor > 1 { logits[img[0]] = abs(logits[img[0]]) * options.genScaleFactor }
            }
            let token = sampler.next(logits)
            if token == img[0] {
                blocks[tokens.count] = try imageBlock(state: &state, into: &out)
                tokens += img
                continue
            }
            tokens.append(token)
            if token == newline, !newlineSeen {
                newlineSeen = true
                // GILL keeps nothing from its first newline on, unless that newline is the first token.
                if tokens.count > 1 { cut = tokens.count - 1; break }
            }
            if step + 1 < options.numWords {
                out = try llm.forward(inputEmbeddings: llm.embed([token]), state: &state, lastLogitsOnly: true)
            }
        }
        let generated = tokens
        if let cut { tokens = Array(tokens[..<cut]) }
        let text = tokenizer.decode(tokens.filter { !img.contains($0) })

        let positions = tokens.indices.filter { tokens[$0] == img[0] && blocks[$0] != nil }.prefix(max(0, options.maxNumRets))
        guard !positions.isEmpty else {
            return GILLStory(generatedTokens: generated, tokens: tokens,
                             pieces: [.text(GILLPrompt.truncateCaption(tokenizer.decode(tokens)))], text: text)
        }
        var pieces: [GILLStoryPiece] = []
        var seen: [Int] = []
        var start = 0
        for position in positions {
            let outputs = blocks[position]!
            var retrieved: [GILLRetrieved] = []
            var decision = GILLDecision.gen
            var byHead = false
            if let pool, !pool.isEmpty {
                var scores = retrievalScores(text: outputs.retrievalEmbedding, images: pool)
                for s in seen { scores[s] -= 1000 }
                let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
                for index in order.prefix(3) {
                    seen.append(index)
                    retrieved.append(GILLRetrieved(index: index, score: scores[index]))
                    if options.maxNumRets == 3 { break }
                }
                if !outputs.decision.isEmpty {
                    var best = 0
                    for i in outputs.decision.indices where outputs.decision[i] > outputs.decision[best] { best = i }
                    decision = outputs.decisionClasses[best]
                    byHead = true
                }
            }
            pieces.append(.text(GILLPrompt.truncateCaption(tokenizer.decode(Array(tokens[start..<position])))))
            pieces.append(.image(GILLStoryImage(position: position, outputs: outputs, retrieved: retrieved,
                                                decision: decision, decidedByHead: byHead)))
            start = position + img.count
        }
        return GILLStory(generatedTokens: generated, tokens: tokens, pieces: pieces, text: text)
    }

    /// GILL's score of a generated image: the cosine of its retrieval embedding (resized to 224×224 first,
    /// as GILL does) with the block's retrieval embedding (both normalised, no logit scale).
    public func generatedImageScore(_ image: Image, retrievalEmbedding: [Float]) throws -> Float {
        let e = try imageRetrievalEmbeddings([GILLPrompt.squashed(image)])[0]
        let en = e.reduce(0) { $0 + $1 * $1 }.squareRoot(), rn = retrievalEmbedding.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard en > 0, rn > 0 else { return 0 }
        return zip(e, retrievalEmbedding).reduce(0) { $0 + $1.0 * $1.1 } / (en * rn)
    }

    /// Runs the [IMG0…7] block after the state and returns GILL's outputs of it; `out` becomes the
    /// LLM output after the block.
    private func imageBlock(state: inout OPTState, into out: inout OPTOutput) throws -> GILLImageOutputs {
        let inputs = try llm.embed(imageTokenIDs)
        out = try llm.forward(inputEmbeddings: inputs, state: &state, lastLogitsOnly: true)
        return try imageOutputs(hidden: out.lastHidden, inputEmbeddings: inputs)
    }
}
