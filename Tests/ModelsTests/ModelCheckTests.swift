import Foundation
import Testing
@testable import Models
import Tensor

/// `ModelCheck` on the fixture folders: every folder the loaders load is reported OK with no
/// missing and no unused tensors — since the loaders are strict both ways, that makes the
/// check's lists exactly what the loaders take — and broken copies are reported by name.
@Suite("models check")
struct ModelCheckTests {
    static var repository: URL { StoryWorldModelTests.repository }

    static func fixture(_ path: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/" + path, withExtension: nil), "missing fixture \(path)")
    }

    @Test("fixture and example folders of every kind check OK, with nothing missing or unused, and load")
    func cleanFolders() throws {
        let cases: [(URL, ModelCheck.Kind)] = [
            (try Self.fixture("gill/tiny"), .gill), (try Self.fixture("gill/release/small"), .gill),
            (try Self.fixture("clip/tiny_a"), .clip), (try Self.fixture("clip/tiny_a_vision"), .clip),
            (try Self.fixture("clip/tiny_a_text"), .clip), (try Self.fixture("clip/tiny_b"), .clip),
            (try Self.fixture("opt/pre"), .opt), (try Self.fixture("opt/post"), .opt), (try Self.fixture("opt/bf16"), .opt),
            (Self.repository.appendingPathComponent("Examples/models/tiny-sd"), .stableDiffusion),
            (Self.repository.appendingPathComponent("Examples/models/tiny-gill"), .gill),
        ]
        for (folder, kind) in cases {
            let check = ModelCheck.run(folder)
            #expect(check.kind == kind, "\(folder.path)")
            #expect(check.ok, "\(check.report())")
            for part in check.parts {
                #expect(part.rows(.unused).isEmpty && part.rows(.missing).isEmpty, "\(part.name): \(check.report())")
            }
            // The loaders agree: strict on missing and unused tensors, they load the same folders.
            switch kind {
            case .gill: _ = try GILLModel.load(from: folder)
            case .clip: _ = try CLIPModel.load(from: folder)
            case .opt: _ = try OPTModel.load(from: folder)
            case .stableDiffusion: _ = try StableDiffusionPipeline(folder: folder)
            }
        }
    }

    @Test("GILL's memory and parts: OPT, CLIP, GILL's own weights, and the decoder when there is one")
    func gillParts() throws {
        let check = ModelCheck.run(Self.repository.appendingPathComponent("Examples/models/tiny-gill"))
        #expect(check.parts.map(\.name) == ["gill/opt", "gill/clip", "gill", "gill/decoder/unet", "gill/decoder/vae", "gill/decoder/text_encoder"])
        #expect(check.memoryBytes == check.parts.reduce(0) { $0 + 4 * $1.parameters })
        let small = ModelCheck.run(try Self.fixture("gill/release/small"))
        let gill = try #require(small.parts.first { $0.name == "gill" })
        #expect(gill.rows.filter { $0.expected != nil }.count == 139)
        #expect(gill.rows.compactMap(\.dtype).filter { $0 == "BF16" }.count == 137)
        #expect(gill.notes.contains { $0.contains("mapper sizes from the weights: 16 wide") })
        // Memory as stored: BF16 matrices at 2 bytes; an F32 folder is the same either way.
        #expect(gill.storedBytes < 4 * gill.parameters && gill.storedBytes >= 2 * gill.parameters)
        let f32 = ModelCheck.run(try Self.fixture("opt/pre"))
        #expect(f32.storedMemoryBytes == f32.memoryBytes)
        #expect(f32.report().contains("as stored"))
    }

    @Test("missing, misshapen and unused tensors are listed by name; a folder of no known kind is an error")
    func brokenFolders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: try Self.fixture("opt/post"), to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.safetensors")
        let st = try SafetensorsFile(url: file)
        var tensors: [String: Tensor] = [:]
        for name in st.names { tensors[name] = try st.tensor(named: name) }
        let gone = try #require(st.names.first { $0.hasSuffix("layers.0.fc1.bias") })
        let bent = try #require(st.names.first { $0.hasSuffix("layers.1.fc2.weight") })
        tensors[gone] = nil
        tensors[bent] = try tensors[bent]!.reshaped([tensors[bent]!.count])
        tensors["stray.weight"] = try Tensor(shape: [3], data: [1, 2, 3])
        try SafetensorsWriter.write(tensors, to: file)
        let check = ModelCheck.run(dir)
        #expect(!check.ok)
        let part = try #require(check.parts.first)
        #expect(part.rows(.missing).map(\.name) == [gone])
        #expect(part.rows(.wrongShape).map(\.name) == [bent])
        #expect(part.rows(.unused).map(\.name) == ["stray.weight"])
        let report = check.report()
        #expect(report.contains(gone) && report.contains(bent) && report.contains("stray.weight") && report.contains("2 problem(s)"), "\(report)")

        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("check-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = ModelCheck.run(empty)
        #expect(none.kind == nil && !none.ok && none.errors.first?.contains("not a model folder") == true)
    }
}
