import Foundation
import Store
import Plot
import Testing
@testable import Gallery

@Suite struct FormattingTests {
    @Test func scoresUseThreeDecimalsAndSymbolsForNonFinite() {
        #expect(GalleryFormat.score(0.61249) == "0.612")
        #expect(GalleryFormat.score(0.6125001) == "0.613")
        #expect(GalleryFormat.score(-0.0001) == "0.000")
        #expect(GalleryFormat.score(-1.5) == "-1.500")
        #expect(GalleryFormat.score(.nan) == "—")
        #expect(GalleryFormat.score(.infinity) == "∞")
        #expect(GalleryFormat.score(-.infinity) == "−∞")
        #expect(GalleryFormat.percent(0.875) == "87.5 %")
        #expect(GalleryFormat.duration(0.042) == "42 ms")
        #expect(GalleryFormat.duration(93.5) == "1 min 34 s")
        #expect(GalleryFormat.badgeClass(0.7) == "badge high")
        #expect(GalleryFormat.badgeClass(.nan) == "badge neutral")
    }

    @Test func escapingCoversTextAndAttributes() {
        #expect(HTMLEscape.text("a < b && c > \"d\"") == "a &lt; b &amp;&amp; c &gt; \"d\"")
        #expect(HTMLEscape.attribute("\"'<>&") == "&quot;&#39;&lt;&gt;&amp;")
        #expect(HTMLEscape.text("&lt;") == "&amp;lt;")
        #expect(HTMLEscape.text("nul\u{0}") == "nul\u{FFFD}")
        // Plot writes attribute values verbatim; the gallery's helpers escape them.
        let node: Node<HTML.BodyContext> = .el("a", [("href", "x\" onclick=\"y")], text: "<b>")
        #expect(node.render() == "<a href=\"x&quot; onclick=&quot;y\">&lt;b&gt;</a>")
    }

    @Test func safeNamesAreSlugPlusHash() {
        let ids = ["../../etc/passwd", "<script>alert(1)</script>", "物語の四", "", "Café crème", "a/b", "a b"]
        let names = SafeName.entryNames(ids)
        #expect(Set(names).count == ids.count)
        for name in names {
            #expect(name.range(of: "^[a-z0-9]+(-[a-z0-9]+)*$", options: .regularExpression) != nil, "\(name)")
        }
        #expect(names[0].hasPrefix("etc-passwd-"))
        #expect(names[1].hasPrefix("script-alert-1-script-"))
        #expect(names[3].hasPrefix("entry-"))
        #expect(names[4].hasPrefix("cafe-creme-"))
        #expect(names[5] != names[6])
        #expect(SafeName.entryName("x") == "x-" + Hashing.sha256Hex("x").prefix(10))
        // SHA-256 of "abc" (FIPS 180-2 test vector).
        #expect(Hashing.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SafeName.entryNames(["dup", "dup"]) == [SafeName.entryName("dup"), SafeName.entryName("dup") + "-2"])
        #expect(SafeName.mediaName(MediaFile(path: "/a/b.JPEG", hash: "00ff00ff")) == "00ff00ff.jpeg")
        #expect(SafeName.mediaName(MediaFile(path: "/a/b.p<n>g", hash: "zz")).hasSuffix(".bin"))
    }
}

/// Not a check: writes the sample gallery to $GALLERY_SAMPLE_OUT for a visual review in a browser.
@Suite struct SampleRender {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["GALLERY_SAMPLE_OUT"] != nil,
                   "writes the sample gallery only when GALLERY_SAMPLE_OUT names a folder"))
    func writeSample() throws {
        let out = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment["GALLERY_SAMPLE_OUT"]))
        let document = try SampleGallery(sourceFolder: out.appendingPathComponent("src"),
                                         hostile: ProcessInfo.processInfo.environment["GALLERY_SAMPLE_HOSTILE"] != nil)
            .document()
        let index = try GalleryWriter.write(document, to: out.appendingPathComponent("gallery"))
        #expect(FileManager.default.fileExists(atPath: index.path))
    }
}
