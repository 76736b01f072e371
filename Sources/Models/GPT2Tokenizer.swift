import Foundation

/// GPT-2's byte-level BPE tokenizer (the one OPT publishes), from `vocab.json` + `merges.txt`,
/// as transformers' `AutoTokenizer` runs it for OPT:
///
/// 1. added tokens (the special tokens of `tokenizer_config.json` and any `addTokens`, e.g. GILL's
///    `<|image|>`, `[IMG0]`…`[IMG7]`) are cut out of the text first, longest match first;
/// 2. the rest is split with GPT-2's pattern
///    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
/// 3. each piece's UTF-8 bytes map to GPT-2's printable byte alphabet and the merges apply,
///    lowest rank first (no end-of-word marker);
/// 4. `encode` prepends the BOS token (`</s>` for OPT) unless asked not to.
public struct GPT2Tokenizer: Sendable {
    /// Token → id, base vocabulary plus added tokens.
    public private(set) var vocabulary: [String: Int]
    /// Id → token, the inverse of `vocabulary`.
    public private(set) var tokens: [Int: String]
    /// Added tokens (matched whole in text before BPE), as strings.
    public private(set) var addedTokens: [String]
    /// Added tokens that are special (skipped by `decode(_:skipSpecialTokens: true)`).
    public private(set) var specialTokens: Set<String>
    private let ranks: [SymbolPair: Int]
    private let byteSymbols: [String]
    private let byteForSymbol: [Character: UInt8]
    public let bosTokenID: Int
    public let eosTokenID: Int
    public let padTokenID: Int?

    private typealias SymbolPair = BPEFiles.Pair

    /// The number of ids in use (`len(tokenizer)` in transformers).
    public var count: Int { (tokens.keys.max() ?? -1) + 1 }

    /// Loads `vocab.json`, `merges.txt` and, when present, `tokenizer_config.json` (special tokens,
    /// `add_bos_token`) from a model folder.
    public init(folder: URL) throws {
        let specials = try BPEFiles.specialTokens(in: folder, error: ModelError.init)
        try self.init(vocabURL: folder.appendingPathComponent("vocab.json"),
                      mergesURL: folder.appendingPathComponent("merges.txt"), specialTokens: specials)
    }

    /// Loads from explicit files. `specialTokens` may name `bos_token`, `eos_token`, `pad_token`,
    /// `unk_token` (OPT's defaults: `</s>`, `</s>`, `<pad>`, `</s>`).
    public init(vocabURL: URL, mergesURL: URL, specialTokens: [String: String] = [:]) throws {
        let vocabulary = try BPEFiles.vocabulary(vocabURL, error: ModelError.init)
        var tokens: [Int: String] = [:]
        for (token, id) in vocabulary { tokens[id] = token }
        let ranks = try BPEFiles.mergeRanks(mergesURL, error: ModelError.init)
        func id(_ key: String, _ fallback: String) throws -> Int {
            let token = specialTokens[key] ?? fallback
            guard let id = vocabulary[token] else {
                throw ModelError(file: vocabURL, "\(key) '\(token)' is not in the vocabulary")
            }
            return id
        }
        self.bosTokenID = try id("bos_token", "</s>")
        self.eosTokenID = try id("eos_token", "</s>")
        let padName = specialTokens["pad_token"] ?? "<pad>"
        self.padTokenID = vocabulary[padName]
        _ = try id("unk_token", "</s>")
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.ranks = ranks
        let symbols = gpt2ByteSymbols()
        self.byteSymbols = symbols
        var inverse: [Character: UInt8] = [:]
        for (b, s) in symbols.enumerated() { inverse[Character(s)] = UInt8(b) }
        self.byteForSymbol = inverse
        // transformers registers the configured special tokens as added tokens: they match whole in text.
        let named = Set(["bos_token", "eos_token", "pad_token", "unk_token"].compactMap { specialTokens[$0] } + ["</s>"])
        self.addedTokens = named.filter { vocabulary[$0] != nil }.sorted()
        self.specialTokens = Set(addedTokens)
    }

    /// Adds tokens after the current vocabulary (ids `count`, `count + 1`, …), as transformers'
    /// `add_tokens` / `add_special_tokens` do; tokens already present keep their id.
    /// Returns the ids of `newTokens` in order.
    @discardableResult
    public mutating func addTokens(_ newTokens: [String], special: Bool = false) -> [Int] {
        var ids: [Int] = []
        for t in newTokens {
            if let existing = vocabulary[t] {
                ids.append(existing)
            } else {
                let id = count
                vocabulary[t] = id
                tokens[id] = t
                ids.append(id)
            }
            if !addedTokens.contains(t) { addedTokens.append(t) }
            if special { specialTokens.insert(t) }
        }
        return ids
    }

    /// The id of a token string, if it is in the vocabulary.
    public func id(of token: String) -> Int? { vocabulary[token] }

