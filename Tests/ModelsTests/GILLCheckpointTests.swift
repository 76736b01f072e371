import Foundation
import Testing
import Tensor

/// The torch zip-pickle reader on GILL's released `decision_model.pth.tar` (values recorded with
/// torch 2.13 `torch.load`), and on a small torch-saved file from `Tools/make_gill_fixtures.py`
/// holding bf16/f16 storages, a transposed (strided) view, a shared storage and `module.` prefixes.
@Suite("torch .pth.tar reader")
struct GILLCheckpointTests {
    /// `../shared/gill-release/` relative to the package root (two levels above this file's folder).
    static var releaseFolder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/gill-release")
    }

    static var decisionModel: URL { releaseFolder.appendingPathComponent("decision_model.pth.tar") }

    /// Why the tests on GILL's released files skip when they are absent (printed with the skip).
    static func missing(_ file: String) -> Comment {
        Comment(rawValue: "needs GILL's released \(file) in \(releaseFolder.path) (the shared gill-release folder beside the package), which is not there")
    }

    @Test("GILL's released decision head: 2×4096 weight and 2 bias saved as cuda float tensors",
          .enabled(if: FileManager.default.fileExists(atPath: decisionModel.path), missing("decision_model.pth.tar")))
    func releasedDecisionHead() throws {
        let ckpt = try TorchCheckpoint(url: Self.decisionModel)
        #expect(ckpt.names == ["1.bias", "1.weight"])
        let w = try ckpt.tensor(named: "1.weight"), b = try ckpt.tensor(named: "1.bias")
        #expect(w.shape == [2, 4096])
        #expect(b.shape == [2])
        #expect(Array(w.data.prefix(4)) == [0.03794039413332939, -0.008106554858386517, 0.01964581198990345, -0.027349166572093964])
        #expect(Array(w.data.suffix(3)) == [-0.04126334935426712, -0.030878635123372078, -0.03786291554570198])
        #expect(w.data[4096 + 1234] == 0.01322358101606369)
        #expect(b.data == [-0.010044708847999573, -0.0028955002781003714])
        let sum = w.data.reduce(0.0) { $0 + Double($1) }
        let abs = w.data.reduce(0.0) { $0 + Double(Swift.abs($1)) }
        #expect(Swift.abs(sum - 0.869661329167684) < 1e-9)
        #expect(Swift.abs(abs - 205.78321369102287) < 1e-9)
    }

    @Test("the decision head round-trips through safetensors with the same keys",
          .enabled(if: FileManager.default.fileExists(atPath: decisionModel.path), missing("decision_model.pth.tar")))
    func safetensorsRoundTrip() throws {
        let tensors = try TorchCheckpoint(url: Self.decisionModel).stateDict()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("decision-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafetensorsWriter.write(tensors, to: url)
        let back = try SafetensorsFile(url: url)
        #expect(back.names == ["1.bias", "1.weight"])
        for (name, t) in tensors { #expect(try back.tensor(named: name) == t) }
    }

    @Test("strided views, half/bfloat16 storages, shared storages and prefixes")
    func smallFile() throws {
        let folder = try #require(Bundle.module.url(forResource: "Fixtures/gill/torch", withExtension: nil))
        let ckpt = try TorchCheckpoint(url: folder.appendingPathComponent("small.pth.tar"))
        let expected = try SafetensorsFile(url: folder.appendingPathComponent("small_expected.safetensors"))
        #expect(ckpt.names == expected.names.map { "module." + $0 }.sorted())
        let dict = try ckpt.stateDict(strippingPrefixes: ["module.", "model."])
        for name in expected.names {
            #expect(dict[name] == (try expected.tensor(named: name)), "\(name)")
        }
    }

    @Test("a file that is not a torch zip names itself")
    func badFiles() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).pth.tar")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(repeating: 7, count: 100).write(to: url)
        #expect { try TorchCheckpoint(url: url) } throws: { "\($0)".contains(url.lastPathComponent) && "\($0)".contains("zip") }
        #expect(throws: TensorError.self) { try unpickleTorch([0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x2E]) }
        #expect(throws: TensorError.self) { try unpickleTorch([0x80, 0x02, 0x7D]) }
    }
}
