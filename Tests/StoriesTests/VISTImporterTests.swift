import Foundation
import Testing
@testable import Stories

@Suite struct VISTImporterTests {
    /// The photos of the fixture albums, minus 2650000004 (to be reported missing), in three extensions.
    func imagesFolder() throws -> URL {
        let dir = try ImporterFixtures.tempDir().appendingPathComponent("images")
        try ImporterFixtures.touch(["2650000001.jpg", "2650000002.png", "2650000003.jpeg", "2650000005.jpg",
                                    "3550000001.jpg", "3550000002.JPG", "notes.txt"], in: dir)
        return dir
    }

    func sis(useOriginalText: Bool = false, limit: Int? = nil) throws -> StoryCollection {
        try VISTImporter.load(.init(annotations: try ImporterFixtures.url("val.story-in-sequence.json"),
                                    images: try imagesFolder(), useOriginalText: useOriginalText, limit: limit))
    }

    @Test func sisGroupsByStoryAndOrdersPanels() throws {
        let collection = try sis()
        #expect(collection.name == "val.story-in-sequence")
        #expect(collection.root.lastPathComponent == "images")
        #expect(collection.entries.map(\.id) == ["45530", "45531"])
        let beach = try #require(collection.entries.first)
        #expect(beach.kind == .story)
        #expect(beach.panels.map(\.text) == [
            "our family went to the beach for the fourth .",
            "we built a huge sandcastle first .",
            "the waves were really big !",
            "dad fell asleep under the umbrella .",
            "at sunset we packed up .",
        ])
        #expect(beach.panels.map(\.image) == ["2650000001.jpg", "2650000003.jpeg", "2650000002.png", nil, "2650000005.jpg"])
        #expect(beach.panels[1].metadata?["storylet_id"]?.stringValue == "227651")
        #expect(beach.panels[1].metadata?["original_text"]?.stringValue == "We built a huge sandcastle first.")
        #expect(beach.metadata?["album_id"]?.stringValue == "72157606041235212")
        #expect(beach.metadata?["album_title"]?.stringValue == "Beach Day")
        #expect(beach.metadata?["vist_label"]?.stringValue == "beach")
        let graduation = collection.entries[1]
        #expect(graduation.panels.map(\.image) == ["3550000001.jpg", "3550000002.JPG"])
        #expect(graduation.warnings.isEmpty)
    }

    @Test func missingPhotoIsAWarningNotAFailure() throws {
        let beach = try #require(try sis().entries.first)
        #expect(beach.panels[3].image == nil)
        #expect(beach.warnings == ["panel 4: image 2650000004 not found in images/"])
    }

    @Test func originalTextOption() throws {
        let beach = try #require(try sis(useOriginalText: true).entries.first)
        #expect(beach.panels.first?.text == "Our family went to the beach for the Fourth.")
        #expect(beach.panels.first?.metadata?["text"]?.stringValue == "our family went to the beach for the fourth .")
    }

    @Test func limitKeepsTheFirstStories() throws {
        #expect(try sis(limit: 1).entries.map(\.id) == ["45530"])
    }

    @Test func diiGroupsRunsOfOneAlbumByPhotoOrder() throws {
        let collection = try VISTImporter.load(.init(
            annotations: try ImporterFixtures.url("val.description-in-isolation.json"), images: try imagesFolder(),
            tier: .descriptionsInIsolation))
        #expect(collection.entries.map(\.id) == ["72157606041235212-1", "72157606041235212-2", "72157619028363471-1"])
        #expect(collection.entries.map(\.panels.count) == [3, 2, 1])
        #expect(collection.entries[1].panels.map(\.text) == ["a sandcastle on the beach .", "a man asleep under an umbrella ."])
        #expect(collection.entries[1].warnings == ["panel 2: image 2650000004 not found in images/"])
        #expect(collection.entries[0].metadata?["source"]?.stringValue == "vist-dii")
    }

    @Test func tierMismatchIsNamed() throws {
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: try ImporterFixtures.url("val.description-in-isolation.json"),
                                        images: try imagesFolder(), tier: .storyInSequence))
        }
        #expect(error?.description.contains("val.description-in-isolation.json") == true)
        #expect(error?.description.contains("import it as vist-dii") == true)
    }

    @Test func malformedJSONGivesLineAndColumn() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("{\"type\": \"story_in_sequence\",\n \"annotations\": [\n   [{\"story_id\": \"1\" \"text\": \"x\"}]\n]}\n",
                                              to: "bad.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.file == file.path)
        #expect(error?.line == 3)
        #expect(error?.description.contains("malformed JSON at line 3, column 22") == true)
    }

    @Test func truncatedJSONPointsAtTheEnd() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("{\"annotations\": [\n[{\"story_id\": \"1\"", to: "cut.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.line == 2)
        #expect(error?.description.contains("end of file") == true)
    }

    @Test func wrongTopLevelTypeIsNamed() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("[[{\"story_id\": \"1\"}]]", to: "list.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.description == "\(file.path): the top level: expected an object, found a list")
    }

    @Test func missingKeyNamesTheAnnotation() throws {
        let dir = try ImporterFixtures.tempDir()
        let good = "[{\"story_id\": \"7\", \"photo_flickr_id\": \"1\", \"worker_arranged_photo_order\": 0, \"text\": \"a\"}]"
        let bad = "[{\"photo_flickr_id\": \"2\", \"worker_arranged_photo_order\": 1, \"text\": \"b\"}]"
        let file = try ImporterFixtures.write("{\"annotations\": [\(good), \(bad)]}", to: "nokey.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.description.contains("missing key \"story_id\" in annotations[1][0]") == true)

        let typed = try ImporterFixtures.write("{\"annotations\": [[{\"story_id\": \"7\", \"worker_arranged_photo_order\": \"first\"}]]}",
                                               to: "typed.json", in: dir)
        let typeError = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: typed, images: try imagesFolder()))
        }
        #expect(typeError?.description.contains("annotations[0][0].worker_arranged_photo_order: expected an integer, found a string") == true)
    }

    @Test func fractionalOrderIsExplained() throws {
        let dir = try ImporterFixtures.tempDir()
        let file = try ImporterFixtures.write("{\"annotations\": [[{\"story_id\": \"7\", \"worker_arranged_photo_order\": 1.5}]]}",
                                              to: "fraction.json", in: dir)
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: file, images: try imagesFolder()))
        }
        #expect(error?.description.contains("fraction.json: valid JSON, but a value could not be decoded") == true)
    }

    @Test func missingImagesFolderIsAnError() throws {
        let nowhere = try ImporterFixtures.tempDir().appendingPathComponent("no-such-folder")
        let error = #expect(throws: CollectionError.self) {
            try VISTImporter.load(.init(annotations: try ImporterFixtures.url("val.story-in-sequence.json"), images: nowhere))
        }
        #expect(error?.description.contains("no-such-folder: images folder not found") == true)
    }

    /// Sanity check on speed: 1,000 five-panel stories (5,000 annotations) in the real SIS layout.
    /// The time is printed, not asserted, since the test machines are shared.
    @Test func fiveThousandAnnotationsImportQuickly() throws {
        let dir = try ImporterFixtures.tempDir()
        var annotations: [String] = []
        annotations.reserveCapacity(5000)
        for story in 0..<1000 {
            for order in [2, 0, 1, 4, 3] {
                let photo = 5_000_000 + story * 5 + order
                annotations.append("""
                [{"original_text": "Sentence \(order) of story \(story).", "album_id": "\(720000 + story / 4)", \
                "photo_flickr_id": "\(photo)", "setting": "first-2-pick-and-tell", "worker_id": "W\(story % 97)", \
                "story_id": "\(story)", "tier": "story-in-sequence", "worker_arranged_photo_order": \(order), \
                "text": "sentence \(order) of story \(story) .", "storylet_id": "\(story * 5 + order)"}]
                """)
            }
        }
        let text = "{\"images\": [], \"info\": {}, \"albums\": [], \"type\": \"story_in_sequence\", \"annotations\": [\n"
            + annotations.joined(separator: ",\n") + "\n]}"
        let file = try ImporterFixtures.write(text, to: "train.story-in-sequence.json", in: dir)
        let images = dir.appendingPathComponent("images")
        // Photos of the first 100 stories only: creating files is slow on shared disks, and the rest
        // exercise the missing-photo path.
        try ImporterFixtures.touch((0..<500).map { "\(5_000_000 + $0).jpg" }, in: images)

        let clock = ContinuousClock()
        var collection: StoryCollection?
        let elapsed = try clock.measure {
            collection = try VISTImporter.load(.init(annotations: file, images: images))
        }
        let entries = try #require(collection).entries
        print("VIST SIS import: 5000 annotations, \(entries.count) stories, \(text.utf8.count / 1024) KiB JSON, 500 images indexed: \(elapsed)")
        #expect(entries.count == 1000)
        #expect(entries.allSatisfy { $0.panels.count == 5 })
        #expect(entries[7].panels.map(\.text).first == "sentence 0 of story 7 .")
        #expect(entries[99].warnings.isEmpty)
        #expect(entries[100].warnings.count == 5)
    }
}
