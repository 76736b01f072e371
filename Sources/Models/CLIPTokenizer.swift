import Foundation

/// CLIP's byte-level BPE tokenizer, from `vocab.json` + `merges.txt`, as transformers'
/// `CLIPTokenizer` runs it without ftfy:
///
/// 1. clean-up as `BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False)`:
///    drop NUL, U+FFFD and control/format characters, map whitespace to spaces, put spaces
///    around CJK ideographs, NFC-normalise, lower-case, collapse whitespace;
/// 2. split with CLIP's pattern (`<|startoftext|>`, `<|endoftext|>`, contractions, letter runs,
///    single digits, runs of other non-space characters);
/// 3. map each piece's UTF-8 bytes to GPT-2's printable byte alphabet and apply the merges, with
///    `</w>` on the last symbol of each piece; unknown symbols become the unk token;
/// 4. `bos` + at most `contextLength - 2` ids + `eos`, padded with `pad` to `contextLength`.
public struct CLIPTokenizer: Sendable {
    public let vocabulary: [String: Int]
    private let ranks: [SymbolPair: Int]
    private let byteSymbols: [String]
    public let bosTokenID: Int
    public let eosTokenID: Int
    public let padTokenID: Int
    public let unkTokenID: Int
    /// Sequence length after padding/truncation (77 for every released CLIP).
    public let contextLength: Int

    private typealias SymbolPair = BPEFiles.Pair

    /// Loads `vocab.json`, `merges.txt` and, when present, the special tokens of
    /// `tokenizer_config.json` from a model folder.
    public init(folder: URL, contextLength: Int = 77) throws {
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let mergesURL = folder.appendingPathComponent("merges.txt")
        let specials = try BPEFiles.specialTokens(in: folder, error: ModelError.init)
        try self.init(vocabURL: vocabURL, mergesURL: mergesURL, specialTokens: specials, contextLength: contextLength)
    }

    /// Loads from explicit files. `specialTokens` may override `bos_token`, `eos_token`,
    /// `pad_token`, `unk_token` (defaults: `<|startoftext|>`, then `<|endoftext|>` for the rest).
    public init(vocabURL: URL, mergesURL: URL, specialTokens: [String: String] = [:], contextLength: Int = 77) throws {
        guard contextLength >= 2 else { throw ModelError(file: vocabURL, "context length must be at least 2") }
        let vocabulary = try BPEFiles.vocabulary(vocabURL, error: ModelError.init)
        let ranks = try BPEFiles.mergeRanks(mergesURL, error: ModelError.init)
        func id(_ key: String, _ fallback: String) throws -> Int {
            let token = specialTokens[key] ?? fallback
            guard let id = vocabulary[token] else {
                throw ModelError(file: vocabURL, "\(key) '\(token)' is not in the vocabulary")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.ranks = ranks
        self.byteSymbols = gpt2ByteSymbols()
        self.bosTokenID = try id("bos_token", "<|startoftext|>")
        self.eosTokenID = try id("eos_token", "<|endoftext|>")
        self.padTokenID = try id("pad_token", "<|endoftext|>")
        self.unkTokenID = try id("unk_token", "<|endoftext|>")
        self.contextLength = contextLength
    }

    /// `bos` + ids + `eos`, truncated to `contextLength` and padded with `pad` to it, as
    /// `tokenizer(text, padding="max_length", max_length=77, truncation=True)`.
    public func callAsFunction(_ text: String) -> [Int] {
        var ids = [bosTokenID] + encode(text).prefix(contextLength - 2) + [eosTokenID]
        ids += [Int](repeating: padTokenID, count: contextLength - ids.count)
        return ids
    }

    /// The BPE ids of `text` with no special tokens, truncation or padding.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for piece in splitPieces(cleanText(text)) {
            // Special-token strings that reach this point (the pattern keeps them whole) are
            // encoded by their id, as the pattern intends.
            if piece == "<|startoftext|>" || piece == "<|endoftext|>", let id = vocabulary[piece] {
                ids.append(id)
                continue
            }
            let symbols = Array(piece.utf8).map { byteSymbols[Int($0)] }
            for token in bpe(symbols) { ids.append(vocabulary[token] ?? unkTokenID) }
        }
        return ids
    }

