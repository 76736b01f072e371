import Foundation
import Testing
@testable import Models

/// Token ids against transformers' CLIPTokenizer (fed text cleaned by its ftfy-less
/// BasicTokenizer path), on a corpus with punctuation, digits, unicode, apostrophes, control
/// characters, CJK and an over-long input.
@Suite("CLIP tokenizer")
struct CLIPTokenizerTests {
    static func corpus(_ folder: URL) throws -> (texts: [String], cleaned: [String], ids: [[Int]]) {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("expected.json"))) as? [String: Any])
        return (try #require(json["corpus"] as? [String]), try #require(json["cleaned_corpus"] as? [String]),
                try #require(json["corpus_ids"] as? [[Int]]))
    }

    @Test("trained BPE vocabulary", arguments: ["tiny_a", "tokenizer_real"])
    func ids(_ name: String) throws {
        let folder = try CLIPParityTests.fixture(name)
        let tokenizer = try CLIPTokenizer(folder: folder)
        let (texts, cleaned, ids) = try Self.corpus(folder)
        #expect(texts.count == ids.count && texts.count >= 10)
        for (i, text) in texts.enumerated() {
            #expect(tokenizer.cleanText(text) == cleaned[i], "clean-up of corpus[\(i)] \(text.debugDescription)")
            #expect(tokenizer(text) == ids[i], "ids of corpus[\(i)] \(text.debugDescription)")
        }
    }

    @Test("real CLIP vocabulary: known ids and truncation")
    func realVocabulary() throws {
        let tokenizer = try CLIPTokenizer(folder: CLIPParityTests.fixture("tokenizer_real"))
        #expect(tokenizer.vocabulary.count == 49408)
        #expect(tokenizer.bosTokenID == 49406 && tokenizer.eosTokenID == 49407)
        // "a photo of a cat", the ids every CLIP user has seen.
        #expect(Array(tokenizer("a photo of a cat").prefix(7)) == [49406, 320, 1125, 539, 320, 2368, 49407])
        let long = tokenizer(String(repeating: "cat ", count: 200))
        #expect(long.count == 77 && long.first == 49406 && long.last == 49407 && long[75] == 2368)
        #expect(tokenizer("").count == 77)
    }

    @Test("Python lower-casing rules")
    func lowerCasing() {
        #expect(pythonLower("ΣΑΣ") == "σας")
        #expect(pythonLower("Σ") == "σ")
        #expect(pythonLower("ΑΣ.") == "ας.")
        #expect(pythonLower("İ") == "i\u{307}")
    }

    @Test("malformed merges name the line")
    func badMerges() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}"#.utf8).write(to: dir.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\na b\nonlyone\n".utf8).write(to: dir.appendingPathComponent("merges.txt"))
        do {
            _ = try CLIPTokenizer(folder: dir)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("merges.txt") && "\(error)".contains("line 3"), "\(error)")
        }
    }
}
