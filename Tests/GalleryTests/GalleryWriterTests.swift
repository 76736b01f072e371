import Foundation
import Store
import HTMLInspection
import Testing
@testable import Gallery

/// Renders the sample document and inspects the folder through libxml2's DOM.
@Suite struct GalleryWriterTests {
    /// Every page of a rendered gallery: root pages and entry pages.
    static func pages(in folder: URL) throws -> [URL] {
        let entries = folder.appendingPathComponent("entries")
        let names = try FileManager.default.contentsOfDirectory(atPath: entries.path).sorted()
        return [folder.appendingPathComponent("index.html"), folder.appendingPathComponent("report.html")]
            + names.map { entries.appendingPathComponent($0) }
    }

    @Test func everyLinkResolvesInsideTheFolder() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let folder = temp.appendingPathComponent("gallery")
        let document = try SampleGallery(sourceFolder: temp.appendingPathComponent("src")).document()
        let index = try GalleryWriter.write(document, to: folder)
        #expect(index.lastPathComponent == "index.html")
        let root = folder.standardizedFileURL.resolvingSymlinksInPath().path + "/"
        var checked = 0
        var images = 0
        for page in try Self.pages(in: folder) {
            let html = try HTMLInspector(path: page.path)
            images += html.count("//img")
            for link in html.values("//img/@src | //a/@href | //link/@href | //script/@src") {
                #expect(!link.contains(":"), "\(page.lastPathComponent): \(link) has a scheme")
                #expect(!link.hasPrefix("/"), "\(page.lastPathComponent): \(link) is absolute")
                let path = String(link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0])
                if path.isEmpty { continue }  // same-page anchor
                let target = page.deletingLastPathComponent().appendingPathComponent(path)
                    .standardizedFileURL.resolvingSymlinksInPath().path
                #expect(target.hasPrefix(root), "\(page.lastPathComponent): \(link) leaves the folder")
                #expect(FileManager.default.fileExists(atPath: target), "\(page.lastPathComponent): \(link) is broken")
                checked += 1
            }
        }
        // 7 entries × (index card + page) and report samples: far more than a vacuous pass.
        #expect(checked > 150)
        #expect(images > 60)
        // Media files are real files (hard links or copies), never symbolic links.
        let media = folder.appendingPathComponent("media")
        for name in try FileManager.default.contentsOfDirectory(atPath: media.path) {
            let attributes = try FileManager.default.attributesOfItem(atPath: media.appendingPathComponent(name).path)
            #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        }
    }

    @Test func hostileTextStaysText() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let benignFolder = temp.appendingPathComponent("benign")
        let hostileFolder = temp.appendingPathComponent("hostile")
        let benign = try SampleGallery(sourceFolder: temp.appendingPathComponent("src"), hostile: false).document()
        let hostile = try SampleGallery(sourceFolder: temp.appendingPathComponent("src"), hostile: true).document()
        _ = try GalleryWriter.write(benign, to: benignFolder)
        _ = try GalleryWriter.write(hostile, to: hostileFolder)
        let benignPages = try Self.pages(in: benignFolder)
        let hostilePages = try Self.pages(in: hostileFolder)
        try #require(benignPages.count == hostilePages.count)
        for (clean, dirty) in zip(benignPages, hostilePages) {
            let cleanPage = try HTMLInspector(path: clean.path)
            let page = try HTMLInspector(path: dirty.path)
            let name = dirty.lastPathComponent
            // Payloads create no element and no attribute: the DOM has the same shape as the benign one.
            #expect(page.structure == cleanPage.structure, "\(name): payload changed the DOM")
            #expect(page.count("//@*[starts-with(name(), 'on')]") == 0, "\(name): event handler attribute")
            #expect(page.count("//img[@src='x']") == 0)
            #expect(page.values("//script/@src").count == 1)
            #expect(page.count("//script") == 1)
            #expect(page.values("//script").joined().isEmpty)
            #expect(page.values("//script/@src").allSatisfy { $0.hasSuffix("assets/gallery.js") })
            // ...and every payload is in the text, literally (entities included, not decoded twice).
            for payload in SampleGallery.payloads {
                #expect(page.text.contains(payload), "\(name): \(payload) missing from text")
            }
        }
        // Attribute values round-trip exactly: the index's data-id is the hostile id itself.
        let index = try HTMLInspector(path: hostileFolder.appendingPathComponent("index.html").path)
        #expect(index.values("//article/@data-id") == hostile.entries.map(\.id))
        let report = try HTMLInspector(path: hostileFolder.appendingPathComponent("report.html").path)
        let param = try #require(hostile.report.steps.first?.params.first)
        #expect(report.values("//table[@class='params']//th").contains(param.name))
        #expect(report.values("//table[@class='params']//code").contains(param.value))
    }

    @Test func indexListsEveryEntryWithScores() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let folder = temp.appendingPathComponent("gallery")
        let document = try SampleGallery(sourceFolder: temp.appendingPathComponent("src")).document()
        _ = try GalleryWriter.write(document, to: folder)
        let index = try HTMLInspector(path: folder.appendingPathComponent("index.html").path)
        let cards = index.select("//article[contains(@class, 'entry-card')]")
        #expect(cards.map { $0.attributes["data-id"] ?? "" } == document.entries.map(\.id))
        #expect(index.values("//a[@class='entry-link']") == document.entries.map(\.id))
        let links = index.values("//a[@class='entry-link']/@href")
        #expect(Set(links).count == document.entries.count)
        for (card, entry) in zip(cards, document.entries) {
            let json = try #require(card.attributes["data-scores"]?.data(using: .utf8))
            // JSONDecoder, not JSONSerialization: the latter rounds the last digit on Linux.
            let object = try JSONDecoder().decode([String: Double?].self, from: json)
            #expect(Set(object.keys) == Set(entry.scores.keys))
            for (name, value) in entry.scores {
                #expect(object[name] == .some(value.isFinite ? value : nil), "\(entry.id) \(name)")
            }
            #expect(card.attributes["data-search"]?.contains(entry.panels.last?.text.lowercased() ?? "?") == true)
        }
        let scoreNames = Set(document.entries.flatMap(\.scores.keys)).sorted()
        #expect(index.values("//select[@id='sort']/option/@value") == ["", "id"] + scoreNames.map { "score:" + $0 })
        // Failures are marked: story/002 has a failed GILL cell.
        let failed = index.select("//article[contains(@class, 'failed')]").map { $0.attributes["data-id"] ?? "" }
        #expect(failed == ["story/002"])
        // Scores are shown as numbers: 3 decimals, NaN as a dash, infinity as ∞.
        let badges = index.values("//article[@data-id='物語-004']//span[@class='badge-value']")
        #expect(badges.contains("—"))
        #expect(index.values("//article[@data-id='../../etc/passwd']//span[@class='badge-value']").contains("∞"))
        #expect(index.values("//article[@data-id='story-001']//span[@class='badge-value']").contains("0.520"))
        // Thumbnails: ground truth first, then each image column that has an image for some entry.
        let captions = index.values("//article[@data-id='story-001']//figure/figcaption")
        #expect(captions == ["ground truth", "SD · last caption", "SD · all captions", "GILL · captions",
                             "GILL · captions + images", "Retrieved"])
    }

    @Test func entryPageShowsPanelsColumnsAndProblems() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let folder = temp.appendingPathComponent("gallery")
        let document = try SampleGallery(sourceFolder: temp.appendingPathComponent("src")).document()
        _ = try GalleryWriter.write(document, to: folder)
        let names = SafeName.entryNames(document.entries.map(\.id))
        let first = try HTMLInspector(path: folder.appendingPathComponent("entries/\(names[0]).html").path)
        #expect(first.count("//article[@class='panel-row']") == 5)
        #expect(first.values("//article[@id='panel-5']//figcaption[@class='cell-label']")
            == ["ground truth", "SD · last caption", "Caption"])
        // A cell under a column id the document does not declare is still shown, labelled by its id.
        #expect(first.values("//article[@id='panel-2']//figcaption[@class='cell-label']")
            == ["ground truth", "Caption", "extra.column"])
        #expect(first.values("//section[@class='outputs']//figcaption[@class='cell-label']")
            == ["SD · all captions", "GILL · captions", "GILL · captions + images", "Retrieved", "Decision",
                "CLIP similarity"])
        #expect(first.values("//ol[@class='ranked']/li/span[@class='ranked-id']") == ["img-0-0", "img-0-1", "img-0-2"])
        #expect(first.values("//ol[@class='ranked']//span[@class='badge-value']") == ["0.900", "0.750", "0.600"])
        #expect(first.values("//span[@class='probability']") == ["p = 50.0 %"])
        #expect(first.values("//nav[@class='pager']/a[@rel='next']/@href").first == names[1] + ".html")
        #expect(first.count("//nav[@class='pager']/a[@rel='prev']") == 0)

        let failing = try HTMLInspector(path: folder.appendingPathComponent("entries/\(names[1]).html").path)
        #expect(failing.values("//section[@id='problems']//li")
            == ["GILL · captions + images: out of memory in UNet block 3"])
        // The missing ground-truth image is a visible placeholder, not a broken <img>.
        let missing = try HTMLInspector(path: folder.appendingPathComponent("entries/\(names[2]).html").path)
        #expect(missing.values("//article[@id='panel-3']//div[contains(@class, 'missing')]/span") == ["missing image"])
        #expect(missing.count("//article[@id='panel-3']//figure[contains(@class,'ground-truth')]//img") == 0)
        #expect(missing.values("//section[@id='problems']//li").first == "import warning: panel 3 image not found")

        let dialogue = try HTMLInspector(path: folder.appendingPathComponent("entries/\(names[6]).html").path)
        #expect(dialogue.values("//ol[@class='dialogue']/li/div[contains(@class,'question')]")
            == ["Q Is there a house?", "Q What colour is it?", "Q Is it night?"])
        #expect(dialogue.values("//ol[@class='dialogue']/li/div[contains(@class,'answer')]")
            == ["A Yes, a small one.", "A Red.", "A No, it is day."])
        #expect(dialogue.count("//nav[@class='pager']/a[@rel='next']") == 0)
    }

    @Test func collidingIdsGetDistinctPages() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let ids = ["a/b", "a b", "A-B", "a..b", "a/b", "<a>b", "", "..", "/"]
        let document = GalleryDocument(
            title: "collisions", workflowName: "w", generatedAt: "now", columns: [],
            entries: ids.map { GalleryEntry(id: $0, kind: "story", panels: [GalleryPanel(index: 1, text: $0, groundTruth: nil)]) },
            report: RunReport(startedAt: "now", seconds: 0, status: "ok", steps: []))
        let folder = temp.appendingPathComponent("g")
        _ = try GalleryWriter.write(document, to: folder)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("entries").path)
        #expect(files.count == ids.count)
        #expect(files.allSatisfy { $0.range(of: "^[a-z0-9-]+\\.html$", options: .regularExpression) != nil })
        let index = try HTMLInspector(path: folder.appendingPathComponent("index.html").path)
        let links = index.values("//a[@class='entry-link']/@href")
        #expect(Set(links).count == ids.count)
        #expect(Set(links) == Set(files.map { "entries/" + $0 }))
        // Each page is the page of its own entry.
        for (link, id) in zip(links, ids) {
            let page = try HTMLInspector(path: folder.appendingPathComponent(link).path)
            #expect(page.values("//h1") == [id])
        }
    }

    @Test func rerenderRemovesStalePagesAndMedia() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let folder = temp.appendingPathComponent("gallery")
        var document = try SampleGallery(sourceFolder: temp.appendingPathComponent("src")).document()
        _ = try GalleryWriter.write(document, to: folder)
        let entriesFolder = folder.appendingPathComponent("entries")
        let mediaFolder = folder.appendingPathComponent("media")
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: entriesFolder.path))
        let mediaBefore = try FileManager.default.contentsOfDirectory(atPath: mediaFolder.path).count
        #expect(before.count == 7)

        let removed = document.entries.remove(at: 1)
        document.entries.removeLast()
        _ = try GalleryWriter.write(document, to: folder)
        let after = Set(try FileManager.default.contentsOfDirectory(atPath: entriesFolder.path))
        #expect(after == Set(SafeName.entryNames(document.entries.map(\.id)).map { $0 + ".html" }))
        #expect(after.count == 5)
        #expect(!after.contains(SafeName.entryName(removed.id) + ".html"))
        #expect(after.isSubset(of: before))
        // The removed story's and dialogue's own images are gone too; shared files stay.
        let mediaAfter = try FileManager.default.contentsOfDirectory(atPath: mediaFolder.path).count
        #expect(mediaAfter < mediaBefore)
        let index = try HTMLInspector(path: folder.appendingPathComponent("index.html").path)
        #expect(index.values("//article/@data-id") == document.entries.map(\.id))
    }

    @Test func refusesForeignFoldersAndFiles() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let document = GalleryDocument(title: "t", workflowName: "w", generatedAt: "now", columns: [], entries: [],
                                       report: RunReport(startedAt: "now", seconds: 0, status: "ok", steps: []))
        let foreign = temp.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: foreign.appendingPathComponent("notes.txt"))
        let error = try #require(throws: GalleryError.self) { try GalleryWriter.write(document, to: foreign) }
        #expect(error.message.contains(foreign.path))
        #expect(error.message.contains("not a Storyloom gallery"))
        #expect(FileManager.default.fileExists(atPath: foreign.appendingPathComponent("notes.txt").path))

        let file = temp.appendingPathComponent("plain-file")
        try Data().write(to: file)
        let fileError = try #require(throws: GalleryError.self) { try GalleryWriter.write(document, to: file) }
        #expect(fileError.message.contains("is not a folder"))

        // An empty gallery still renders, and a second render into it is accepted.
        let empty = temp.appendingPathComponent("empty")
        _ = try GalleryWriter.write(document, to: empty)
        _ = try GalleryWriter.write(document, to: empty)
        let index = try HTMLInspector(path: empty.appendingPathComponent("index.html").path)
        #expect(index.count("//article") == 0)
    }

    @Test func mediaIsNamedByHashAndCopiedOnce() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let source = temp.appendingPathComponent("photo.PNG")
        try Data([1, 2, 3, 4]).write(to: source)
        let link = temp.appendingPathComponent("link.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: source)
        let hashed = MediaFile(path: source.path, hash: "ABCDEF0123456789")
        let byPath = MediaFile(path: source.path)
        let viaLink = MediaFile(path: link.path, hash: "../../escape")
        let entry = GalleryEntry(id: "e", kind: "story", panels: [
            GalleryPanel(index: 1, text: "one", groundTruth: hashed),
            GalleryPanel(index: 2, text: "two", groundTruth: byPath),
            GalleryPanel(index: 3, text: "three", groundTruth: viaLink),
            GalleryPanel(index: 4, text: "four", groundTruth: hashed),
        ])
        let document = GalleryDocument(title: "t", workflowName: "w", generatedAt: "now", columns: [], entries: [entry],
                                       report: RunReport(startedAt: "now", seconds: 0, status: "ok", steps: []))
        let folder = temp.appendingPathComponent("g")
        _ = try GalleryWriter.write(document, to: folder)
        let media = folder.appendingPathComponent("media")
        let names = try FileManager.default.contentsOfDirectory(atPath: media.path).sorted()
        let pathName = String(Hashing.sha256Hex(source.path).prefix(32)) + ".png"
        let linkName = String(Hashing.sha256Hex(link.path).prefix(32)) + ".png"
        #expect(names == ["abcdef0123456789.png", pathName, linkName].sorted())
        for name in names {
            #expect(try Data(contentsOf: media.appendingPathComponent(name)) == Data([1, 2, 3, 4]))
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: media.appendingPathComponent(name).path)) == nil)
        }
        let page = try HTMLInspector(path: folder.appendingPathComponent("entries/\(SafeName.entryName("e")).html").path)
        #expect(page.values("//figure[contains(@class,'ground-truth')]//img/@src")
            == ["../media/abcdef0123456789.png", "../media/" + pathName, "../media/" + linkName,
                "../media/abcdef0123456789.png"])
    }
}

