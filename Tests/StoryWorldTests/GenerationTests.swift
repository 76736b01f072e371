import Foundation
import Imaging
import Stories
import Testing
@testable import StoryWorld

@Suite("StoryWorld generation")
struct GenerationTests {
    static func jsonl(_ entries: [Entry]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try entries.reduce(into: Data()) { $0.append(try encoder.encode($1)); $0.append(10) }
    }

    @Test("same seed gives identical entries and pixels; a different seed differs")
    func determinism() throws {
        let a = StoryWorldGenerator.entries(WorldOptions(seed: 42, stories: 30, dialogues: 15))
        let b = StoryWorldGenerator.entries(WorldOptions(seed: 42, stories: 30, dialogues: 15))
        let c = StoryWorldGenerator.entries(WorldOptions(seed: 43, stories: 30, dialogues: 15))
        #expect(try Self.jsonl(a) == Self.jsonl(b))
        #expect(try Self.jsonl(a) != Self.jsonl(c))
        let differing = zip(a, c).filter { $0.panels.map(\.text) != $1.panels.map(\.text) }.count
        #expect(differing > 40, "only \(differing) of 45 entries differ between seeds 42 and 43")
        let scene = try Scene(metadata: #require(a[0].panels[4].metadata))
        #expect(SceneRenderer.render(scene, size: 64) == SceneRenderer.render(scene, size: 64))
    }

    @Test("the first entries of a big set equal a small set with the same seed")
    func prefixStability() {
        let small = StoryWorldGenerator.entries(WorldOptions(seed: 7, stories: 20, dialogues: 5))
        let big = StoryWorldGenerator.entries(WorldOptions(seed: 7, stories: 200, dialogues: 50))
        #expect(Array(big.prefix(20)) == Array(small.prefix(20)))
        #expect(Array(big[200..<205]) == Array(small[20..<25]))
        #expect(small[0].id == "story-00001" && small[20].id == "dialogue-00001" && big[241].id == "dialogue-00042")
    }

    @Test("panels carry the scene graph, image paths and world version")
    func metadata() throws {
        let entries = StoryWorldGenerator.entries(WorldOptions(seed: 1, stories: 10, dialogues: 5))
        for entry in entries {
            #expect(entry.metadata?["version"]?.doubleValue == Double(StoryWorldGenerator.version))
            #expect(entry.metadata?["seed"]?.stringValue == "1")
            #expect(entry.panels.count == (entry.kind == .story ? 5 : 1))
            for (i, p) in entry.panels.enumerated() {
                let name = entry.kind == .story ? "\(entry.id)-\(i + 1)" : entry.id
                #expect(p.image == "images/\(name).png")
                let meta = try #require(p.metadata)
                #expect(meta["display"]?.stringValue == "display/\(name).png")
                let scene = try Scene(metadata: meta)
                #expect(scene.isValid)
                #expect(meta["objects"]?.arrayValue?.count == scene.objects.count)
            }
        }
        var noImages = WorldOptions(seed: 1, stories: 2, dialogues: 1)
        noImages.renderImages = false
        for e in StoryWorldGenerator.entries(noImages) {
            #expect(e.panels.allSatisfy { $0.image == nil && $0.metadata?["display"] == nil && $0.metadata?["objects"] != nil })
        }
    }

    @Test("bad scene metadata names the key and what was expected")
    func badMetadata() {
        let bad: JSONValue = .object(["background": .string("moon"), "objects": .array([])])
        #expect { try Scene(metadata: bad) } throws: { "\($0)".contains("background") && "\($0)".contains("moon") }
        let badObject: JSONValue = .object(["background": .string("day"), "objects": .array([.object(["id": .number(1), "kind": .string("dragon")])])])
        #expect { try Scene(metadata: badObject) } throws: { "\($0)".contains("objects[0].kind") }
    }

    @Test("entities persist across panels: ids keep their kind")
    func persistentEntities() {
        var changes = 0
        for index in 0..<100 {
            let story = StoryPlanner.story(seed: 9, index: index)
            #expect(story.scenes.count == 5 && story.captions.count == 5)
            var kindOf: [Int: ObjectKind] = [:]
            for (s, next) in zip(story.scenes, story.scenes.dropFirst()) {
                for o in s.objects + next.objects {
                    #expect(kindOf[o.id, default: o.kind] == o.kind)
                    kindOf[o.id] = o.kind
                }
                if s != next { changes += 1 }
            }
        }
        // Every event changes the picture.
        #expect(changes == 400)
    }

    @Test("captions use many templates and varied wording")
    func grammarVariety() {
        var templates = Set<String>(), texts = Set<String>(), pronouns = 0, definites = 0
        for index in 0..<200 {
            for c in StoryPlanner.story(seed: 21, index: index).captions {
                templates.insert(c.template)
                texts.insert(c.text)
                #expect(c.text.first?.isUppercase == true && c.text.hasSuffix("."), "\(c.text)")
                let words = c.text.lowercased().split(separator: " ")
                if words.contains("it") { pronouns += 1 }
                if words.contains("the") { definites += 1 }
            }
        }
        print("caption variety over 200 stories: \(templates.count) templates, \(texts.count) distinct captions of 1000; \(pronouns) with 'it', \(definites) with 'the'")
        #expect(templates.count >= 30)
        #expect(texts.count >= 600)
        #expect(pronouns >= 100 && definites >= 200)
    }

    @Test("dialogues: one panel, a partial caption and ten rounds")
    func dialogueShape() {
        let entries = StoryWorldGenerator.entries(WorldOptions(seed: 4, stories: 0, dialogues: 50))
        for e in entries {
            #expect(e.kind == .dialogue && e.panels.count == 1 && e.rounds.count == 10)
            #expect(e.rounds.allSatisfy { $0.question.hasSuffix("?") && !$0.answer.isEmpty })
            #expect(e.panels[0].text.split(separator: " ").count <= 8, "caption too detailed: \(e.panels[0].text)")
        }
    }
}
