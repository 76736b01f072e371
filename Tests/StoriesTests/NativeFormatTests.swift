import Foundation
import Testing
@testable import Stories

@Suite struct NativeFormatTests {
    func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stories-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func roundTripIsByteStable() throws {
        let dir = try tempDir()
        let entries = [
            Entry(id: "s1", kind: .story, panels: [Panel(image: "images/a.png", text: "A red ball.", metadata: .object(["n": .number(1)]))]),
            Entry(id: "d1", kind: .dialogue, panels: [Panel(image: "images/b.png", text: "A scene.")],
                  rounds: [DialogueRound(question: "Is it day?", answer: "Yes.")]),
        ]
        try NativeCollection.write(entries, to: dir)
        let first = try Data(contentsOf: dir.appendingPathComponent("collection.jsonl"))
        let read = try NativeCollection.read(at: dir)
        #expect(read.entries == entries)
        try NativeCollection.write(read.entries, to: dir)
        #expect(try Data(contentsOf: dir.appendingPathComponent("collection.jsonl")) == first)
    }

    @Test func badLineNamesFileAndLine() throws {
        let dir = try tempDir()
        let text = "{\"id\":\"a\",\"kind\":\"story\",\"panels\":[]}\n{\"id\":\"b\",\"kind\":\"story\"}\n"
        try text.write(to: dir.appendingPathComponent("collection.jsonl"), atomically: true, encoding: .utf8)
        let error = #expect(throws: CollectionError.self) { try NativeCollection.read(at: dir) }
        #expect(error?.line == 2)
        #expect(error?.description.contains("missing key \"panels\"") == true)
    }

    @Test func imagePathsStayInsideRoot() throws {
        let dir = try tempDir()
        let text = "{\"id\":\"a\",\"kind\":\"story\",\"panels\":[{\"image\":\"../../etc/passwd\",\"text\":\"x\"}]}\n"
        try text.write(to: dir.appendingPathComponent("collection.jsonl"), atomically: true, encoding: .utf8)
        let error = #expect(throws: CollectionError.self) { try NativeCollection.read(at: dir) }
        // The refusal names the workflow key that permits it.
        #expect(error?.description.contains("image path \"../../etc/passwd\" leaves the collection folder (set allow_outside_root: true under the workflow's collection: to permit)") == true)
        #expect(error?.description.contains("allowOutsideRoot") == false)
        #expect(try NativeCollection.read(at: dir, allowOutsideRoot: true).entries.count == 1)
        #expect(PathSafety.staysInside(relativePath: "images/./a/../b.png"))
        #expect(!PathSafety.staysInside(relativePath: "images/../../b.png"))
        #expect(!PathSafety.staysInside(relativePath: "/abs.png"))
    }
}