@Suite struct MediaRefreshTests {
    @Test func pathNamedMediaIsReplacedWhenTheSourceChanges() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let source = temp.appendingPathComponent("panel.png")
        try Data([1]).write(to: source)
        let entry = GalleryEntry(id: "e", kind: "story",
                                 panels: [GalleryPanel(index: 1, text: "t", groundTruth: MediaFile(path: source.path))])
        let document = GalleryDocument(title: "t", workflowName: "w", generatedAt: "now", columns: [], entries: [entry],
                                       report: RunReport(startedAt: "now", seconds: 0, status: "ok", steps: []))
        let folder = temp.appendingPathComponent("g")
        _ = try GalleryWriter.write(document, to: folder)
        // A new file at the same path (as a rewritten collection image would be).
        try FileManager.default.removeItem(at: source)
        try Data([2, 2]).write(to: source)
        _ = try GalleryWriter.write(document, to: folder)
        let copied = folder.appendingPathComponent("media/" + SafeName.mediaName(MediaFile(path: source.path)))
        #expect(try Data(contentsOf: copied) == Data([2, 2]))
        // The source disappears: the page says so and the stale copy is removed.
        try FileManager.default.removeItem(at: source)
        _ = try GalleryWriter.write(document, to: folder)
        #expect(!FileManager.default.fileExists(atPath: copied.path))
        let page = try HTMLInspector(path: folder.appendingPathComponent("entries/\(SafeName.entryName("e")).html").path)
        #expect(page.count("//img") == 0)
        #expect(page.values("//div[contains(@class,'missing')]/span") == ["missing image"])
    }
}

