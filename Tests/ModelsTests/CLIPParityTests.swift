import Foundation
import Testing
@testable import Models
import Tensor

/// Parity of the Swift CLIP towers with transformers on the tiny random configs written by
/// `Tools/make_clip_fixtures.py`. Tolerance: 1e-4 absolute on float32 outputs.
@Suite("CLIP parity with transformers")
struct CLIPParityTests {
    static let tolerance: Float = 1e-4

    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/clip/\(name)", withExtension: nil),
                     "missing fixture folder clip/\(name)")
    }

    struct Expected {
        var tensors: SafetensorsFile
        var json: [String: Any]
        func tensor(_ name: String) throws -> Tensor { try tensors.tensor(named: name) }
        func ids(_ key: String) throws -> [[Int]] {
            try #require(json[key] as? [[Int]], "expected.json lacks \(key)")
        }
    }

    static func expected(_ name: String) throws -> Expected {
        let folder = try fixture(name)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("expected.json")))
        return Expected(tensors: try SafetensorsFile(url: folder.appendingPathComponent("expected.safetensors")),
                        json: try #require(json as? [String: Any]))
    }

    static func maxDifference(_ a: [[Float]], _ b: Tensor) -> Float {
        let flat = a.flatMap { $0 }
        guard flat.count == b.count else { return .infinity }
        return zip(flat, b.data).map { abs($0 - $1) }.max() ?? 0
    }

    @Test("vision pooler and image embeddings", arguments: ["tiny_a", "tiny_b"])
    func vision(_ name: String) throws {
        let model = try CLIPModel.load(from: Self.fixture(name))
        let e = try Self.expected(name)
        let pixels = try e.tensor("pixel_values")
        let pooled = try model.imageEmbeddings(pixelValues: pixels, projected: false)
        let projected = try model.imageEmbeddings(pixelValues: pixels)
        let dPooled = Self.maxDifference(pooled, try e.tensor("vision_pooler"))
        let dProjected = Self.maxDifference(projected, try e.tensor("image_embeds"))
        #expect(dPooled <= Self.tolerance, "vision pooler max |Δ| = \(dPooled)")
        #expect(dProjected <= Self.tolerance, "image embeds max |Δ| = \(dProjected)")
        #expect(model.embeddingDimension == projected[0].count)
    }

    /// tiny_b is an fp16 export: kept as stored (the default) its matrices stay f16 and are widened
    /// per tile in the products; widened on load it runs the float32 path. Same function, so 1e-5.
    @Test("fp16 CLIP kept as stored equals the same files widened on load")
    func storedHalfEqualsWidened() throws {
        let stored = try CLIPModel.load(from: Self.fixture("tiny_b"))
        let wide = try CLIPModel.load(from: Self.fixture("tiny_b"), precision: .float32)
        #expect(stored.vision?.layers[0].fc1Weight.dtype == .f16 && wide.vision?.layers[0].fc1Weight.dtype == .f32)
        let pixels = try Self.expected("tiny_b").tensor("pixel_values")
        let a = try stored.imageEmbeddings(pixelValues: pixels), b = try wide.imageEmbeddings(pixelValues: pixels)
        let d = zip(a.joined(), b.joined()).map { abs($0 - $1) }.max() ?? .infinity
        #expect(d <= 1e-5, "stored f16 vs widened image embeds max |Δ| = \(d)")
    }

    @Test("text embeddings and last hidden state", arguments: ["tiny_a", "tiny_b"])
    func text(_ name: String) throws {
        let model = try CLIPModel.load(from: Self.fixture(name))
        let e = try Self.expected(name)
        let ids = try e.ids("text_ids")
        let texts = try #require(e.json["texts"] as? [String])
        #expect(try model.tokenIDs(texts) == ids)
        let pooled = try model.textEmbeddings(texts, projected: false)
        let projected = try model.textEmbeddings(texts)
        let hidden = try model.textEncoderHiddenStates(tokenIDs: ids)
        #expect(hidden.shape == (try e.tensor("text_last_hidden_state")).shape)
        let dPooled = Self.maxDifference(pooled, try e.tensor("text_pooler"))
        let dProjected = Self.maxDifference(projected, try e.tensor("text_embeds"))
        let dHidden = zip(hidden.data, try e.tensor("text_last_hidden_state").data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(dPooled <= Self.tolerance, "text pooler max |Δ| = \(dPooled)")
        #expect(dProjected <= Self.tolerance, "text embeds max |Δ| = \(dProjected)")
        #expect(dHidden <= Self.tolerance, "last hidden state max |Δ| = \(dHidden)")
    }

    /// Raw ids where the highest id is not the first end-of-text token: tiny_a uses the
    /// eos_token_id rule, tiny_b (eos_token_id = 2) the legacy argmax rule.
    @Test("end-of-text pooling rule", arguments: ["tiny_a", "tiny_b"])
    func pooling(_ name: String) throws {
        let model = try CLIPModel.load(from: Self.fixture(name))
        let e = try Self.expected(name)
        let ids = try e.ids("raw_ids")
        let text = try #require(model.text)
        let eos = try #require(model.tokenizer).eosTokenID
        let expectedIndices = text.config.eosTokenID == 2
            ? ids.map { row in row.firstIndex(of: row.max()!)! }
            : ids.map { $0.firstIndex(of: eos)! }
        #expect(ids.map(text.poolIndex) == expectedIndices)
        #expect(Set(ids.map(text.poolIndex)).count == 2)
        let pooled = try model.textEmbeddings(tokenIDs: ids, projected: false)
        let projected = try model.textEmbeddings(tokenIDs: ids)
        let hidden = try model.textEncoderHiddenStates(tokenIDs: ids)
        #expect(Self.maxDifference(pooled, try e.tensor("raw_text_pooler")) <= Self.tolerance)
        #expect(Self.maxDifference(projected, try e.tensor("raw_text_embeds")) <= Self.tolerance)
        let dHidden = zip(hidden.data, try e.tensor("raw_text_last_hidden_state").data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(dHidden <= Self.tolerance)
    }

    @Test("single-tower layouts: CLIPVisionModelWithProjection and CLIPTextModelWithProjection")
    func singleTowers() throws {
        let e = try Self.expected("tiny_a")
        let vision = try CLIPModel.load(from: Self.fixture("tiny_a_vision"))
        #expect(vision.text == nil && vision.vision?.hasProjection == true)
        let image = try vision.imageEmbeddings(pixelValues: try e.tensor("pixel_values"))
        #expect(Self.maxDifference(image, try e.tensor("image_embeds")) <= Self.tolerance)
        #expect(throws: ModelError.self) { try vision.textEmbeddings(["a cat"]) }

        let text = try CLIPModel.load(from: Self.fixture("tiny_a_text"))
        #expect(text.vision == nil && text.text?.hasProjection == true)
        let texts = try #require(e.json["texts"] as? [String])
        let embeds = try text.textEmbeddings(texts)
        #expect(Self.maxDifference(embeds, try e.tensor("text_embeds")) <= Self.tolerance)
    }

    @Test("digest depends on config and weights")
    func digest() throws {
        let a = try CLIPModel.load(from: Self.fixture("tiny_a"))
        let again = try CLIPModel.load(from: Self.fixture("tiny_a"))
        let b = try CLIPModel.load(from: Self.fixture("tiny_b"))
        #expect(a.digest.count == 64)
        #expect(a.digest == again.digest)
        #expect(a.digest != b.digest)
    }

    @Test("bad pixel shape and out-of-vocabulary ids are errors")
    func badInputs() throws {
        let model = try CLIPModel.load(from: Self.fixture("tiny_a"))
        #expect(throws: TensorError.self) { try model.imageEmbeddings(pixelValues: Tensor(zeros: [1, 3, 8, 8])) }
        #expect(throws: TensorError.self) { try model.textEmbeddings(tokenIDs: [[0, 99_999]]) }
        #expect(throws: TensorError.self) { try model.textEmbeddings(tokenIDs: [[0, 1], [0]]) }
        #expect(throws: TensorError.self) { try model.textEmbeddings(tokenIDs: [[Int](repeating: 0, count: 78)]) }
    }
}
