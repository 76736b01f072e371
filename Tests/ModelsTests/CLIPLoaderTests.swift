import Foundation
import Testing
@testable import Models
import Tensor

/// The loader's checks: missing, unused and mis-shaped tensors, and bad configs.
@Suite("CLIP loading errors")
struct CLIPLoaderTests {
    /// A scratch copy of the tiny_a fixture whose weights/config a test can alter.
    static func scratchCopy() throws -> URL {
        let source = try CLIPParityTests.fixture("tiny_a")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-loader-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: dir)
        return dir
    }

    static func rewriteWeights(_ dir: URL, _ change: (inout [String: Tensor]) -> Void) throws {
        let url = dir.appendingPathComponent("model.safetensors")
        let file = try SafetensorsFile(url: url)
        var tensors: [String: Tensor] = [:]
        for name in file.names where !name.hasSuffix("position_ids") { tensors[name] = try file.tensor(named: name) }
        change(&tensors)
        try SafetensorsWriter.write(tensors, to: url)
    }

    static func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    @Test("a missing tensor is named")
    func missing() throws {
        let dir = try Self.scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.rewriteWeights(dir) { $0["text_model.encoder.layers.1.mlp.fc2.bias"] = nil }
        let m = Self.message { _ = try CLIPModel.load(from: dir) }
        #expect(m.contains("text_model.encoder.layers.1.mlp.fc2.bias") && m.contains("missing"), "\(m)")
    }

    @Test("unused tensors are listed")
    func unused() throws {
        let dir = try Self.scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.rewriteWeights(dir) {
            $0["vision_model.encoder.layers.7.mlp.fc1.weight"] = Tensor(zeros: [2, 2])
            $0["extra_head.weight"] = Tensor(zeros: [3])
        }
        let m = Self.message { _ = try CLIPModel.load(from: dir) }
        #expect(m.contains("2 tensor(s) not used") && m.contains("extra_head.weight")
                && m.contains("vision_model.encoder.layers.7.mlp.fc1.weight"), "\(m)")
    }

    @Test("a shape that disagrees with config.json names file and tensor")
    func shapeMismatch() throws {
        let dir = try Self.scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let configURL = dir.appendingPathComponent("config.json")
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        var vision = try #require(config["vision_config"] as? [String: Any])
        vision["intermediate_size"] = 100
        config["vision_config"] = vision
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let m = Self.message { _ = try CLIPModel.load(from: dir) }
        #expect(m.contains("model.safetensors") && m.contains("vision_model.encoder.layers.0.mlp.fc1.weight")
                && m.contains("[96, 32]") && m.contains("[100, 32]"), "\(m)")
    }

    @Test("bad config values are clear errors")
    func badConfig() throws {
        let dir = try Self.scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let configURL = dir.appendingPathComponent("config.json")
        try Data(#"{"model_type": "clip", "text_config": {"hidden_size": "wide"}}"#.utf8).write(to: configURL)
        var m = Self.message { _ = try CLIPModel.load(from: dir) }
        #expect(m.contains("config.json") && m.contains("hidden_size"), "\(m)")
        try Data(#"{"model_type": "clip", "vision_config": {"image_size": 30, "patch_size": 4}}"#.utf8).write(to: configURL)
        m = Self.message { _ = try CLIPModel.load(from: dir) }
        #expect(m.contains("image_size 30 is not a multiple of patch_size 4"), "\(m)")
        try Data(#"{"model_type": "bert"}"#.utf8).write(to: configURL)
        m = Self.message { _ = try CLIPModel.load(from: dir) }
        #expect(m.contains("model_type 'bert'"), "\(m)")
    }

    @Test("tiny_b loads from F16 shards through the index")
    func shards() throws {
        let folder = try CLIPParityTests.fixture("tiny_b")
        let checkpoint = try Checkpoint(url: folder)
        #expect(checkpoint.files.count > 1)
        #expect(checkpoint.files.allSatisfy { $0.tensors.values.allSatisfy { $0.dtype == .f16 } })
    }
}
