import Foundation
import Testing
@testable import Models
import Tensor

/// GPT-2 BPE tokenizer and OPT decoder parity with transformers, on the tiny tokenizer and the
/// tiny OPT models written by `Tools/make_opt_fixtures.py`. Logit tolerance: 2e-4 absolute
/// (float32 weights; the f16 model is compared with its f16-rounded weights in float32).
@Suite("OPT and GPT-2 tokenizer parity with transformers")
struct OPTTests {
    static let tolerance: Float = 2e-4

    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/opt/\(name)", withExtension: nil), "missing fixture opt/\(name)")
    }

    static func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a.data, b.data).map { abs($0 - $1) }.max() ?? 0
    }

    static func gillTokenizer(_ folder: URL) throws -> GPT2Tokenizer {
        var tok = try GPT2Tokenizer(folder: folder)
        tok.addTokens(["<|image|>"], special: true)
        tok.addTokens((0..<8).map { "[IMG\($0)]" })
        return tok
    }

    @Test("token ids match AutoTokenizer on the corpus, with and without GILL's added tokens")
    func tokenizerCorpus() throws {
        let folder = try Self.fixture("tokenizer")
        let corpus = try Self.json(folder.appendingPathComponent("corpus.json"))
        let texts = try #require(corpus["texts"] as? [String])
        let ids = try #require(corpus["ids"] as? [[Int]])
        let baseIDs = try #require(corpus["base_ids"] as? [[Int]])
        let decoded = try #require(corpus["decoded"] as? [String])
        let added = try #require(corpus["added"] as? [String: Int])
        let base = try GPT2Tokenizer(folder: folder)
        let tok = try Self.gillTokenizer(folder)
        for (token, id) in added { #expect(tok.id(of: token) == id, "\(token)") }
        for (i, text) in texts.enumerated() {
            #expect(tok.encode(text) == ids[i], "text \(i): \(text.debugDescription)")
            #expect(base.encode(text) == baseIDs[i], "base text \(i): \(text.debugDescription)")
            #expect(tok.decode(Array(ids[i].dropFirst()), skipSpecialTokens: false) == decoded[i], "decode \(i)")
        }
        #expect(tok.count == base.count + 9)
    }

    @Test("pre-tokenizer splits whitespace runs and contractions as GPT-2's pattern")
    func splitting() {
        let pieces = gpt2SplitPieces(Array("it's  a\n\nDON'T 42x".unicodeScalars)).map { String(String.UnicodeScalarView($0)) }
        #expect(pieces == ["it", "'s", " ", " a", "\n", "\n", "DON", "'", "T", " 42", "x"])
    }

    @Test("tokenizer errors name the file")
    func tokenizerErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpt2-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"</s>\": 0, \"a\": 1}".utf8).write(to: dir.appendingPathComponent("vocab.json"))
        try Data("a b c\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        #expect { try GPT2Tokenizer(folder: dir) } throws: { error in
            "\(error)".contains("merges.txt") && "\(error)".contains("line 1")
        }
    }

    @Test("full forward logits and last hidden state", arguments: ["pre", "post"])
    func forward(_ name: String) throws {
        let folder = try Self.fixture(name)
        let model = try OPTModel.load(from: folder)
        let expected = try SafetensorsFile(url: folder.appendingPathComponent("expected.safetensors"))
        let meta = try Self.json(folder.appendingPathComponent("expected.json"))
        let ids = try #require(meta["prompt_ids"] as? [Int])
        let out = try model.forward(ids: ids)
        let dl = Self.maxDifference(out.logits, try expected.tensor(named: "logits"))
        let dh = Self.maxDifference(out.lastHidden, try expected.tensor(named: "last_hidden"))
        #expect(dl <= Self.tolerance, "logits max |Δ| = \(dl)")
        #expect(dh <= Self.tolerance, "last hidden max |Δ| = \(dh)")
    }

    @Test("prefill + per-token cached forward equals one full forward", arguments: ["pre", "post"])
    func cacheMatchesFullForward(_ name: String) throws {
        let model = try OPTModel.load(from: Self.fixture(name))
        let ids = [2, 36, 368, 71, 384, 321, 273, 263, 399, 17, 224, 293]
        let full = try model.forward(ids: ids)
        var state = model.makeState()
        var rows = try model.forward(inputEmbeddings: model.embed(Array(ids.prefix(5))), state: &state).logits.data
        for id in ids.dropFirst(5) {
            rows += try model.forward(inputEmbeddings: model.embed([id]), state: &state).logits.data
        }
        let d = Self.maxDifference(full.logits, try Tensor(shape: full.logits.shape, data: rows))
        #expect(d <= 1e-5, "cached vs full max |Δ| = \(d)")
        #expect(state.count == ids.count)
    }

    @Test("greedy generation matches transformers generate", arguments: ["pre", "post"])
    func greedy(_ name: String) throws {
        let folder = try Self.fixture(name)
        let model = try OPTModel.load(from: folder)
        let meta = try Self.json(folder.appendingPathComponent("expected.json"))
        let ids = try #require(meta["prompt_ids"] as? [Int])
        let greedy = try #require(meta["greedy_ids"] as? [Int])
        #expect(try model.generate(prompt: ids, options: TextGenerationOptions(maxNewTokens: greedy.count)) == greedy)
    }

    /// A bf16 checkpoint kept as stored computes the float32 function of its stored weights: it must
    /// match transformers on `model.float()` at the usual 2e-4, and stay within 2× of the distance
    /// bf16 arithmetic alone puts between transformers' bf16 and float32 runs (0.034 on logits up to 4.3).
    @Test("bf16 OPT kept as stored matches transformers in float32 (2e-4) and in bf16 (2× bf16's own rounding)")
    func bfloat16() throws {
        let folder = try Self.fixture("bf16")
        let model = try OPTModel.load(from: folder)
        #expect(model.embedTokens.dtype == .bf16 && model.layers[0].fc1Weight.dtype == .bf16 && model.layers[0].qkvWeight.dtype == .bf16)
        #expect(model.layers[0].queryScale != 1, "the query scale must not be folded into bf16 weights")
        let expected = try SafetensorsFile(url: folder.appendingPathComponent("expected.safetensors"))
        let meta = try Self.json(folder.appendingPathComponent("expected.json"))
        let ids = try #require(meta["prompt_ids"] as? [Int])
        let out = try model.forward(ids: ids)
        let dl = Self.maxDifference(out.logits, try expected.tensor(named: "logits_f32"))
        let dh = Self.maxDifference(out.lastHidden, try expected.tensor(named: "last_hidden_f32"))
        #expect(dl <= Self.tolerance, "logits vs transformers float32 max |Δ| = \(dl)")
        #expect(dh <= Self.tolerance, "last hidden vs transformers float32 max |Δ| = \(dh)")
        let bf16Spread = Float(try #require(meta["max_abs_logits_bf16_vs_f32"] as? Double))
        let db = Self.maxDifference(out.logits, try expected.tensor(named: "logits_bf16"))
        #expect(db <= 2 * bf16Spread, "logits vs transformers bf16 max |Δ| = \(db), bf16 vs f32 in transformers = \(bf16Spread)")
        let greedy = try #require(meta["greedy_ids_bf16"] as? [Int])
        #expect(try model.generate(prompt: ids, options: TextGenerationOptions(maxNewTokens: greedy.count)) == greedy)

        // Widened on load: the same function, through the float32 path (Q scale folded again).
        let wide = try OPTModel.load(from: folder, precision: .float32)
        #expect(wide.embedTokens.dtype == .f32 && wide.layers[0].queryScale == 1)
        let dw = Self.maxDifference(out.logits, try wide.forward(ids: ids).logits)
        #expect(dw <= 1e-5, "stored vs widened max |Δ| = \(dw)")
        // Decode on bf16 weights (the half GEMV) equals the full forward.
        var state = model.makeState()
        var rows = try model.forward(inputEmbeddings: model.embed(Array(ids.prefix(4))), state: &state).logits.data
        for id in ids.dropFirst(4) { rows += try model.forward(inputEmbeddings: model.embed([id]), state: &state).logits.data }
        let dc = Self.maxDifference(out.logits, try Tensor(shape: out.logits.shape, data: rows))
        #expect(dc <= 1e-5, "cached bf16 decode vs full max |Δ| = \(dc)")
    }

    @Test("replaced embedding rows (GILL's added tokens) on a bf16 table: embeddings, tied logits, growth")
    func replacedRowsOnHalfTable() throws {
        let model = try OPTModel.load(from: Self.fixture("bf16"))
        let e = model.embeddingDimension, vocab = model.config.vocabSize
        let rowA = (0..<e).map { Float($0) / Float(e) - 0.5 }, rowB = (0..<e).map { Float($0 % 3) - 1 }
        let grown = try model.replacingEmbeddingRows([5: rowA, vocab + 1: rowB])
        #expect(grown.config.vocabSize == vocab + 2)
        let embedded = try grown.embed([5, vocab, vocab + 1, 7])
        #expect(Array(embedded.data[0..<e]) == rowA)
        #expect(Array(embedded.data[e..<(2 * e)]) == [Float](repeating: 0, count: e))
        #expect(Array(embedded.data[(2 * e)..<(3 * e)]) == rowB)
        #expect(Array(embedded.data[(3 * e)...]) == (try model.embed([7])).data)
        let ids = [2, 36, 368, 71]
        let hidden = try grown.forward(ids: ids)
        let last = hidden.lastHidden.row(ids.count - 1)
        let logits = hidden.logits.row(ids.count - 1)
        #expect(logits.count == vocab + 2)
        #expect(abs(logits[5] - zip(last, rowA).map(*).reduce(0, +)) <= 1e-4)
        #expect(logits[vocab] == 0)
        #expect(abs(logits[vocab + 1] - zip(last, rowB).map(*).reduce(0, +)) <= 1e-4)
        #expect(abs(logits[7] - (try model.forward(ids: ids)).logits.row(ids.count - 1)[7]) <= 1e-5)
        #expect(throws: TensorError.self) { try grown.embed([vocab + 2]) }
    }

    @Test("random in-memory OPT (the benchmark's OPT-6.7B row, here tiny): stored dtype, finite logits, decode equals full forward",
          arguments: [Weight.DType.bf16, .f16, .f32])
    func randomModel(_ dtype: Weight.DType) throws {
        var c = OPTConfig()
        c.vocabSize = 300; c.hiddenSize = 48; c.wordEmbedProjDim = 48; c.ffnDim = 96; c.numHiddenLayers = 2
        c.numAttentionHeads = 4; c.maxPositionEmbeddings = 32
        let model = try OPTModel.random(config: c, dtype: dtype)
        #expect(model.embedTokens.dtype == dtype && model.layers[1].fc2Weight.dtype == dtype)
        let ids = [2, 17, 250, 9, 33, 120]
        let full = try model.forward(ids: ids)
        #expect(full.logits.data.allSatisfy(\.isFinite) && full.logits.data.contains { $0 != 0 })
        var state = model.makeState()
        var rows = try model.forward(inputEmbeddings: model.embed([2, 17]), state: &state).logits.data
        for id in ids.dropFirst(2) { rows += try model.forward(inputEmbeddings: model.embed([id]), state: &state).logits.data }
        #expect(Self.maxDifference(full.logits, try Tensor(shape: full.logits.shape, data: rows)) <= 1e-5)
    }

    @Test("top-p sampling is seeded, stays in the nucleus, and stops at stop tokens")
    func sampling() throws {
        let model = try OPTModel.load(from: Self.fixture("pre"))
        let prompt = [2, 36, 368, 71]
        let options = TextGenerationOptions(maxNewTokens: 8, sampling: .topP(0.5, temperature: 0.8), seed: 7)
        let a = try model.generate(prompt: prompt, options: options)
        let b = try model.generate(prompt: prompt, options: options)
        #expect(a == b)
        #expect(a.count == 8)
        // The first sampled token lies in the top-p set of the prompt's last logits.
        let logits = try model.forward(ids: prompt).logits.row(prompt.count - 1)
        let m = logits.max()!
        let p = logits.map { Double(exp(($0 - m) / 0.8)) }
        let s = p.reduce(0, +)
        let order = p.indices.sorted { p[$0] > p[$1] }
        var nucleus: Set<Int> = [], c = 0.0
        for i in order { nucleus.insert(i); c += p[i] / s; if c >= 0.5 { break } }
        #expect(nucleus.contains(a[0]))
        let stopped = try model.generate(prompt: prompt, options: TextGenerationOptions(maxNewTokens: 8, stopTokens: [a[0]],
                                                                                   bannedTokens: []))
        let greedyFirst = try model.generate(prompt: prompt, options: TextGenerationOptions(maxNewTokens: 1))
        #expect(stopped.count <= 8)
        let banned = try model.generate(prompt: prompt, options: TextGenerationOptions(maxNewTokens: 1, bannedTokens: Set(greedyFirst)))
        #expect(banned != greedyFirst)
    }

    @Test("config errors name the file and key")
    func configErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("opt-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try Data("{\"model_type\": \"opt\", \"hidden_size\": 30, \"num_attention_heads\": 4}".utf8).write(to: url)
        #expect { try OPTConfig.load(from: url) } throws: { "\($0)".contains("config.json") && "\($0)".contains("divisible") }
        try Data("{\"model_type\": \"opt\", \"ffn_dim\": \"big\"}".utf8).write(to: url)
        #expect { try OPTConfig.load(from: url) } throws: { "\($0)".contains("ffn_dim") }
    }
}