/// A generated continuation (gill-story's sequence) on its entry page.
@Suite struct SequenceRenderingTests {
    @Test("a sequence sits right after the last panel its step read, text escaped, each image with its decision and candidates")
    func continuationAfterItsPanels() throws {
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let sample = SampleGallery(sourceFolder: temp.appendingPathComponent("src"))
        var document = try sample.document()
        let shown = try sample.image("seq-shown", seed: 91), other = try sample.image("seq-other", seed: 92)
        let hostile = "<script>alert('x')</script> & the ball rolls on."
        document.entries[0].cells["gill.story"] = .sequence([
            .text(hostile),
            .image(shown, decision: "generate", probability: 0.8,
                   scores: [SequenceScore(name: "p_generate", value: 0.8), SequenceScore(name: "generated_score", value: 0.3)],
                   alternatives: [SequenceAlternative(label: "generated", image: shown, score: 0.3),
                                  SequenceAlternative(label: "retrieved story-9#2", image: other, score: 7.5)]),
        ], afterPanel: 4)
        document.entries[1].cells["gill.story"] = .sequence([.text("no panels known")], afterPanel: nil)
        let folder = temp.appendingPathComponent("gallery")
        _ = try GalleryWriter.write(document, to: folder)
        var placed = 0, trailing = 0
        for page in try GalleryWriterTests.pages(in: folder) where page.deletingLastPathComponent().lastPathComponent == "entries" {
            let html = try HTMLInspector(path: page.path)
            if html.count("//article[@class='continuation']") == 0 { continue }
            if html.values("//p[@class='seq-text']").contains(hostile) {
                // Right after panel 4, before panel 5; the payload is text, not a script element.
                #expect(html.count("//article[@id='panel-4']/following-sibling::*[1][@class='continuation']") == 1)
                #expect(html.count("//script[contains(., 'alert')]") == 0)
                #expect(html.values("//figure[@class='seq-image']//span[@class='choice']") == ["generate"])
                #expect(html.count("//figure[@class='seq-image']//ol[@class='ranked']/li") == 2)
                #expect(html.count("//section[@class='outputs']//div[@class='sequence']") == 0)
                placed += 1
            } else if html.values("//p[@class='seq-text']") == ["no panels known"] {
                #expect(html.count("//section[@class='continuations']/article[@class='continuation']") == 1)
                trailing += 1
            }
        }
        #expect(placed == 1 && trailing == 1)
    }
}
