import Foundation
import Imaging
import Stories
import Testing
@testable import StoryWorld

@Suite("StoryWorld collection folders")
struct WriteTests {
    static func files(_ folder: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for sub in ["", "images", "display"] {
            let dir = sub.isEmpty ? folder : folder.appendingPathComponent(sub)
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                let url = dir.appendingPathComponent(name)
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue {
                    out[sub.isEmpty ? name : "\(sub)/\(name)"] = try Data(contentsOf: url)
                }
            }
        }
        return out
    }

    @Test("generate writes a readable collection; same seed gives identical bytes, another seed differs")
    func generateDeterministic() throws {
        let a = try Support.temporaryFolder("a"), b = try Support.temporaryFolder("b"), c = try Support.temporaryFolder("c")
        defer { for f in [a, b, c] { try? FileManager.default.removeItem(at: f) } }
        var options = WorldOptions(seed: 31, stories: 4, dialogues: 2)
        options.displaySize = 128
        let summary = try StoryWorldGenerator.generate(options, into: a)
        _ = try StoryWorldGenerator.generate(options, into: b)
        options.seed = 32
        _ = try StoryWorldGenerator.generate(options, into: c)
        #expect(summary.stories == 4 && summary.dialogues == 2 && summary.images == 22)
        let fa = try Self.files(a), fb = try Self.files(b), fc = try Self.files(c)
        #expect(fa.count == 2 + 22 + 22)
        #expect(fa["vocabulary.json"].map { String(decoding: $0, as: UTF8.self).contains("\"balloon\"") } == true)
        #expect(fa == fb)
        #expect(fa[NativeCollection.fileName] != fc[NativeCollection.fileName])

        let collection = try NativeCollection.read(at: a)
        options.seed = 31
        #expect(collection.entries == StoryWorldGenerator.entries(options))
        // Every PNG decodes to exactly the render of its panel's scene graph.
        for entry in collection.entries {
            for panel in entry.panels {
                let meta = try #require(panel.metadata)
                let scene = try Scene(metadata: meta)
                let imagePath = try #require(panel.image)
                let displayPath = try #require(meta["display"]?.stringValue)
                let small = try PNGCodec.decode(try #require(fa[imagePath]))
                #expect(small == SceneRenderer.render(scene, size: 64))
                let display = try PNGCodec.decode(try #require(fa[displayPath]))
                #expect(display.width == 128 && display == SceneRenderer.render(scene, size: 128))
            }
        }
    }

    @Test("bad options are refused with a clear error")
    func badOptions() throws {
        let folder = try Support.temporaryFolder("bad")
        defer { try? FileManager.default.removeItem(at: folder) }
        var options = WorldOptions(seed: 1, stories: 1, dialogues: 0)
        options.imageSize = 0
        #expect { try StoryWorldGenerator.generate(options, into: folder) } throws: { "\($0)".contains("imageSize") }
        options = WorldOptions(seed: 1, stories: -1, dialogues: 0)
        #expect { try StoryWorldGenerator.generate(options, into: folder) } throws: { "\($0)".contains("negative") }
    }

    @Test("size of a 20-story + 10-dialogue sample at 64 px with 256 px display images")
    func sampleSize() throws {
        let folder = try Support.temporaryFolder("size")
        defer { try? FileManager.default.removeItem(at: folder) }
        let summary = try StoryWorldGenerator.generate(WorldOptions(seed: 1, stories: 20, dialogues: 10), into: folder)
        let files = try Self.files(folder)
        func total(_ prefix: String) -> Int { files.filter { $0.key.hasPrefix(prefix) }.reduce(0) { $0 + $1.value.count } }
        let jsonl = total(NativeCollection.fileName), images = total("images/"), display = total("display/")
        print("sample 20 stories + 10 dialogues: collection.jsonl \(jsonl) B, images/ (64 px) \(images) B, display/ (256 px) \(display) B, total \(jsonl + images + display) B, \(summary.images) panels")
        #expect(summary.images == 110 && files.count == 2 + 110 + 110)
        // 64 px PNGs of flat-coloured scenes stay small.
        #expect(images / 110 < 8_000)
    }
}