    /// Token ids of `text`: BOS (when `addBOS`) followed by the ids of added tokens and BPE pieces.
    public func encode(_ text: String, addBOS: Bool = true) -> [Int] {
        var ids: [Int] = addBOS ? [bosTokenID] : []
        let scalars = Array(text.unicodeScalars)
        let added = addedTokens.map { Array($0.unicodeScalars) }.sorted { $0.count > $1.count }
        var start = 0, i = 0
        func flush(_ end: Int) {
            guard end > start else { return }
            ids += encodeOrdinary(Array(scalars[start..<end]))
        }
        while i < scalars.count {
            var matched: [Unicode.Scalar]?
            for a in added where !a.isEmpty && i + a.count <= scalars.count {
                if scalars[i..<(i + a.count)].elementsEqual(a) { matched = a; break }
            }
            if let m = matched {
                flush(i)
                var v = String.UnicodeScalarView()
                v.append(contentsOf: m)
                if let id = vocabulary[String(v)] { ids.append(id) }
                i += m.count
                start = i
            } else {
                i += 1
            }
        }
        flush(scalars.count)
        return ids
    }

    /// Text of `ids`: tokens joined and mapped back from the byte alphabet to UTF-8 (invalid
    /// sequences become U+FFFD); special tokens are dropped when `skipSpecialTokens`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let token = tokens[id] else { continue }
            if addedTokens.contains(token) {
                if skipSpecialTokens && specialTokens.contains(token) { continue }
                bytes += Array(token.utf8)
                continue
            }
            for ch in token {
                if let b = byteForSymbol[ch] { bytes.append(b) } else { bytes += Array(String(ch).utf8) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func encodeOrdinary(_ scalars: [Unicode.Scalar]) -> [Int] {
        var ids: [Int] = []
        for piece in gpt2SplitPieces(scalars) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: piece)
            let symbols = Array(String(v).utf8).map { byteSymbols[Int($0)] }
            for token in bpe(symbols) {
                // Every single byte symbol is in a byte-level vocabulary; a merge product missing
                // from vocab.json would be a broken file, and falls back to its bytes.
                if let id = vocabulary[token] { ids.append(id) }
                else { ids += token.compactMap { vocabulary[String($0)] } }
            }
        }
        return ids
    }

    /// Applies the merges to one piece's byte symbols, lowest rank first.
    private func bpe(_ symbols: [String]) -> [String] {
        var word = symbols
        while word.count > 1 {
            var best: (rank: Int, index: Int)?
            for k in 0..<(word.count - 1) {
                if let r = ranks[SymbolPair(first: word[k], second: word[k + 1])], r < (best?.rank ?? Int.max) {
                    best = (r, k)
                }
            }
            guard let (_, _) = best, let b = best else { break }
            let first = word[b.index], second = word[b.index + 1]
            // Merge every occurrence of the pair, left to right, as the reference does.
            var merged: [String] = []
            var k = 0
            while k < word.count {
                if k + 1 < word.count, word[k] == first, word[k + 1] == second {
                    merged.append(first + second)
                    k += 2
                } else {
                    merged.append(word[k])
                    k += 1
                }
            }
            word = merged
        }
        return word
    }
}

/// Splits text with GPT-2's pre-tokenizer pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
func gpt2SplitPieces(_ scalars: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
    let n = scalars.count
    var pieces: [ArraySlice<Unicode.Scalar>] = []
    let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }
    func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }
    func isOther(_ s: Unicode.Scalar) -> Bool { !isSpace(s) && !gpt2IsLetter(s) && !gpt2IsNumber(s) }
    func run(from j: Int, _ test: (Unicode.Scalar) -> Bool) -> Int {
        var e = j
        while e < n, test(scalars[e]) { e += 1 }
        return e
    }
    var i = 0
    outer: while i < n {
        for c in contractions where i + c.count <= n && scalars[i..<(i + c.count)].elementsEqual(c) {
            pieces.append(scalars[i..<(i + c.count)])
            i += c.count
            continue outer
        }
        let s = scalars[i]
        // ` ?X+`: an optional literal space followed by a run of one class.
        let lead = (s == " " && i + 1 < n) ? i + 1 : i
        let t = scalars[lead]
        for test in [gpt2IsLetter, gpt2IsNumber, isOther] where test(t) && (lead == i || !isSpace(t)) {
            let e = run(from: lead, test)
            pieces.append(scalars[i..<e])
            i = e
            continue outer
        }
        // Whitespace: `\s+(?!\S)` leaves the last space of a run to the next word; else `\s+`.
        let e = run(from: i, isSpace)
        if e == n || e - i == 1 {
            pieces.append(scalars[i..<e])
            i = e
        } else {
            pieces.append(scalars[i..<(e - 1)])
            i = e - 1
        }
    }
    return pieces
}

private func gpt2IsLetter(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
    default: false
    }
}

private func gpt2IsNumber(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: true
    default: false
    }
}
