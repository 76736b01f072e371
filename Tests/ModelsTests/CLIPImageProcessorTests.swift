import Foundation
import Imaging
import Testing
@testable import Models
import Tensor

/// Preprocessing of real PNGs (RGB, RGBA, grey; odd sizes) against transformers'
/// `CLIPImageProcessor` (PIL backend), then embeddings end to end from the files.
@Suite("CLIP image preprocessing")
struct CLIPImageProcessorTests {
    static func images() throws -> [Image] {
        let e = try CLIPParityTests.expected("tiny_a")
        let names = try #require(e.json["images"] as? [String])
        let dir = try CLIPParityTests.fixture("images")
        return try names.map { try Image.load(contentsOf: dir.appendingPathComponent($0)) }
    }

    /// The RGBA fixture whose 23×57 → 16×39 downscale needs Pillow 13's vertical-first pass order.
    static let rgbaFixture = "noise_23x57.png"

    static func rowDifference(_ a: [Float], _ b: Tensor, row: Int) -> Float {
        let n = b.count / b.shape[0]
        return zip(a, b.data[(row * n)..<((row + 1) * n)]).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test("pixel values within 1e-5 of CLIPImageProcessor", arguments: ["tiny_a", "tiny_b"])
    func pixelValues(_ name: String) throws {
        let model = try CLIPModel.load(from: CLIPParityTests.fixture(name))
        let e = try CLIPParityTests.expected(name)
        let names = try #require(e.json["images"] as? [String])
        let images = try Self.images()
        #expect(Set(images.map(\.channels)) == [1, 3, 4])
        let ours = try model.pixelValues(images)
        let expected = try e.tensor("pixel_values")
        #expect(ours.shape == expected.shape)
        let n = ours.count / images.count
        for (i, file) in names.enumerated() {
            let d = Self.rowDifference(Array(ours.data[(i * n)..<((i + 1) * n)]), expected, row: i)
            #expect(d <= 1e-5, "\(file): pixel values max |Δ| = \(d)")
        }
    }

    @Test("image embeddings from PNG files", arguments: ["tiny_a", "tiny_b"])
    func embeddingsFromFiles(_ name: String) throws {
        let model = try CLIPModel.load(from: CLIPParityTests.fixture(name))
        let e = try CLIPParityTests.expected(name)
        let names = try #require(e.json["images"] as? [String])
        let images = try Self.images()
        let embeds = try model.imageEmbeddings(images)
        let pooler = try model.visionPoolerOutput(images)
        let expectedEmbeds = try e.tensor("image_embeds"), expectedPooler = try e.tensor("vision_pooler")
        for (i, file) in names.enumerated() {
            #expect(Self.rowDifference(embeds[i], expectedEmbeds, row: i) <= CLIPParityTests.tolerance, "\(file)")
            #expect(Self.rowDifference(pooler[i], expectedPooler, row: i) <= CLIPParityTests.tolerance, "\(file)")
        }
    }

    @Test("alpha is composited onto white exactly as Pillow's alpha_composite")
    func alphaComposite() throws {
        // Values from Pillow 13: alpha_composite(white, RGBA) for the first pixels of noise_23x57.png.
        let image = try Image.load(contentsOf: CLIPParityTests.fixture("images").appendingPathComponent(Self.rgbaFixture))
        #expect(Array(image.pixels.prefix(8)) == [5, 0, 21, 128, 0, 0, 0, 103])
        let rgb = CLIPImageProcessor().rgb(image)
        #expect(Array(rgb.pixels.prefix(12)) == [130, 127, 138, 152, 152, 152, 134, 134, 134, 146, 147, 150])
    }

    @Test("preprocessor_config.json values are read and checked")
    func config() throws {
        let p = try CLIPImageProcessor(configURL: CLIPParityTests.fixture("tiny_b").appendingPathComponent("preprocessor_config.json"))
        #expect(p.shortestEdge == 32 && p.cropWidth == 32 && p.cropHeight == 32 && p.resample == 3)
        #expect(p.imageMean == [0.48145466, 0.4578275, 0.40821073])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-proc-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"resample": 2}"#.utf8).write(to: dir)
        #expect(throws: ModelError.self) { try CLIPImageProcessor(configURL: dir) }
        try Data(#"{"image_mean": [0.5, 0.5]}"#.utf8).write(to: dir)
        #expect(throws: ModelError.self) { try CLIPImageProcessor(configURL: dir) }
    }
}
