import Foundation
import Testing
@testable import Stories

@Suite struct VisDialImporterTests {
    /// Image 185565 named as in VisDial's val2018 release, 284024 as in COCO (in a subfolder, as VisDial's
    /// train split spans COCO folders), and none for 999.
    func imagesFolder() throws -> URL {
        let dir = try ImporterFixtures.tempDir().appendingPathComponent("VisualDialog_val2018")
        try ImporterFixtures.touch(["VisualDialog_val2018_000000185565.jpg", "train2014/COCO_train2014_000000284024.jpg",
                                    "568676.png", "VisualDialog_val2018_000000001999.jpg"], in: dir)
        return dir
    }

    @Test func dialogsBecomeDialogueEntries() throws {
        let collection = try VisDialImporter.load(.init(annotations: try ImporterFixtures.url("visdial_1.0_val.json"),
                                                        images: try imagesFolder()))
        #expect(collection.name == "visdial_1.0_val")
        #expect(collection.entries.map(\.id) == ["185565", "284024", "999"])
        let park = collection.entries[0]
        #expect(park.kind == .dialogue)
        #expect(park.panels == [Panel(image: "VisualDialog_val2018_000000185565.jpg", text: "two people sitting on a bench in a park")])
        #expect(park.rounds == [
            DialogueRound(question: "is the photo in color?", answer: "yes"),
            DialogueRound(question: "how many people are there?", answer: "2"),
            DialogueRound(question: "are they smiling?", answer: "yes, both of them"),
        ])
        #expect(park.warnings.isEmpty)
        #expect(park.metadata?["split"]?.stringValue == "val")
        #expect(park.metadata?["image_id"]?.doubleValue == 185565)
        let bus = collection.entries[1]
        #expect(bus.panels.first?.image == "train2014/COCO_train2014_000000284024.jpg")
        #expect(bus.rounds.last == DialogueRound(question: "is it sunny?", answer: "no"))
    }

    @Test func missingImageIsAWarning() throws {
        let collection = try VisDialImporter.load(.init(annotations: try ImporterFixtures.url("visdial_1.0_val.json"),
                                                        images: try imagesFolder()))
        let cat = collection.entries[2]
        #expect(cat.panels.first?.image == nil)
        #expect(cat.warnings == ["panel 1: image 999 not found in VisualDialog_val2018/"])
    }

    @Test func questionMarkOptionAndLimit() throws {
        let collection = try VisDialImporter.load(.init(annotations: try ImporterFixtures.url("visdial_1.0_val.json"),
                                                        images: try imagesFolder(), appendQuestionMark: false, limit: 1))
        #expect(collection.entries.count == 1)
        #expect(collection.entries[0].rounds.first?.question == "is the photo in color")
    }

    @Test func testSplitKeepsTheUnansweredLastQuestion() throws {
        let collection = try VisDialImporter.load(.init(annotations: try ImporterFixtures.url("visdial_1.0_test.json"),
                                                        images: try imagesFolder()))
        let dog = collection.entries[0]
        #expect(dog.panels.first?.image == "568676.png")
        #expect(dog.rounds == [
            DialogueRound(question: "is the photo in color?", answer: "yes"),
            DialogueRound(question: "is it daytime?", answer: "no"),
        ])
        #expect(dog.metadata?["unanswered_question"]?.stringValue == "how many dogs are there?")
        #expect(dog.metadata?["round_id"]?.doubleValue == 3)
        let kitchen = collection.entries[1]
        #expect(kitchen.rounds.isEmpty)
        #expect(kitchen.metadata?["unanswered_question"]?.stringValue == "is the photo in color?")
        #expect(kitchen.warnings == ["panel 1: image 131 not found in VisualDialog_val2018/"])
    }

    @Test func badIndexNamesTheRound() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("""
            {"version": "1.0", "split": "val", "data": {"questions": ["is it red"], "answers": ["yes"], "dialogs": [
              {"image_id": 1, "caption": "a", "dialog": [{"question": 0, "answer": 0}]},
              {"image_id": 2, "caption": "b", "dialog": [{"question": 0, "answer": 0}, {"question": 3, "answer": 0}]}]}}
            """, to: "visdial.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VisDialImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.description == "\(file.path): data.dialogs[1].dialog[1].question: index 3 is outside data.questions (1 entries)")
    }

    @Test func onlyTheLastRoundMayLackAnAnswer() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("""
            {"version": "1.0", "split": "test", "data": {"questions": ["q"], "answers": ["a"], "dialogs": [
              {"image_id": 1, "caption": "a", "dialog": [{"question": 0}, {"question": 0, "answer": 0}]}]}}
            """, to: "visdial.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VisDialImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.description.contains("missing key \"answer\" in data.dialogs[0].dialog[0]") == true)
    }

    @Test func missingDataKeyIsNamed() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("{\"version\": \"1.0\", \"data\": {\"questions\": [], \"answers\": []}}",
                                              to: "visdial.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VisDialImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.description == "\(file.path): missing key \"dialogs\" in data")
    }

    @Test func trailingNumbersOfImageNames() {
        #expect(ImageIndex.trailingNumber(of: "VisualDialog_val2018_000000000123") == 123)
        #expect(ImageIndex.trailingNumber(of: "COCO_train2014_000000284024") == 284024)
        #expect(ImageIndex.trailingNumber(of: "42") == 42)
        #expect(ImageIndex.trailingNumber(of: "cover") == nil)
    }
}
