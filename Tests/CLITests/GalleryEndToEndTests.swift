import Foundation
import Gallery
import HTMLInspection
import Imaging
import Testing

/// A real run through the CLI: images, a failing item and hostile text in captions and ids, then the
/// gallery parsed the way a browser would.
@Suite struct GalleryEndToEndTests {
    @Test func galleryOfARealRunIsSelfContainedAndEscaped() throws {
        let cli = try CLI()
        let hostile = "<script>alert(1)</script>\\\"><img src=x onerror=alert(2)>"
        var lines: [String] = []
        try FileManager.default.createDirectory(at: cli.root.appendingPathComponent("collection/images"), withIntermediateDirectories: true)
        for i in 1...3 {
            var panels: [String] = []
            for p in 1...2 {
                var px = [UInt8]()
                for y in 0..<32 { for x in 0..<32 { px += [UInt8((x * 8 + i * 40) % 256), UInt8(y * 8), UInt8(p * 100)] } }
                try Image(width: 32, height: 32, channels: 3, pixels: px)
                    .write(to: cli.root.appendingPathComponent("collection/images/\(i)-\(p).png"))
                panels.append("{\"image\":\"images/\(i)-\(p).png\",\"text\":\"Panel \(p) \(i == 2 ? hostile : "calm").\"}")
            }
            let id = i == 3 ? "s3 \(hostile)" : "s\(i)"
            lines.append("{\"id\":\"\(id)\",\"kind\":\"story\",\"panels\":[\(panels.joined(separator: ","))]}")
        }
        try cli.write(lines.joined(separator: "\n") + "\n", to: "collection/collection.jsonl")
        try cli.write("""
            name: e2e
            description: "About \(hostile)"
            collection: collection
            steps:
              - id: small
                use: thumbnail
                inputs: {image: image}
                params: {width: 16, height: 16}
              - id: ssim
                use: score
                inputs: {a: image, b: small}
                params: {metric: psnr}
              - id: picky
                use: command
                scope: entry
                params: {run: [sh, -c, 'case "$1" in s1) echo ok;; *) echo "refused $1" >&2; exit 2;; esac', sh, "{item}"]}
            gallery:
              title: "E2E \(hostile)"
              charts:
                - {title: "PSNR by setting \(hostile)", y: dB, x: [full, "none \(hostile)"], series: {psnr: [ssim.score, ~]}}
            """, to: "wf.yaml")
        let run = try cli.run(["run", "wf.yaml", "--store", "store/db", "--quiet"])
        #expect(run.status == 1)                          // two items of `picky` failed
        #expect(run.stdout.contains("picky          ran 3, cached 0, failed 2"))
        let folder = cli.root.appendingPathComponent("store/galleries/e2e")
        let pages = try FileManager.default.subpathsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".html") }
        #expect(pages.count == 5)                         // index, report, three entries
        var images = 0
        for page in pages {
            let url = folder.appendingPathComponent(page)
            let html = try HTMLInspector(path: url.path)
            for link in html.values("//img/@src") + html.values("//a/@href") + html.values("//link/@href") + html.values("//script/@src") {
                let target = link.split(separator: "#", omittingEmptySubsequences: false).first.map(String.init) ?? ""
                if target.isEmpty { continue }
                #expect(!target.hasPrefix("/") && !target.contains("://"), "absolute link \(target) in \(page)")
                let resolved = url.deletingLastPathComponent().appendingPathComponent(target).standardizedFileURL.path
                #expect(resolved.hasPrefix(folder.standardizedFileURL.path + "/"), "\(target) leaves the gallery")
                #expect(FileManager.default.fileExists(atPath: resolved), "\(target) in \(page) does not exist")
            }
            images += html.count("//img")
            #expect(html.count("//*[@onerror]") == 0)
            #expect(html.values("//script").allSatisfy { !$0.contains("alert") })
        }
        #expect(images >= 3 * 2 * 2)                      // ground truth and thumbnail of every panel
        let index = try HTMLInspector(path: folder.appendingPathComponent("index.html").path)
        #expect(index.text.contains("s3 <script>alert(1)</script>"))
        #expect(index.values("//p[@class='about']").contains { $0.hasPrefix("About <script>alert(1)</script>\"><img") })
        let failed = try pages.filter { $0.hasPrefix("entries/") }.map { try HTMLInspector(path: folder.appendingPathComponent($0).path) }
            .filter { $0.text.contains("refused") }
        #expect(failed.count == 2)                        // the failure and its stderr are on the entry pages
        let report = try HTMLInspector(path: folder.appendingPathComponent("report.html").path)
        #expect(report.text.contains("refused s2"))
        #expect(report.count("//svg") >= 1)               // the score distribution chart
        // The workflow's chart leads the index and closes the report: one point, the mean of ssim.score.
        let summary = try cli.run(["run", "wf.yaml", "--store", "store/db", "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(summary.stdout.utf8)) as? [String: Any]
        let steps = json?["steps"] as? [[String: Any]] ?? []
        let scores = steps.first { $0["id"] as? String == "ssim" }?["scores"] as? [[String: Any]] ?? []
        let mean = try #require(scores.first { $0["name"] as? String == "ssim.score" }?["mean"] as? Double)
        for page in [index, report] {
            // (YAML reads the title's \" as a quote; the rest stays text.)
            #expect(page.values("//figure/figcaption").contains { $0.hasPrefix("PSNR by setting <script>alert(1)</script>\"><img") })
            let points = page.values("//figure//*[local-name()='title']").filter { $0.hasPrefix("full · psnr: ") }
            #expect(points == ["full · psnr: \(GalleryFormat.score(mean))"])
        }
    }
}
