import Foundation
import Testing
@testable import Stories

@Suite struct CollectionImporterTests {
    @Test func unknownKindListsTheValidOnes() throws {
        let error = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "coco", options: [:], base: URL(fileURLWithPath: "/tmp"), allowOutsideRoot: false)
        }
        #expect(error?.description == "collection (coco): unknown collection kind \"coco\"; valid kinds: native, vist-sis, vist-dii, visdial, csv")
    }

    @Test func unknownAndMissingOptions() throws {
        let base = URL(fileURLWithPath: "/tmp")
        let unknown = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "visdial", options: ["annotations": "a.json", "images": "i", "imgs": "x"],
                                        base: base, allowOutsideRoot: false)
        }
        #expect(unknown?.description == "collection (visdial): unknown option \"imgs\"; valid options: annotations, images, question_mark, limit")
        let missing = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "vist-sis", options: ["annotations": "a.json"], base: base, allowOutsideRoot: false)
        }
        #expect(missing?.description.contains("missing option \"images\"") == true)
        let badBool = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "vist-sis", options: ["annotations": "a.json", "images": "i", "use_original_text": "maybe"],
                                        base: base, allowOutsideRoot: false)
        }
        #expect(badBool?.description.contains("option \"use_original_text\": expected true or false, found \"maybe\"") == true)
        let badLimit = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "csv", options: ["annotations": "a.csv", "limit": "-3"], base: base, allowOutsideRoot: false)
        }
        #expect(badLimit?.description.contains("expected a positive integer, found \"-3\"") == true)
    }

    /// Paths resolve against `base`, options reach the importers, and every kind loads.
    @Test func everyKindLoadsThroughTheEntryPoint() throws {
        let base = try ImporterFixtures.tempDir()
        for name in ["val.story-in-sequence.json", "val.description-in-isolation.json", "visdial_1.0_test.json"] {
            try FileManager.default.copyItem(at: try ImporterFixtures.url(name), to: base.appendingPathComponent("data/" + name).creatingParent())
        }
        try ImporterFixtures.touch(["images/2650000001.jpg", "images/568676.jpg"], in: base)

        let sis = try CollectionImporter.load(kind: "vist-sis", options: [
            "annotations": "data/val.story-in-sequence.json", "images": "images", "use_original_text": "true", "limit": "1",
        ], base: base, allowOutsideRoot: false)
        #expect(sis.entries.map(\.id) == ["45530"])
        #expect(sis.entries[0].panels[0].text == "Our family went to the beach for the Fourth.")
        #expect(sis.entries[0].panels[0].image == "2650000001.jpg")
        #expect(sis.root.path == base.appendingPathComponent("images").standardizedFileURL.path)

        let dii = try CollectionImporter.load(kind: "vist-dii", options: [
            "annotations": base.appendingPathComponent("data/val.description-in-isolation.json").path,
            "images": base.appendingPathComponent("images").path,
        ], base: URL(fileURLWithPath: "/nonexistent"), allowOutsideRoot: false)
        #expect(dii.entries.count == 3)

        let visdial = try CollectionImporter.load(kind: "visdial", options: [
            "annotations": "data/visdial_1.0_test.json", "images": "images", "question_mark": "no",
        ], base: base, allowOutsideRoot: false)
        #expect(visdial.entries[0].rounds.first?.question == "is the photo in color")
        #expect(visdial.entries[0].panels[0].image == "568676.jpg")

        _ = try ImporterFixtures.write("shot,caption\nimages/2650000001.jpg,\"Sand, sea\"\n../up.png,x\n", to: "list.tsv", in: base)
        let csv = try CollectionImporter.load(kind: "csv", options: [
            "annotations": "list.tsv", "image_column": "shot", "text_column": "caption", "story_column": "",
        ], base: base, allowOutsideRoot: true)
        #expect(csv.root.path == base.standardizedFileURL.path)
        #expect(csv.entries.map { $0.panels[0].text } == ["Sand, sea", "x"])
        let refused = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "csv", options: ["annotations": "list.tsv", "image_column": "shot", "text_column": "caption"],
                                        base: base, allowOutsideRoot: false)
        }
        #expect(refused?.line == 3)

        let entries = [Entry(id: "n1", kind: .story, panels: [Panel(image: "images/2650000001.jpg", text: "t")])]
        try NativeCollection.write(entries, to: base.appendingPathComponent("native"))
        let native = try CollectionImporter.load(kind: "native", options: ["path": "native"], base: base, allowOutsideRoot: false)
        #expect(native.entries == entries)
    }

    @Test func missingAnnotationFileIsNamed() throws {
        let base = try ImporterFixtures.tempDir()
        let error = #expect(throws: CollectionError.self) {
            try CollectionImporter.load(kind: "visdial", options: ["annotations": "nope.json", "images": "."], base: base, allowOutsideRoot: false)
        }
        #expect(error?.description == "\(base.appendingPathComponent("nope.json").path): no such file")
    }

    @Test func jsonOffsetsBecomeLinesAndColumns() {
        let data = Data("ab\ncd\n\nefg".utf8)
        #expect(JSONFile.lineAndColumn(of: 0, in: data) == (1, 1))
        #expect(JSONFile.lineAndColumn(of: 4, in: data) == (2, 2))
        #expect(JSONFile.lineAndColumn(of: 8, in: data) == (4, 2))
        #expect(JSONFile.byteOffset(in: "Invalid value around character 19.") == 19)
        #expect(JSONFile.byteOffset(in: "Invalid hex encoded sequence in \"12\"}\" at 9.") == 9)
    }
}

private extension URL {
    /// Creates this file's folder and returns the URL unchanged.
    func creatingParent() throws -> URL {
        try FileManager.default.createDirectory(at: deletingLastPathComponent(), withIntermediateDirectories: true)
        return self
    }
}
