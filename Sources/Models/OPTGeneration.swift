import Foundation
import Tensor

/// How the next token is chosen from the logits.
public enum Sampling: Sendable, Equatable, Hashable {
    /// The highest logit (first one on ties, as `torch.argmax`).
    case greedy
    /// Nucleus sampling: logits / temperature, softmax, keep the most probable tokens whose
    /// cumulative probability reaches `topP` (at least one), sample among them.
    case topP(_ topP: Float, temperature: Float)
}

/// Options of `OPTModel.generate` and GILL's generation.
public struct TextGenerationOptions: Sendable, Equatable {
    public var maxNewTokens: Int
    public var sampling: Sampling
    /// Seed of the sampling generator (ignored by greedy decoding).
    public var seed: UInt64
    /// Generation ends after any of these is produced (it is kept in the output).
    public var stopTokens: Set<Int>
    /// Never produced (their logits are set to -inf).
    public var bannedTokens: Set<Int>

    public init(maxNewTokens: Int = 32, sampling: Sampling = .greedy, seed: UInt64 = 0,
                stopTokens: Set<Int> = [], bannedTokens: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.seed = seed
        self.stopTokens = stopTokens
        self.bannedTokens = bannedTokens
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same samples on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Picks tokens from logit rows per `Sampling`, holding the seeded generator between steps.
public struct TokenSampler: Sendable {
    public let sampling: Sampling
    private var generator: SeededGenerator

    public init(_ sampling: Sampling, seed: UInt64) {
        self.sampling = sampling
        generator = SeededGenerator(seed: seed)
    }

    /// The next token for one row of logits, after banning `banned`.
    public mutating func next(_ logits: [Float], banned: Set<Int> = []) -> Int {
        var l = logits
        for b in banned where b >= 0 && b < l.count { l[b] = -.infinity }
        switch sampling {
        case .greedy:
            var best = 0
            for i in l.indices where l[i] > l[best] { best = i }
            return best
        case let .topP(p, temperature):
            let t = max(temperature, 1e-6)
            let m = l.max() ?? 0
            var probs = l.map { $0 == -.infinity ? 0 : Foundation.exp(Double(($0 - m) / t)) }
            let sum = probs.reduce(0, +)
            probs = probs.map { $0 / sum }
            let order = probs.indices.sorted { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
            var kept: [Int] = []
            var cumulative = 0.0
            for i in order {
                kept.append(i)
                cumulative += probs[i]
                if cumulative >= Double(p) { break }
            }
            let mass = kept.reduce(0.0) { $0 + probs[$1] }
            var u = Double.random(in: 0..<1, using: &generator) * mass
            for i in kept {
                u -= probs[i]
                if u < 0 { return i }
            }
            return kept.last ?? order[0]
        }
    }
}

extension OPTModel {
    /// Generates up to `options.maxNewTokens` tokens after `prompt` (token ids, BOS included when
    /// wanted): prefill once, then one cached forward per token (M = 1 products through sgemv).
    /// Returns the new token ids (a stop token, if reached, is the last one).
    public func generate(prompt ids: [Int], options: TextGenerationOptions) throws -> [Int] {
        try generate(promptEmbeddings: embed(ids), options: options)
    }

    /// As `generate(prompt:options:)` from input embeddings `[T, word_embed_proj_dim]`.
    public func generate(promptEmbeddings: Tensor, options: TextGenerationOptions) throws -> [Int] {
        var state = makeState()
        var sampler = TokenSampler(options.sampling, seed: options.seed)
        var out = try forward(inputEmbeddings: promptEmbeddings, state: &state, lastLogitsOnly: true)
        var generated: [Int] = []
        while generated.count < options.maxNewTokens {
            let token = sampler.next(out.logits.row(out.logits.rowCount - 1), banned: options.bannedTokens)
            generated.append(token)
            if options.stopTokens.contains(token) || generated.count == options.maxNewTokens { break }
            out = try forward(inputEmbeddings: embed([token]), state: &state, lastLogitsOnly: true)
        }
        return generated
    }
}