    /// Applies the merges to one piece's byte symbols (the last carries `</w>`), lowest rank first.
    private func bpe(_ symbols: [String]) -> [String] {
        guard var word = symbols.isEmpty ? nil : symbols else { return [] }
        word[word.count - 1] += "</w>"
        while word.count > 1 {
            var best: (rank: Int, pair: SymbolPair)?
            for i in 0..<(word.count - 1) {
                let pair = SymbolPair(first: word[i], second: word[i + 1])
                if let r = ranks[pair], r < (best?.rank ?? Int.max) { best = (r, pair) }
            }
            guard let (_, pair) = best else { break }
            var merged: [String] = []
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i + 1 < word.count, word[i] == pair.first, word[i + 1] == pair.second {
                    merged.append(pair.first + pair.second)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        return word
    }

    /// transformers' `BasicTokenizer` clean-up (the ftfy-less path), joined by single spaces.
    func cleanText(_ text: String) -> String {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            let v = s.value
            if v == 0 || v == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) { cleaned.append(" "); continue }
            if isCJK(v) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        let normalized = String(cleaned).precomposedStringWithCanonicalMapping
        let words = normalized.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }).map { pythonLower(String($0)) }
        return words.joined(separator: " ")
    }

    /// CLIP's split pattern `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    /// as a scanner over Unicode scalars (the unit Python's `re` and Rust's regex work in).
    func splitPieces(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var pieces: [String] = []
        var i = 0
        func startsWith(_ literal: String, at i: Int) -> Bool {
            let lit = Array(literal.unicodeScalars)
            guard i + lit.count <= scalars.count else { return false }
            for k in 0..<lit.count where scalars[i + k] != lit[k] { return false }
            return true
        }
        func piece(_ from: Int, _ to: Int) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: scalars[from..<to])
            return String(v)
        }
        outer: while i < scalars.count {
            let s = scalars[i]
            for literal in ["<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"] where startsWith(literal, at: i) {
                let n = literal.unicodeScalars.count
                pieces.append(piece(i, i + n))
                i += n
                continue outer
            }
            if isLetter(s) {
                var j = i + 1
                while j < scalars.count, isLetter(scalars[j]) { j += 1 }
                pieces.append(piece(i, j))
                i = j
            } else if isNumber(s) {
                pieces.append(piece(i, i + 1))
                i += 1
            } else if s.properties.isWhitespace {
                i += 1
            } else {
                var j = i + 1
                while j < scalars.count, !scalars[j].properties.isWhitespace, !isLetter(scalars[j]), !isNumber(scalars[j]) { j += 1 }
                pieces.append(piece(i, j))
                i = j
            }
        }
        return pieces
    }
}

private func isLetter(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
    default: false
    }
}

private func isNumber(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: true
    default: false
    }
}

/// BasicTokenizer's `_is_whitespace`: space, \t, \n, \r, or category Zs.
private func isWhitespace(_ s: Unicode.Scalar) -> Bool {
    if s == " " || s == "\t" || s == "\n" || s == "\r" { return true }
    return s.properties.generalCategory == .spaceSeparator
}

/// BasicTokenizer's `_is_control`: any category C* except \t, \n, \r.
private func isControl(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return false }
    switch s.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned: return true
    default: return false
    }
}

/// BasicTokenizer's `_is_chinese_char` ranges (CJK Unified Ideographs and extensions).
private func isCJK(_ v: UInt32) -> Bool {
    (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
        || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
        || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
}

/// Python's `str.lower()`: Unicode full lower-casing plus the Final_Sigma context rule
/// (Σ at the end of a word becomes ς), which Swift's `lowercased()` does not apply.
func pythonLower(_ word: String) -> String {
    let scalars = Array(word.unicodeScalars)
    var out = String.UnicodeScalarView()
    for (i, s) in scalars.enumerated() {
        if s == "\u{03A3}" {
            // Final_Sigma: preceded by a cased letter (skipping case-ignorables) and not followed by one.
            let before = scalars[..<i].reversed().first { !$0.properties.isCaseIgnorable }
            let after = scalars[(i + 1)...].first { !$0.properties.isCaseIgnorable }
            if let before, before.properties.isCased, !(after?.properties.isCased ?? false) {
                out.append("\u{03C2}")
                continue
            }
        }
        out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
    }
    return String(out)
}

/// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100….
func gpt2ByteSymbols() -> [String] {
    var printable = Array(33...126) + Array(161...172) + Array(174...255)
    var symbols = [String](repeating: "", count: 256)
    for b in printable { symbols[b] = String(UnicodeScalar(UInt8(b))) }
    var n = 0
    for b in 0..<256 where !printable.contains(b) {
        symbols[b] = String(UnicodeScalar(UInt32(256 + n))!)
        printable.append(b)
        n += 1
    }
    return symbols
}
