import Foundation
import Imaging
import Models
import Tensor
import Testing

/// `GILLModel.story` against GILL's own `generate_for_images_and_texts` on the small release-format
/// folder (`Tools/make_gill_story_fixtures.py`): the same ids, [IMG] positions, text pieces, decisions,
/// retrieved pool rows and scores, for GILL's defaults and for its scale factors and min_word_tokens.
@Suite("GILL's interleaved generation against GILL's code")
struct GILLStoryTests {
    static let imageMarker = (0..<8).map { "[IMG\($0)]" }.joined()
    static let leaked = (1..<8).map { "[IMG\($0)]" }.joined()

    @Test("every case of story.json: ids, text pieces, decisions (2e-4), retrieved ids and scores (2e-3), prompt embeddings (1e-3)")
    func matchesGILL() throws {
        let root = try GILLReleaseTests.root()
        let model = try GILLReleaseTests.smallModel()
        let meta = try GILLReleaseTests.json("story.json")
        let captions = try #require(meta["captions"] as? [String])
        let names = try #require(meta["pool_names"] as? [String])
        let poolTensor = try SafetensorsFile(url: root.appendingPathComponent("story_pool.safetensors")).tensor(named: "pool")
        let pool = (0..<poolTensor.shape[0]).map { poolTensor.row($0) }
        var pieces: [GILLSegment] = []
        for (i, c) in captions.enumerated() {
            let image = try Image.load(contentsOf: root.appendingPathComponent("vist/p\(i).png")).converted(toChannels: 3)
            pieces += [.text(c), .image(GILLPrompt.squashed(image))]
        }
        let prompt = try model.embed(GILLPrompt.segments(pieces))
        #expect(meta["newline_id"] as? Int == model.newlineTokenID)
        #expect(meta["img_ids"] as? [Int] == model.imageTokenIDs)

        var firstImage: [String: Int?] = [:]
        for case let c as [String: Any] in try #require(meta["cases"] as? [Any]) {
            let name = try #require(c["name"] as? String)
            let call = try #require(c["call"] as? [String: Double])
            var o = GILLStoryOptions()
            o.numWords = Int(call["num_words"] ?? 32)
            o.retScaleFactor = Float(call["ret_scale_factor"] ?? 1)
            o.genScaleFactor = Float(call["gen_scale_factor"] ?? 1)
            o.minWordTokens = Int(call["min_word_tokens"] ?? 0)
            o.maxNumRets = Int(call["max_num_rets"] ?? 1)
            let story = try model.story(prompt: prompt, options: o, pool: pool)
            #expect(story.generatedTokens == (c["ids"] as? [Int]), "\(name): ids")
            firstImage[name] = story.tokens.firstIndex(of: model.imageTokenIDs[0])
            let expected = try #require(c["pieces"] as? [[String: Any]])
            try #require(story.pieces.count == expected.count, "\(name): \(story.pieces.count) pieces, GILL \(expected.count)")
            for (i, (piece, want)) in zip(story.pieces, expected).enumerated() {
                switch piece {
                case .text(let text):
                    // GILL's piece: its [IMG1…7] leak after an earlier block, the text, " [IMG0…7]" before a block.
                    var gill = try #require(want["text"] as? String, "\(name) piece \(i): GILL has an image here")
                    if gill.hasPrefix(Self.leaked) { gill.removeFirst(Self.leaked.count) }
                    if i + 1 < expected.count, gill.hasSuffix(" " + Self.imageMarker) { gill.removeLast(Self.imageMarker.count + 1) }
                    #expect(text == gill, "\(name) piece \(i)")
                case .image(let block):
                    let decision = try #require(want["decision"] as? String, "\(name) piece \(i): GILL has text here")
                    #expect(block.decision.rawValue == decision, "\(name) piece \(i): decision")
                    #expect(block.decidedByHead)
                    let p = try #require(want["probabilities"] as? [Double]).map(Float.init)
                    #expect(GILLReleaseTests.maxDifference(block.outputs.decision, p) < 2e-4, "\(name) piece \(i): probabilities")
                    let retrieved = try #require(want["retrieved"] as? [[String: Any]])
                    #expect(block.retrieved.map { names[$0.index] } == retrieved.compactMap { $0["id"] as? String }, "\(name) piece \(i): retrieved")
                    let scores = retrieved.compactMap { ($0["score"] as? Double).map(Float.init) }
                    #expect(GILLReleaseTests.maxDifference(block.retrieved.map(\.score), scores) < 2e-3, "\(name) piece \(i): scores")
                    let head = try #require(want["prompt_embeds_head"] as? [Double]).map(Float.init)
                    #expect(GILLReleaseTests.maxDifference(Array(block.outputs.promptEmbeddings.data.prefix(8)), head) < 1e-3,
                            "\(name) piece \(i): prompt embeddings")
                }
            }
        }
        // The controls act as in GILL: none of GILL's defaults produce an image here; the ret scale factor
        // (|logit| × 3.2) and the two factors together (1.8 × 1.8) make [IMG0] win the second step; 1e5
        // makes it win the first, and min_word_tokens 4 holds it back until step 4.
        #expect(firstImage["defaults"] == .some(nil))
        #expect(firstImage["ret_scale"] == 1 && firstImage["ret_and_gen_scale"] == 1)
        #expect(firstImage["gen_scale"] == 0 && firstImage["min_words"] == 4)
    }

    @Test("GILL refuses top_p with greedy decoding; so does story")
    func greedyTopP() throws {
        let model = try GILLReleaseTests.smallModel()
        var o = GILLStoryOptions()
        o.topP = 0.9
        #expect(throws: ModelError.self) { _ = try model.story(prompt: try model.embed([.text("A ball.")]), options: o) }
    }

    @Test("without a pool GILL generates: no retrieval, decision gen not taken from the head; max_num_rets caps the blocks shown")
    func noPool() throws {
        let model = try GILLReleaseTests.smallModel()
        var o = GILLStoryOptions()
        o.numWords = 3
        o.genScaleFactor = 1e5
        o.maxNumRets = 2
        let story = try model.story(prompt: try model.embed([.text("A ball.")]), options: o)
        let blocks = story.pieces.compactMap { if case .image(let b) = $0 { return b } else { return nil } }
        #expect(blocks.count == 2 && story.tokens.count == 24)
        #expect(blocks.allSatisfy { $0.decision == .gen && !$0.decidedByHead && $0.retrieved.isEmpty })
    }
}
