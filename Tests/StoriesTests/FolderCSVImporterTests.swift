import Foundation
import Testing
@testable import Stories

@Suite struct FolderCSVImporterTests {
    /// A copy of `captions.csv` in a scratch folder with frames a, b and c (not `missing.png`).
    func folder(csv: String? = nil) throws -> (csv: URL, root: URL) {
        let dir = try ImporterFixtures.tempDir()
        try ImporterFixtures.touch(["frames/a.png", "frames/b.png", "frames/c.jpg"], in: dir)
        let text = try csv ?? String(contentsOf: try ImporterFixtures.url("captions.csv"), encoding: .utf8)
        return (try ImporterFixtures.write(text, to: "captions.csv", in: dir), dir)
    }

    @Test func groupsStoriesOrdersPanelsAndReadsQuotedFields() throws {
        let (csv, root) = try folder()
        let collection = try FolderCSVImporter.load(.init(csv: csv))
        #expect(collection.root.path == root.standardizedFileURL.path)
        #expect(collection.entries.map(\.id) == ["s1", "s2"])
        let s1 = collection.entries[0]
        #expect(s1.panels.map(\.image) == ["frames/a.png", "frames/b.png", "frames/missing.png"])
        #expect(s1.panels.map(\.text) == ["A red ball\nsits on the grass.", "Then, it rolled \"far\" away.", "It stopped."])
        #expect(s1.panels.map { $0.metadata?["mood"]?.stringValue } == ["happy", "calm", "sad"])
        #expect(s1.warnings == ["panel 3: image frames/missing.png not found in \(root.lastPathComponent)/"])
        #expect(collection.entries[1].panels == [Panel(image: "frames/c.jpg", text: "A tall tree.", metadata: .object(["mood": .string("calm")]))])
    }

    @Test func withoutStoryColumnEachRowIsAStory() throws {
        let (csv, _) = try folder(csv: "image,text\nframes/a.png,\"one, two\"\n\nframes/b.png,three\n")
        let collection = try FolderCSVImporter.load(.init(csv: csv))
        #expect(collection.entries.map(\.id) == ["row-1", "row-3"])
        #expect(collection.entries.map { $0.panels.map(\.text) } == [["one, two"], ["three"]])
    }

    @Test func configurableColumnsAndDelimiter() throws {
        let (csv, _) = try folder(csv: "file;caption;scene\nframes/c.jpg;A tree;x\nframes/a.png;A ball;x\n")
        let collection = try FolderCSVImporter.load(.init(csv: csv, imageColumn: "file", textColumn: "caption",
                                                          storyColumn: .required("scene"), delimiter: ";"))
        #expect(collection.entries.map(\.id) == ["x"])
        #expect(collection.entries[0].panels.map(\.text) == ["A tree", "A ball"])
    }

    @Test func missingColumnListsTheColumnsFound() throws {
        let (csv, _) = try folder(csv: "picture,text\nframes/a.png,hi\n")
        let error = #expect(throws: CollectionError.self) { try FolderCSVImporter.load(.init(csv: csv)) }
        #expect(error?.description == "\(csv.path):1: no image column \"image\"; columns found: \"picture\", \"text\"")
        let (csv2, _) = try folder(csv: "image,text\nframes/a.png,hi\n")
        let grouping = #expect(throws: CollectionError.self) {
            try FolderCSVImporter.load(.init(csv: csv2, storyColumn: .required("album")))
        }
        #expect(grouping?.description.contains("no story column \"album\"; columns found: \"image\", \"text\"") == true)
    }

    @Test func pathsLeavingTheFolderAreRejectedUnlessAllowed() throws {
        let (csv, _) = try folder(csv: "image,text\nframes/a.png,ok\n\"../secret.png\",\"multi\nline\"\n/etc/passwd,abs\n")
        let error = #expect(throws: CollectionError.self) { try FolderCSVImporter.load(.init(csv: csv)) }
        #expect(error?.line == 3)
        #expect(error?.description.contains("image path \"../secret.png\" leaves the images folder") == true)
        #expect(error?.description.contains("set allow_outside_root: true under the workflow's collection: to permit") == true)
        let allowed = try FolderCSVImporter.load(.init(csv: csv, allowOutsideRoot: true))
        #expect(allowed.entries.map { $0.panels.first?.image } == ["frames/a.png", "../secret.png", "/etc/passwd"])
        #expect(allowed.entries[2].warnings.isEmpty)
        #expect(allowed.entries[1].warnings.count == 1)
    }

    @Test func badOrderNamesTheLine() throws {
        let (csv, _) = try folder(csv: "story,order,image,text\na,1,frames/a.png,\"two\nlines\"\na,second,frames/b.png,x\n")
        let error = #expect(throws: CollectionError.self) { try FolderCSVImporter.load(.init(csv: csv)) }
        #expect(error?.description == "\(csv.path):4: column \"order\": expected an integer, found \"second\"")
    }

    @Test func unclosedQuoteIsAnError() throws {
        let (csv, _) = try folder(csv: "image,text\nframes/a.png,fine\nframes/b.png,\"never closed\nframes/c.jpg,x\n")
        let error = #expect(throws: CollectionError.self) { try FolderCSVImporter.load(.init(csv: csv)) }
        #expect(error?.description == "\(csv.path):3: malformed CSV: quoted field opened on line 3 is never closed")
    }

    @Test func emptyImageCellIsAWarning() throws {
        let (csv, _) = try folder(csv: "image,text\n,no picture\n")
        let entry = try #require(try FolderCSVImporter.load(.init(csv: csv)).entries.first)
        #expect(entry.panels == [Panel(image: nil, text: "no picture")])
        #expect(entry.warnings == ["panel 1: no image given (line 2)"])
    }
}
