import Foundation

/// The files of a Hugging Face BPE tokenizer — `vocab.json`, `merges.txt`, `tokenizer_config.json` —
/// read with errors that name the file (and line). Shared by the CLIP and GPT-2 tokenizers; each passes
/// its own error type.
enum BPEFiles {
    /// Two adjacent symbols; a merge rule's key.
    struct Pair: Hashable, Sendable {
        var first: String
        var second: String
    }

    typealias MakeError = (URL, String) -> any Error

    /// `bos_token`, `eos_token`, `pad_token`, `unk_token` from `tokenizer_config.json` when present
    /// (each a plain string or an AddedToken object with `content`).
    static func specialTokens(in folder: URL, error: MakeError) throws -> [String: String] {
        var specials: [String: String] = [:]
        let url = folder.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return specials }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] else {
            throw error(url, "is not a JSON object")
        }
        for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
            if let s = object[key] as? String { specials[key] = s }
            else if let d = object[key] as? [String: Any], let s = d["content"] as? String { specials[key] = s }
        }
        return specials
    }

    /// `vocab.json`: token → id, ids non-negative integers.
    static func vocabulary(_ url: URL, error: MakeError) throws -> [String: Int] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch let readError {
            throw error(url, "cannot read: \(readError.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw error(url, "is not a JSON object of token → id")
        }
        var vocabulary: [String: Int] = [:]
        for (token, value) in object {
            guard let n = value as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.intValue >= 0 else {
                throw error(url, "token '\(token)': id must be a non-negative integer")
            }
            vocabulary[token] = n.intValue
        }
        return vocabulary
    }

    /// `merges.txt`: one merge per line (`a b`), ranked by line order; a `#version` header is skipped.
    static func mergeRanks(_ url: URL, error: MakeError) throws -> [Pair: Int] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch let readError {
            throw error(url, "cannot read as UTF-8: \(readError.localizedDescription)")
        }
        var ranks: [Pair: Int] = [:]
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line[...]
            if trimmed.isEmpty || (lineNumber == 1 && trimmed.hasPrefix("#version")) { continue }
            let parts = trimmed.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw error(url, "line \(lineNumber): expected two symbols separated by one space, got '\(trimmed)'")
            }
            let pair = Pair(first: String(parts[0]), second: String(parts[1]))
            if ranks[pair] == nil { ranks[pair] = ranks.count }
        }
        return ranks
    }
}
