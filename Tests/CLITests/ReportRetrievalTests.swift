import Foundation
import HTMLInspection
import Testing

/// The run report's samples of a `retrieve` step show the retrieved panels, like the entry pages do.
@Suite struct ReportRetrievalTests {
    @Test("every image of the report resolves to a file, and retrieve's samples show thumbnails, not empty boxes")
    func retrievedThumbnails() throws {
        let cli = try CLI()
        let examples = CLI.repository.appendingPathComponent("Examples/StoryWorld")
        try cli.write("""
            name: retrieval
            collection:
              path: \(examples.appendingPathComponent("sample").path)
              limit: 3
            models:
              clip: {kind: clip, path: \(examples.appendingPathComponent("models/clip").path)}
            steps:
              - id: image_emb
                use: embed
                model: clip
                inputs: {image: image}
              - id: text_emb
                use: embed
                model: clip
                inputs: {text: text}
              - id: retrieved
                use: retrieve
                inputs: {query: text_emb.text_embedding, pool: image_emb.image_embedding}
                params: {k: 3}
            """, to: "wf.yaml")
        let run = try cli.run(["run", "wf.yaml", "--store", "store", "--quiet", "--threads", "1"])
        #expect(run.status == 0, "\(run.stderr)")
        let folder = cli.root.appendingPathComponent("galleries/retrieval")
        let reportURL = folder.appendingPathComponent("report.html")
        let report = try HTMLInspector(path: reportURL.path)

        let section = "//section[@data-step='retrieved']"
        #expect(report.count(section) == 1)
        #expect(report.count("\(section)//ol[@class='ranked']") == 4)          // four samples …
        #expect(report.count("\(section)//ol[@class='ranked']//img") == 4 * 3)  // … of three retrieved panels each
        #expect(report.count("\(section)//*[contains(concat(' ', @class, ' '), ' missing ')]") == 0,
                "retrieve's samples show empty placeholders")
        let sources = report.values("//img/@src")
        #expect(!sources.isEmpty)
        for src in sources {
            #expect(!src.hasPrefix("/") && !src.contains("://"), "absolute image source \(src)")
            let file = reportURL.deletingLastPathComponent().appendingPathComponent(src).standardizedFileURL
            #expect(file.path.hasPrefix(folder.standardizedFileURL.path + "/"), "\(src) leaves the gallery")
            #expect(FileManager.default.fileExists(atPath: file.path), "\(src) in report.html does not exist")
        }
        // The entry pages show the same retrieved panels: the report's thumbnails are among theirs.
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("entries").path)
            .filter { $0.hasSuffix(".html") }
        var entrySources = Set<String>()
        for page in entries {
            let html = try HTMLInspector(path: folder.appendingPathComponent("entries/\(page)").path)
            entrySources.formUnion(html.values("//ol[@class='ranked']//img/@src").map { String($0.dropFirst(3)) })   // "../"
        }
        let reportRanked = Set(report.values("\(section)//ol[@class='ranked']//img/@src"))
        #expect(!reportRanked.isEmpty && reportRanked.isSubset(of: entrySources))
    }
}
