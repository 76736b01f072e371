import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The gallery in a real browser: headless Chromium (Debian's `chromium`, which CI installs) opens the index,
/// an entry page, the report and a comparison page from `file://`. A probe page loads each in an iframe and
/// reports what a person would see: every image decoded (natural width > 0), the hostile caption as text (no
/// element it would inject), and on index pages that the filter hides cards and the sort reorders them.
/// Console errors are read from Chromium's log. Screenshots go to `STORYLOOM_SCREENSHOTS` (CI: its log folder).
struct Chromium {
    static var binary: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let path: String

    /// Runs Chromium headless on `url` with `extra` arguments; returns stdout and stderr.
    func run(_ url: URL, _ extra: [String], profile: URL) throws -> (stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                             "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0",
                             "--user-data-dir=\(profile.path)", "--window-size=1280,1600"] + extra + [url.absoluteString]
        // Files, not pipes: a full pipe would stall Chromium, and nothing reads while it runs.
        let outFile = profile.deletingLastPathComponent().appendingPathComponent("chromium-\(UUID().uuidString).out")
        let errFile = outFile.deletingPathExtension().appendingPathExtension("err")
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outFile), errHandle = try FileHandle(forWritingTo: errFile)
        defer { try? outHandle.close(); try? errHandle.close() }
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let stdout = (try? Data(contentsOf: outFile)) ?? Data(), stderr = (try? Data(contentsOf: errFile)) ?? Data()
        return (String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}

@Suite(.serialized) struct BrowserTests {
    static let hostile = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"

    /// The probe: loads `page` in an iframe and writes a JSON verdict into `#verdict` for `--dump-dom`.
    static func probe(page: String, hostile: String) -> String {
        """
        <!doctype html><html><body><div id="verdict">pending</div>
        <iframe id="f" src="\(page)" style="width:1200px;height:1400px"></iframe>
        <script>
        var f = document.getElementById("f");
        f.addEventListener("load", function () {
          setTimeout(function () {
            var d = f.contentDocument, r = {};
            try {
              var imgs = Array.prototype.slice.call(d.images);
              r.images = imgs.length;
              r.broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.getAttribute("src"); });
              r.title = d.title;
              r.hostileText = d.body.textContent.indexOf(\(Self.jsString(hostile))) >= 0;
              r.injected = d.querySelectorAll("img[src=x], img[onerror]").length;
              var cards = Array.prototype.slice.call(d.querySelectorAll(".entry-card"));
              r.cards = cards.length;
              if (cards.length > 1) {
                var filter = d.getElementById("filter");
                filter.value = cards[1].getAttribute("data-id");
                filter.dispatchEvent(new Event("input"));
                r.shownAfterFilter = cards.filter(function (c) { return !c.hidden; }).length;
                filter.value = ""; filter.dispatchEvent(new Event("input"));
                var sort = d.getElementById("sort");
                var before = Array.prototype.map.call(d.querySelectorAll(".entry-card"), function (c) { return c.getAttribute("data-id"); }).join(",");
                var option = Array.prototype.filter.call(sort.options, function (o) { return o.value.indexOf("score:") === 0; })[0];
                if (option) {
                  sort.value = option.value; sort.dispatchEvent(new Event("change"));
                  var name = option.value.slice(6);
                  var values = Array.prototype.map.call(d.querySelectorAll(".entry-card"), function (c) {
                    return JSON.parse(c.getAttribute("data-scores") || "{}")[name]; }).filter(function (v) { return typeof v === "number"; });
                  r.sortedDescending = values.every(function (v, i) { return i === 0 || values[i - 1] >= v; });
                  r.orderChanged = before !== Array.prototype.map.call(d.querySelectorAll(".entry-card"), function (c) { return c.getAttribute("data-id"); }).join(",");
                }
              }
            } catch (e) { r.error = String(e); }
            document.getElementById("verdict").textContent = JSON.stringify(r);
          }, 300);
        });
        </script></body></html>
        """
    }

    static func jsString(_ s: String) -> String {
        let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/")
    }

    struct Verdict: Decodable {
        var images: Int, broken: [String], title: String, hostileText: Bool, injected: Int, cards: Int
        var shownAfterFilter: Int?, sortedDescending: Bool?, orderChanged: Bool?, error: String?
    }

    @Test(.enabled(if: Chromium.binary != nil, "headless Chromium is not installed (apt-get install chromium); CI installs it"),
          .timeLimit(.minutes(3)))
    func galleryPagesWorkInABrowser() throws {
        let chromium = Chromium(path: Chromium.binary!)
        let cli = try CLI()
        try cli.writeImageStories(4, in: "collection")
        // A hostile caption on story 2's last panel (the one its index card shows): text, injecting nothing.
        let collection = cli.root.appendingPathComponent("collection/collection.jsonl")
        var text = try String(contentsOf: collection, encoding: .utf8)
        let escaped = String(decoding: try JSONEncoder().encode(Self.hostile), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"Story 2 panel 2.\"", with: escaped)
        try text.write(to: collection, atomically: true, encoding: .utf8)
        try cli.write("""
            name: browser
            collection: collection
            steps:
              - {id: thumb, use: thumbnail, inputs: {image: image}, params: {width: 8, height: 8}}
              - {id: psnr, use: score, inputs: {a: image, b: thumb}, params: {metric: psnr}}
            store: store
            """, to: "wf.yaml")
        let run = try cli.run(["run", "wf.yaml", "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        let compare = try cli.run(["compare", "wf.yaml", "--a", "thumb.width=4", "--b", "thumb.width=12", "--score", "psnr.score"])
        #expect(compare.status == 0, "\(compare.stderr)")

        let gallery = cli.root.appendingPathComponent("galleries/browser")
        let comparison = cli.root.appendingPathComponent("galleries/browser-compare")
        let entry = try #require(try FileManager.default.contentsOfDirectory(atPath: gallery.appendingPathComponent("entries").path)
            .sorted().first { $0.hasPrefix("s2-") })
        let pages: [(name: String, url: URL)] = [
            ("index", gallery.appendingPathComponent("index.html")),
            ("entry", gallery.appendingPathComponent("entries/\(entry)")),
            ("report", gallery.appendingPathComponent("report.html")),
            ("compare", comparison.appendingPathComponent("index.html")),
        ]
        let shots = ProcessInfo.processInfo.environment["STORYLOOM_SCREENSHOTS"].map { URL(fileURLWithPath: $0) }
            ?? cli.root.appendingPathComponent("screenshots")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let profile = cli.root.appendingPathComponent("chromium-profile")

        for (name, url) in pages {
            let probe = url.deletingLastPathComponent().appendingPathComponent("probe-\(name).html")
            try Self.probe(page: url.lastPathComponent, hostile: Self.hostile).write(to: probe, atomically: true, encoding: .utf8)
            let (dom, log) = try chromium.run(probe, ["--virtual-time-budget=8000", "--dump-dom"], profile: profile)
            let json = try #require(dom.range(of: "<div id=\"verdict\">").flatMap { start in
                dom[start.upperBound...].range(of: "</div>").map { String(dom[start.upperBound..<$0.lowerBound]) }
            }, "\(name): no verdict in the dumped DOM")
            let unescaped = json.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
                .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
            let verdict = try JSONDecoder().decode(Verdict.self, from: Data(unescaped.utf8))
            #expect(verdict.error == nil, "\(name): \(verdict.error ?? "")")
            #expect(verdict.images > 0 && verdict.broken.isEmpty, "\(name): \(verdict.images) images, broken: \(verdict.broken)")
            #expect(verdict.injected == 0 && verdict.title != "pwned", "\(name): the hostile caption injected markup")
            if name == "index" || name == "entry" { #expect(verdict.hostileText, "\(name): the hostile caption is not shown as text") }
            if name == "index" || name == "compare" {
                #expect(verdict.cards == 4)
                #expect(verdict.shownAfterFilter == 1, "\(name): the filter should leave one card")
                #expect(verdict.sortedDescending == true, "\(name): sorting by a score should order the cards")
            }
            let errors = log.split(separator: "\n").filter { $0.contains("CONSOLE") && ($0.contains("Uncaught") || $0.contains("Error")) }
            #expect(errors.isEmpty, "\(name): console errors: \(errors.joined(separator: " | "))")
            _ = try chromium.run(url, ["--screenshot=\(shots.appendingPathComponent("\(name).png").path)"], profile: profile)
            #expect(FileManager.default.fileExists(atPath: shots.appendingPathComponent("\(name).png").path), "\(name): no screenshot")
        }
    }
}
